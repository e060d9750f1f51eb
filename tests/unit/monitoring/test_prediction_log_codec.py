"""One logged prediction as a JSON line and back: datatypes kept, summaries, what each mode keeps."""

from __future__ import annotations

import json

import ml_dtypes
import numpy as np
import pytest

from flashml.monitoring import prediction_log_codec as codec
from flashml.monitoring.prediction_log_records import LogConfig

FULL = LogConfig(enabled=True)


def test_arrays_come_back_with_their_datatype_shape_and_values():
    inputs = {"x": np.arange(8, dtype=np.float32).reshape(2, 4) / 3, "ids": np.array([[1, 2]], dtype=np.int64),
              "flag": np.array([True, False]), "half": np.array([1.5, -2], dtype=np.float16),
              "brain": np.array([0.5, 4], dtype=ml_dtypes.bfloat16),
              "words": np.array([b"caf\xc3\xa9", b"a"], dtype=object),
              "empty": np.zeros((0, 3), dtype=np.float32)}
    outputs = {"y": np.array([[0.1, 0.9], [0.8, 0.2]], dtype=np.float32)}
    line = codec.encode(12.5, 3, "req-1", inputs, outputs, FULL)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    got = codec.decode(line)
    assert (got.at, got.version, got.request_id) == (12.5, 3, "req-1")
    assert got.inputs is not None
    for name, array in inputs.items():
        assert got.inputs[name].dtype == array.dtype and got.inputs[name].shape == array.shape, name
        assert got.inputs[name].tolist() == array.tolist(), name
    np.testing.assert_array_equal(got.outputs["y"], outputs["y"])
    doc = json.loads(line)  # any JSON reader gets the rows as nested lists
    assert doc["inputs"]["ids"] == {"datatype": "INT64", "shape": [1, 2], "data": [[1, 2]]}
    assert doc["inputs"]["words"]["data"] == ["café", "a"]


def test_summaries_hold_shape_datatype_means_and_predicted_classes():
    x = np.array([[1, 10], [3, 30]], dtype=np.float32)
    scores = np.array([[0.1, 0.9, 0], [0.2, 0.7, 0.1], [0.9, 0.05, 0.05]], dtype=np.float32)
    assert codec.summary(x) == {"datatype": "FP32", "shape": [2, 2], "mean": [2.0, 20.0]}
    assert codec.summary(np.array([1, 2, 6], dtype=np.int64)) == {"datatype": "INT64", "shape": [3], "mean": [3.0]}
    assert codec.summary(scores, top=True)["top"] == [1, 2, 0]
    assert "mean" not in codec.summary(np.zeros((1, 2, 2), np.float32))  # images: shape and datatype only
    assert "mean" not in codec.summary(np.zeros((1, codec.MAX_FEATURES + 1), np.float32))
    assert "mean" not in codec.summary(np.array([b"a"], dtype=object))
    assert codec.summary(np.array([[np.inf, 1]], dtype=np.float32))["mean"] == [None, 1.0]


@pytest.mark.parametrize("config,keeps_inputs,keeps_outputs", [
    (LogConfig(enabled=True), True, True),
    (LogConfig(enabled=True, redact_inputs=True), False, True),
    (LogConfig(enabled=True, mode="summary"), False, False),
])
def test_modes_and_redaction_keep_summaries_only_where_they_say(config, keeps_inputs, keeps_outputs):
    secret = np.array([[7.0, 9.0]], dtype=np.float32)
    line = codec.encode(1.0, 1, None, {"x": secret}, {"y": np.array([[1.0, 0.0]], np.float32)}, config)
    got = codec.decode(line)
    assert (got.inputs is not None) is keeps_inputs
    assert bool(got.outputs) is keeps_outputs
    assert got.input_summary["x"] == {"datatype": "FP32", "shape": [1, 2], "mean": [7.0, 9.0]}
    assert got.output_summary["y"]["top"] == [1, 0]
    if not keeps_inputs:  # nothing of the raw rows is written, beyond the means of each feature
        assert json.loads(line)["inputs"] is None


def test_nan_is_written_as_null_and_read_back_as_nan():
    got = codec.decode(codec.encode(1.0, 1, None, {"x": np.array([np.nan, 1], np.float32)}, {}, FULL))
    assert got.inputs is not None and np.isnan(got.inputs["x"][0]) and got.inputs["x"][1] == 1
