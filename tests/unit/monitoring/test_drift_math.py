"""The drift maths against numbers worked out by hand and against scipy's own tests."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from flashml.monitoring.drift_math import (
    EPSILON,
    binned_shares,
    class_drift,
    numeric_drift,
    predicted_classes,
    psi,
    quantile_edges,
)


def test_psi_of_a_tiny_example_worked_out_by_hand():
    # Reference 1..10 in two bins split at its median, 5.5: shares 0.5 and 0.5.
    # Current [1, 2, 6, 7, 8, 9, 10, 10, 10, 10]: 2 below 5.5, 8 above: shares 0.2 and 0.8.
    # PSI = (0.2 - 0.5) * ln(0.2 / 0.5) + (0.8 - 0.5) * ln(0.8 / 0.5)
    #     = (-0.3) * (-0.916291) + 0.3 * 0.470004 = 0.274887 + 0.141001 = 0.415888
    reference = np.arange(1, 11, dtype=np.float64)
    current = np.array([1, 2, 6, 7, 8, 9, 10, 10, 10, 10], dtype=np.float64)
    assert quantile_edges(reference, 2).tolist() == [5.5]
    drift = numeric_drift(reference, current, bins=2)
    assert drift is not None
    assert drift.score == pytest.approx(0.415888, abs=1e-6)
    assert (drift.kind, drift.reference_n, drift.current_n) == ("numeric", 10, 10)


def test_the_same_sample_scores_zero():
    values = np.random.default_rng(1).normal(size=1000)
    drift = numeric_drift(values, values)
    assert drift is not None and drift.score == 0.0 and drift.p_value == 1.0


def test_ten_bins_on_the_references_quantiles_hold_a_tenth_each():
    reference = np.arange(1000, dtype=np.float64)
    edges = quantile_edges(reference)
    assert len(edges) == 9
    assert binned_shares(reference, edges).tolist() == pytest.approx([0.1] * 10)


def test_a_value_on_an_edge_goes_to_the_bin_above_it():
    assert binned_shares(np.array([1.0, 2.0, 3.0]), np.array([2.0])).tolist() == pytest.approx([1 / 3, 2 / 3])


def test_an_empty_bin_counts_as_epsilon_instead_of_an_infinite_score():
    # Reference shares 0.5 / 0.5; current 1.0 / 0.0, the empty bin counted as EPSILON:
    # (1 - 0.5) * ln(1 / 0.5) + (EPSILON - 0.5) * ln(EPSILON / 0.5)
    expected = 0.5 * math.log(2) + (EPSILON - 0.5) * math.log(EPSILON / 0.5)
    assert psi(np.array([0.5, 0.5]), np.array([1.0, 0.0])) == pytest.approx(expected)
    assert math.isfinite(expected) and expected == pytest.approx(4.605, abs=1e-3)


def test_tied_quantiles_collapse_into_fewer_bins():
    # 90 zeros and 10 ones: the 10% to 80% quantiles are all 0 and the 90% one interpolates to 0.1, so three
    # bins (below 0, [0, 0.1), 0.1 and above) instead of ten.
    reference = np.array([0.0] * 90 + [1.0] * 10)
    assert quantile_edges(reference).tolist() == pytest.approx([0.0, 0.1])
    drift = numeric_drift(reference, np.array([1.0] * 50 + [0.0] * 50))
    assert drift is not None and drift.score > 0.2


def test_a_shift_of_one_standard_deviation_scores_high_and_the_ks_test_agrees_with_scipy():
    rng = np.random.default_rng(7)
    reference, current = rng.normal(0, 1, 2000), rng.normal(1, 1, 2000)
    drift = numeric_drift(reference, current)
    assert drift is not None and drift.score > 0.5
    expected = stats.ks_2samp(reference, current)
    assert (drift.statistic, drift.p_value) == (pytest.approx(expected.statistic), pytest.approx(expected.pvalue))
    assert drift.p_value < 1e-6


def test_samples_of_one_distribution_stay_under_the_default_threshold():
    rng = np.random.default_rng(3)
    drift = numeric_drift(rng.normal(0, 1, 2000), rng.normal(0, 1, 2000))
    assert drift is not None and drift.score < 0.05 and drift.p_value > 0.01


def test_nan_and_infinities_have_no_bin_and_an_empty_sample_has_no_score():
    drift = numeric_drift(np.array([1.0, 2.0, np.nan, np.inf]), np.array([1.0, 2.0]))
    assert drift is not None and drift.reference_n == 2 and drift.score == 0.0
    assert numeric_drift(np.array([np.nan]), np.array([1.0])) is None
    assert class_drift(np.array([]), np.array([1])) is None


def test_class_shares_psi_by_hand_and_chi_square_by_scipy():
    # Reference classes 0, 0, 1, 1: shares 0.5, 0.5, 0 (class 2 unseen, counted as EPSILON).
    # Current 0, 1, 1, 1, 2: shares 0.2, 0.6, 0.2.
    # PSI = (0.2 - 0.5) ln(0.2 / 0.5) + (0.6 - 0.5) ln(0.6 / 0.5) + (0.2 - EPSILON) ln(0.2 / EPSILON)
    reference, current = np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1, 2])
    expected = (-0.3 * math.log(0.4) + 0.1 * math.log(1.2) + (0.2 - EPSILON) * math.log(0.2 / EPSILON))
    drift = class_drift(reference, current)
    assert drift is not None and drift.kind == "classes"
    assert drift.score == pytest.approx(expected)
    chi2 = stats.chi2_contingency(np.array([[2, 2, 0], [1, 3, 1]]), correction=False)
    assert (drift.statistic, drift.p_value) == (pytest.approx(chi2.statistic), pytest.approx(chi2.pvalue))


def test_one_class_in_both_samples_agrees():
    drift = class_drift(np.array(["cat"] * 3), np.array(["cat"] * 5))
    assert drift is not None and (drift.score, drift.p_value) == (0.0, 1.0)


def test_predicted_classes_from_scores_labels_and_not_from_numbers():
    scores = np.array([[0.1, 0.9], [0.7, 0.3], [-2.0, 5.0]], dtype=np.float32)  # probabilities or logits alike
    assert predicted_classes(scores).tolist() == [1, 0, 1]
    assert predicted_classes(np.array([[3], [1]], dtype=np.int64)).tolist() == [3, 1]
    assert predicted_classes(np.array([b"cat", b"dog"], dtype=object)).tolist() == ["cat", "dog"]
    assert predicted_classes(np.array([0.4, 1.2], dtype=np.float32)) is None  # a regression's number
    assert predicted_classes(np.zeros((2, 3, 4), dtype=np.float32)) is None
