"""Texts to token tensors with the bundle's Hugging Face tokenizer.json, within the manifest's length limit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from flashml.errors import PayloadTooLargeError
from flashml.signature import Signature
from flashml.tasks.config import TokenizerConfig

PAD_TOKENS = ("[PAD]", "<pad>", "<|pad|>")
DTYPES = {"INT64": np.int64, "INT32": np.int32}


def pad_id_of(config: TokenizerConfig, bundle_dir: Path) -> int:
    """The pad token: the manifest's pad_id, else the tokenizer's [PAD] / <pad>, else 0."""
    if config.pad_id is not None:
        return config.pad_id
    tok = Tokenizer.from_file(str(bundle_dir / config.file))
    for token in PAD_TOKENS:
        found = tok.token_to_id(token)
        if found is not None:
            return found
    return 0


class TextEncoder:
    """Encodes one text at a time into the model's token inputs (each item is its own batcher request)."""

    def __init__(self, config: TokenizerConfig, bundle_dir: Path, signature: Signature) -> None:
        self.config = config
        self.full = Tokenizer.from_file(str(bundle_dir / config.file))
        self.full.no_truncation()
        self.full.no_padding()
        self.cut = Tokenizer.from_file(str(bundle_dir / config.file))
        self.cut.no_padding()
        self.cut.enable_truncation(config.max_length)  # keeps the special tokens ([CLS] ... [SEP])
        self.inputs = {t.name: DTYPES[t.datatype] for t in signature.inputs}

    def encode(self, text: str, index: int = 0) -> dict[str, np.ndarray]:
        enc = self.full.encode(text)
        if len(enc.ids) > self.config.max_length:
            if not self.config.truncate:
                raise PayloadTooLargeError(
                    f"Text {index} is {len(enc.ids)} tokens; this model takes at most {self.config.max_length} "
                    "and its manifest refuses longer texts ([tokenizer] truncate = false).", code="text_too_long",
                    details={"item": index, "tokens": len(enc.ids), "max_length": self.config.max_length})
            enc = self.cut.encode(text)
        values = {"input_ids": enc.ids, "attention_mask": enc.attention_mask, "token_type_ids": enc.type_ids}
        return {name: np.asarray([values[name]], dtype=dtype) for name, dtype in self.inputs.items()}
