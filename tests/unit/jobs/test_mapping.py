"""Dataset rows to model inputs: the default mapping, refusals, and bad rows with their row numbers."""

from __future__ import annotations

import numpy as np
import pytest

from flashml.jobs.formats import Chunk
from flashml.jobs.mapping import MappingError, resolve_mapping, to_inputs
from flashml.signature import Signature, TensorSpec

SIG = Signature([TensorSpec("a", "FP32", [-1, 2]), TensorSpec("n", "INT64", [-1])],
                [TensorSpec("y", "FP32", [-1, 2])])


def test_default_mapping_by_name_and_single_column():
    assert resolve_mapping(SIG, [{"name": "a"}, {"name": "n"}, {"name": "x"}], None) == {"a": "a", "n": "n"}
    one = Signature([TensorSpec("x", "FP32", [-1, 2])], [])
    assert resolve_mapping(one, [{"name": "features"}], {}) == {"x": "features"}
    with pytest.raises(MappingError) as err:
        resolve_mapping(SIG, [{"name": "a"}], None)
    assert err.value.details["missing"] == ["n"]
    with pytest.raises(MappingError):
        resolve_mapping(SIG, [{"name": "a", "shape": [-1, 3]}, {"name": "n"}], None)
    with pytest.raises(MappingError) as err:
        resolve_mapping(Signature([TensorSpec("x", "FP32", [1, 2])], []), [{"name": "x"}], None)
    assert err.value.code == "model_not_batchable"


def test_rows_convert_and_bad_rows_are_named():
    chunk = Chunk(100, 4, {"a": ["[1, 2]", [3, 4], "[1, 2, 3]", "[5, 6]"], "n": ["7", 8, 9, None]},
                  bad=[])
    inputs, ids, bad = to_inputs(chunk, SIG, {"a": "a", "n": "n"})
    assert ids.tolist() == [100, 101]
    assert inputs["a"].dtype == np.float32 and inputs["a"].tolist() == [[1, 2], [3, 4]]
    assert inputs["n"].tolist() == [7, 8]
    assert [row for row, _ in bad] == [102, 103]
    assert "shape [3]" in bad[0][1] and "missing" in bad[1][1]
