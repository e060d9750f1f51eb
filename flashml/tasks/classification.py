"""Scores and top-k labels from a classifier's logits (images and texts alike)."""

from __future__ import annotations

import numpy as np


def activate(logits: np.ndarray, activation: str) -> np.ndarray:
    x = logits.astype(np.float64)
    if activation == "softmax":
        e = np.exp(x - x.max())
        return e / e.sum()
    if activation == "sigmoid":
        return 0.5 * (1 + np.tanh(x / 2))  # the logistic function, without overflow for large |x|
    return x


def label_of(labels: list[str] | None, index: int) -> str:
    return labels[index] if labels is not None and index < len(labels) else str(index)


def top_k(logits: np.ndarray, labels: list[str] | None, k: int, activation: str) -> list[dict]:
    """The k best classes of one item, best first: [{"label", "score"}]."""
    scores = activate(np.asarray(logits).reshape(-1), activation)
    order = np.argsort(-scores, kind="stable")[:k]
    return [{"label": label_of(labels, int(i)), "score": float(scores[i])} for i in order]
