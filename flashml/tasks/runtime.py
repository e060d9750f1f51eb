"""A loaded task model's processing: one item in (image bytes or text), its tensors, its answer out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from flashml.datatypes import BY_V2
from flashml.errors import BadRequestError
from flashml.signature import Signature
from flashml.tasks import classification, detection, embeddings, images
from flashml.tasks.config import TaskConfig
from flashml.tasks.io import image_input, output_of
from flashml.tasks.text import TextEncoder


@dataclass
class TaskRuntime:
    config: TaskConfig
    signature: Signature
    encoder: TextEncoder | None = None

    @classmethod
    def build(cls, config: TaskConfig, signature: Signature, bundle_dir: Path) -> TaskRuntime:
        """Load what the task needs from the bundle (the tokenizer); call in a worker thread."""
        encoder = TextEncoder(config.tokenizer, bundle_dir, signature) if config.tokenizer else None
        return cls(config, signature, encoder)

    @property
    def output_names(self) -> list[str]:
        c = self.config
        if c.task == "object-detection" and c.post.format == "boxes-scores-classes":
            return ["boxes", "scores", "classes"]
        name = c.embedding.output if c.embedding else c.post.output
        output = output_of(name, self.signature)
        if output is None:  # the task's checks at upload made sure the model has it
            raise RuntimeError(f"the model has no output {name!r} for its task")
        return [output.name]

    def prepare(self, item: bytes | str, index: int, max_pixels: int) -> tuple[dict[str, np.ndarray], Any]:
        """(model inputs, what ``finish`` needs) for one item: decoding, resizing, tokenizing."""
        if self.encoder is not None:
            if not isinstance(item, str) or not item.strip():
                raise BadRequestError(f"Text {index} is empty.", code="empty_text", details={"item": index})
            inputs = self.encoder.encode(item, index)
            return inputs, inputs.get("attention_mask", np.ones_like(inputs["input_ids"]))
        assert self.config.image is not None and isinstance(item, bytes)
        spec = image_input(self.config, self.signature)
        assert spec is not None
        tensor, placement = images.prepare(item, self.config.image, BY_V2[spec.datatype].numpy, max_pixels, index)
        return {spec.name: tensor}, placement

    def finish(self, outputs: dict[str, np.ndarray], context: Any) -> Any:
        """One item's answer from its slice of the model outputs."""
        c = self.config
        if c.task == "object-detection":
            return detection.detect(outputs, c.post, self.output_names[0], context, c.labels)
        if c.task == "embeddings":
            assert c.embedding is not None
            return embeddings.pool(outputs[self.output_names[0]], context, c.embedding).tolist()
        return classification.top_k(outputs[self.output_names[0]], c.labels, c.post.top_k, c.post.activation)
