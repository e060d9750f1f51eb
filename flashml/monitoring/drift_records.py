"""What the drift API answers: a model's drift settings, a version's scores over time, the outcome of a check."""

from __future__ import annotations

from flashml.records import Record


class DriftConfigView(Record):
    """A model's drift monitoring settings (``drift_config.DriftConfig``)."""

    enabled: bool
    reference: str  # first | dataset
    reference_dataset: str | None
    reference_size: int
    window_size: int
    window_s: float | None
    min_predictions: int
    threshold: float
    rollback: bool


class DriftScore(Record):
    """One feature's drift in one round: PSI against the reference, and the two-sample test beside it."""

    feature: str  # x[0]: column 0 of input x; output: the predictions
    kind: str  # numeric (Kolmogorov-Smirnov) | classes (chi-square)
    score: float
    statistic: float | None
    p_value: float | None
    above: bool  # above the threshold of its round


class DriftPoint(Record):
    at: float
    score: float
    p_value: float | None


class DriftSeries(Record):
    """One feature's scores over time, oldest first."""

    feature: str
    kind: str
    latest: float
    above: bool
    points: list[DriftPoint]


class DriftReport(Record):
    """GET /api/v1/models/{model}/drift: one version's scores over time, with the threshold they are held to."""

    model: str
    version: int | None  # None: no version has been scored yet
    versions: list[int]  # the versions that have scores, newest first
    threshold: float
    alert: bool  # a feature of this version is above the threshold now
    checked_at: float | None  # the newest round
    config: DriftConfigView
    features: list[DriftSeries]


class VersionCheck(Record):
    """A version's part of a check: its scores, or why it was not scored yet."""

    version: int
    scored: bool
    reason: str | None  # why not, in words: "the reference holds 120 of the 500 predictions it needs"
    alert: bool
    scores: list[DriftScore]


class DriftCheck(Record):
    """POST /api/v1/models/{model}/drift/check: one round over the model's ready versions, now."""

    model: str
    at: float
    enabled: bool
    versions: list[VersionCheck]
    rolled_back: list[str]  # aliases whose canary went back to the stable version because of drift
