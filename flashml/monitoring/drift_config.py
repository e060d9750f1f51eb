"""A model's drift monitoring settings: stored with the model (the models table's ``drift`` column), off by default.

``{"enabled": true, "reference": "first", "reference_size": 500, "window_size": 500, "window_s": null,
"min_predictions": 100, "threshold": 0.2, "rollback": true}``:

- the **reference** is what each version is compared with: ``first``, the first ``reference_size`` logged
  predictions of that version, or ``dataset``, the first ``reference_size`` rows of ``reference_dataset`` (a
  dataset uploaded for batch jobs, run through the version for its outputs);
- the **current window** is the last ``window_size`` logged predictions, and only those of the last ``window_s``
  seconds when that is set; logged after the reference (with ``first``), and scored once it holds
  ``min_predictions``;
- a feature whose score (PSI) goes above ``threshold`` raises an alert; with ``rollback``, a guarded canary whose
  score passes its guard's ``max_drift`` goes back to the stable version.

A PATCH changes the fields it sends and keeps the others (``DriftChange``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from msgspec import UnsetType

from flashml.errors import BadRequestError
from flashml.registry.requests import DriftChange

DEFAULT_THRESHOLD = 0.2


@dataclass(frozen=True)
class DriftConfig:
    enabled: bool = False
    reference: str = "first"  # first | dataset
    reference_dataset: str | None = None
    reference_size: int = 500  # logged predictions (first) or dataset rows (dataset)
    window_size: int = 500
    window_s: float | None = None
    min_predictions: int = 100
    threshold: float = DEFAULT_THRESHOLD
    rollback: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, stored: dict[str, Any] | None) -> DriftConfig:
        """The stored JSON (None: never set), fields this FlashML does not know left out."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (stored or {}).items() if k in known})

    @property
    def reference_key(self) -> tuple[Any, ...]:
        """What the reference sample depends on: a change of any of these makes a new one."""
        return (self.reference, self.reference_dataset, self.reference_size)

    def changed(self, change: DriftChange) -> DriftConfig:
        """These settings with the fields ``change`` sends; a 400 naming the field when they do not fit together."""
        sent = {f.name: getattr(change, f.name) for f in fields(self)
                if not isinstance(getattr(change, f.name), UnsetType)}
        config = replace(self, **sent)
        if config.reference == "dataset" and not config.reference_dataset:
            raise _bad("reference_dataset", 'A "dataset" reference needs "reference_dataset": the id of an uploaded '
                                            "dataset.")
        if config.reference == "first" and "reference_dataset" in sent and config.reference_dataset:
            raise _bad("reference", 'Send "reference": "dataset" with "reference_dataset".')
        if config.min_predictions > config.window_size:
            raise _bad("min_predictions", f'"min_predictions" ({config.min_predictions}) cannot be more than '
                                          f'"window_size" ({config.window_size}): the window would never be scored.')
        return config


def _bad(field: str, sentence: str) -> BadRequestError:
    return BadRequestError(sentence, code="bad_drift_config", details={"field": f"drift.{field}"})
