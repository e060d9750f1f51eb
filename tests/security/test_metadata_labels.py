"""Labels read from a model's ONNX metadata: hostile values give labels, none, or a clear refusal, never a
RecursionError or MemoryError that the upload reports as internal_error."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from onnx import helper

from flashml.errors import ValidationFailedError
from flashml.registry.task_checks import metadata_labels
from tests.helpers.onnx_models import add_model


def with_props(path: Path, **props: str) -> Path:
    model = onnx.load(str(add_model(path)))
    helper.set_model_props(model, props)
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("props,labels", [
    ({"labels": "[" * 5000 + "]" * 5000}, ["[" * 5000 + "]" * 5000]),  # json.loads: RecursionError
    ({"names": "-" * 100_000 + "1"}, None),  # ast: MemoryError from the parser's own stack
    ({"names": "[" * 5000 + "]" * 5000}, None),
    ({"names": "{1: 'a', 'b': 'c'}"}, ["a", "c"]),  # keys that do not sort
    ({"labels": '["cat", "dog"]'}, ["cat", "dog"]),
])
def test_hostile_metadata_labels(tmp_path: Path, props: dict[str, str], labels: list[str] | None) -> None:
    assert metadata_labels(with_props(tmp_path / "m.onnx", **props)) == labels


def test_oversized_metadata_labels_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationFailedError) as info:
        metadata_labels(with_props(tmp_path / "m.onnx", names="x" * (5 << 20)))
    assert info.value.code == "task_mismatch" and "labels_file" in info.value.message
