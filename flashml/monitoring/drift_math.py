"""Drift scores between a reference sample and a current one: pure numpy and scipy, no state.

**PSI** (population stability index) is the score every threshold reads: ``sum((c - r) * ln(c / r))`` over
bins, where ``r`` and ``c`` are the shares of the reference and of the current sample in each bin. 0 means the
same distribution; by the usual rule of thumb below 0.1 is stable, 0.1 to 0.25 a moderate shift and above 0.25 a
large one (FlashML's default threshold is 0.2).

- Numbers are binned on the *reference's* quantiles (10 bins by default), so each bin holds about a tenth of the
  reference and the score does not depend on the feature's units. Tied quantiles collapse into one edge (a
  feature with few distinct values gets fewer bins). A value equal to an edge falls in the bin above it.
- An empty bin would make ``ln(c / r)`` infinite, so a share below ``EPSILON`` (0.0001, one in ten thousand)
  counts as ``EPSILON``; shares are not renormalised afterwards (the error is at most bins x EPSILON).
- Classes (the predicted class of a classifier) are their own bins: PSI over the share of each class, over
  every class seen in either sample.

Beside the score, a two-sample test where it suits: Kolmogorov-Smirnov for numbers (``scipy.stats.ks_2samp``)
and chi-square of homogeneity for classes (``scipy.stats.chi2_contingency``), with their p-values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

EPSILON = 1e-4
DEFAULT_BINS = 10


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's drift: the PSI, and the two-sample test's statistic and p-value."""

    kind: str  # numeric | classes
    score: float
    statistic: float | None
    p_value: float | None
    reference_n: int
    current_n: int


def psi(reference_shares: np.ndarray, current_shares: np.ndarray) -> float:
    """PSI of two share vectors over the same bins, empty bins counted as ``EPSILON``."""
    r = np.maximum(np.asarray(reference_shares, dtype=np.float64), EPSILON)
    c = np.maximum(np.asarray(current_shares, dtype=np.float64), EPSILON)
    return float(np.sum((c - r) * np.log(c / r)))


def quantile_edges(reference: np.ndarray, bins: int = DEFAULT_BINS) -> np.ndarray:
    """The inner edges of ``bins`` bins holding about equal shares of ``reference`` (ties collapsed)."""
    inner = np.quantile(reference, np.arange(1, bins) / bins)
    return np.unique(inner)


def binned_shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The share of ``values`` in each of the ``len(edges) + 1`` bins (a value on an edge goes above it)."""
    index = np.searchsorted(edges, values, side="right")
    return np.bincount(index, minlength=len(edges) + 1) / len(values)


def finite(values: np.ndarray) -> np.ndarray:
    """The values as float64, without NaN and infinities (they have no bin)."""
    array = np.asarray(values, dtype=np.float64).ravel()
    return array[np.isfinite(array)]


def numeric_drift(reference: np.ndarray, current: np.ndarray, bins: int = DEFAULT_BINS) -> FeatureDrift | None:
    """PSI on the reference's quantile bins and Kolmogorov-Smirnov; None when either sample has no finite value."""
    ref, cur = finite(reference), finite(current)
    if ref.size == 0 or cur.size == 0:
        return None
    edges = quantile_edges(ref, bins)
    score = psi(binned_shares(ref, edges), binned_shares(cur, edges))
    test = stats.ks_2samp(ref, cur)
    return FeatureDrift("numeric", score, float(test.statistic), float(test.pvalue), int(ref.size), int(cur.size))


def class_counts(labels: np.ndarray, classes: list) -> np.ndarray:
    """How many of ``labels`` are each of ``classes``, in that order."""
    found, counts = np.unique(labels, return_counts=True)
    by_class = dict(zip(found.tolist(), counts.tolist(), strict=True))
    return np.array([by_class.get(c, 0) for c in classes], dtype=np.float64)


def class_drift(reference: np.ndarray, current: np.ndarray) -> FeatureDrift | None:
    """PSI over the share of each class and chi-square of homogeneity; None when either sample is empty."""
    ref, cur = np.asarray(reference).ravel(), np.asarray(current).ravel()
    if ref.size == 0 or cur.size == 0:
        return None
    classes = sorted(set(np.unique(ref).tolist()) | set(np.unique(cur).tolist()), key=str)
    ref_counts, cur_counts = class_counts(ref, classes), class_counts(cur, classes)
    score = psi(ref_counts / ref.size, cur_counts / cur.size)
    if len(classes) < 2:  # one class in both: nothing to test, the samples agree
        return FeatureDrift("classes", score, 0.0, 1.0, int(ref.size), int(cur.size))
    test = stats.chi2_contingency(np.stack([ref_counts, cur_counts]), correction=False)
    return FeatureDrift("classes", score, float(test.statistic), float(test.pvalue), int(ref.size), int(cur.size))


def predicted_classes(output: np.ndarray) -> np.ndarray | None:
    """The class each row of a classifier's output predicts, or None for an output that is not one.

    Scores of two or more classes per row (probabilities or logits, float ``[rows, classes]``) give the
    argmax; labels (integers, booleans or strings, one per row) are the classes themselves. A float output with
    one value per row is a number, not a class (None): ``numeric_drift`` suits it.
    """
    array = np.asarray(output)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim == 2 and array.shape[1] >= 2 and array.dtype.kind == "f":
        return np.argmax(array, axis=1)
    if array.ndim == 1 and array.dtype.kind in "iubUSO":
        if array.dtype.kind == "O":
            return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in array])
        return array
    return None
