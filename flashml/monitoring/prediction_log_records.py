"""What prediction logging keeps: one logged prediction, and a model's logging settings.

``LoggedPrediction`` is what ``PredictionLog.read`` answers (drift detection reads it): the arrays as the
request and the model had them, or ``None``/empty where the settings dropped them, and always the summaries
(shape, datatype, per-feature means of numeric inputs), so a redacted log can still be watched for drift.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

Mode = Literal["full", "summary"]
MODES: tuple[Mode, ...] = ("full", "summary")


@dataclass(frozen=True)
class LoggedPrediction:
    """One sampled request of one version.

    ``inputs`` is None when the model's log drops raw inputs (``redact_inputs``, or ``mode`` summary);
    ``outputs`` is empty in summary mode, where ``output_summary`` says what they were. A summary is
    ``{"datatype": "FP32", "shape": [rows, ...]}`` plus, for numeric tensors of one or two dimensions,
    ``"mean"``: the mean of each feature (column) over the request's rows; and for a 2-D numeric output,
    ``"top"``: how many rows had their largest value in each column (a classifier's predicted classes).
    """

    at: float  # UNIX seconds, when the answer was known
    version: int
    request_id: str | None
    inputs: dict[str, np.ndarray] | None
    input_summary: dict[str, dict[str, Any]]
    outputs: dict[str, np.ndarray]
    output_summary: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class LogConfig:
    """A model's prediction log settings, as stored in the models table's ``prediction_log`` column."""

    enabled: bool = False
    sample_rate: float = 1.0  # the share of requests logged, above 0 and up to 1
    mode: Mode = "full"  # full: inputs and outputs; summary: only their summaries
    redact_inputs: bool = False  # drop raw inputs, keep their summaries
    retention_s: float = 0.0  # 0: the server's prediction_log_retention_s
    max_bytes: int = 0  # 0: the server's prediction_log_max_bytes

    @property
    def keeps_inputs(self) -> bool:
        return self.mode == "full" and not self.redact_inputs

    @property
    def keeps_outputs(self) -> bool:
        return self.mode == "full"

    def to_dict(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "sample_rate": self.sample_rate, "mode": self.mode,
                "redact_inputs": self.redact_inputs, "retention_s": self.retention_s, "max_bytes": self.max_bytes}

    @classmethod
    def from_dict(cls, stored: dict[str, Any] | None) -> LogConfig:
        """The stored JSON (None: never set). The server's limits apply when the log uses it
        (``PredictionLog.limits``), so a setting lowered since the model's was saved wins."""
        stored = stored or {}
        mode = stored.get("mode", "full")
        return cls(enabled=bool(stored.get("enabled", False)),
                   sample_rate=float(stored.get("sample_rate", 1.0)),
                   mode=mode if mode in MODES else "full",
                   redact_inputs=bool(stored.get("redact_inputs", False)),
                   retention_s=float(stored.get("retention_s") or 0.0),
                   max_bytes=int(stored.get("max_bytes") or 0))
