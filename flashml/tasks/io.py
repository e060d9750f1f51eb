"""Which model input takes a task's image, and which output holds its answer."""

from __future__ import annotations

from flashml.signature import Signature, TensorSpec
from flashml.tasks.config import TaskConfig


def image_input(config: TaskConfig, signature: Signature) -> TensorSpec | None:
    """The input that takes the image: the one [preprocess] input names, else the only 4-D one."""
    assert config.image is not None
    if config.image.input:
        return signature.input(config.image.input)
    four = [t for t in signature.inputs if len(t.shape) == 4]
    return four[0] if len(four) == 1 else None


def output_of(name: str | None, signature: Signature) -> TensorSpec | None:
    return signature.output(name) if name else (signature.outputs[0] if signature.outputs else None)
