"""One vector per text from a model's token or sentence output: pooling and normalization."""

from __future__ import annotations

import numpy as np

from flashml.tasks.config import EmbeddingConfig


def pool(output: np.ndarray, mask: np.ndarray, config: EmbeddingConfig) -> np.ndarray:
    """[1, tokens, dim] (mean over real tokens, or the first) or [1, dim] (already pooled) -> [dim]."""
    if output.ndim == 2:
        vector = output[0].astype(np.float64)
    elif config.pooling == "cls":
        vector = output[0, 0].astype(np.float64)
    else:
        tokens = output[0, :mask.shape[-1]].astype(np.float64)
        weights = mask.reshape(-1)[:tokens.shape[0], None].astype(np.float64)
        vector = (tokens * weights).sum(axis=0) / max(weights.sum(), 1e-12)
    if config.normalize:
        vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
    return vector
