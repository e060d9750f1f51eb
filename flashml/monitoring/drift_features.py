"""What drift is scored on: the features of a list of logged predictions, and the scores of two such lists.

Inputs: each column of a numeric 2-D input is a feature named ``x[0]``, ``x[1]``, ... (a 1-D input is one feature
named after it); other inputs (images, token ids of more than ``MAX_COLUMNS`` columns, strings) are not scored.
When every prediction of both windows kept its raw inputs, a feature's sample is its values, one per row; when
any was redacted, it is the per-request means the log always keeps (``input_summary``), for both windows alike,
so the two are always compared like with like.

Outputs are one feature, ``output`` (``output:<name>`` for each output of a model with several): the predicted
class of a classifier (argmax of its scores, or its label) scored over class shares, or the value of a
one-number output (a regression) scored as a number. Without kept outputs (the log's summary mode) the classes
come from the summary's per-class counts (``top``) and numbers from its means.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from flashml.monitoring.drift_math import FeatureDrift, class_drift, numeric_drift, predicted_classes
from flashml.monitoring.prediction_log_records import LoggedPrediction

MAX_COLUMNS = 64  # wider inputs (token ids, flattened pixels) are not features a person reads one by one


@dataclass
class Sample:
    """Feature name -> values: numbers (``numeric``) or predicted classes (``classes``)."""

    numeric: dict[str, list[np.ndarray]] = field(default_factory=dict)
    classes: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def add(self, kind: dict[str, list[np.ndarray]], name: str, values: np.ndarray) -> None:
        kind.setdefault(name, []).append(values)


def _numeric(array: np.ndarray) -> bool:
    return array.dtype.kind in "biuf" and array.ndim in (1, 2) and (array.ndim == 1 or array.shape[1] <= MAX_COLUMNS)


def _input_rows(sample: Sample, name: str, array: np.ndarray) -> None:
    if not _numeric(array):
        return
    if array.ndim == 1:
        sample.add(sample.numeric, name, array.astype(np.float64))
        return
    for column in range(array.shape[1]):
        sample.add(sample.numeric, f"{name}[{column}]", array[:, column].astype(np.float64))


def _input_means(sample: Sample, name: str, summary: dict) -> None:
    means, shape = summary.get("mean"), summary.get("shape") or []
    if not means or len(shape) not in (1, 2) or len(means) > MAX_COLUMNS:
        return
    if len(shape) == 1:
        sample.add(sample.numeric, name, np.array([np.nan if means[0] is None else means[0]]))
        return
    for column, mean in enumerate(means):
        sample.add(sample.numeric, f"{name}[{column}]", np.array([np.nan if mean is None else mean]))


def _output(sample: Sample, feature: str, array: np.ndarray | None, summary: dict) -> None:
    if array is not None:
        classes = predicted_classes(array)
        if classes is not None:
            sample.add(sample.classes, feature, classes)
        elif array.dtype.kind in "biuf" and (array.ndim == 1 or (array.ndim == 2 and array.shape[1] == 1)):
            sample.add(sample.numeric, feature, array.astype(np.float64).ravel())
        return
    if summary.get("top"):
        counts = np.asarray(summary["top"], dtype=np.int64)
        sample.add(sample.classes, feature, np.repeat(np.arange(len(counts)), counts))
    elif summary.get("mean") and len(summary["mean"]) == 1 and summary["mean"][0] is not None:
        sample.add(sample.numeric, feature, np.array([summary["mean"][0]], dtype=np.float64))


def _read_outputs(p: LoggedPrediction) -> set[str]:
    """The outputs a feature can come from: those of one or two dimensions."""
    return {n for n, s in p.output_summary.items() if len(s.get("shape") or []) <= 2}


def slim(predictions: Sequence[LoggedPrediction]) -> list[LoggedPrediction]:
    """The predictions without the arrays no feature is read from (images, wide token ids, outputs of more than two
    dimensions; the summaries stay): what a reference kept in memory while its version is watched needs."""
    return [replace(p, inputs=None if p.inputs is None else {n: a for n, a in p.inputs.items() if _numeric(a)},
                    outputs={n: a for n, a in p.outputs.items() if a.ndim <= 2}) for p in predictions]


def features(predictions: Sequence[LoggedPrediction], *, raw_inputs: bool, raw_outputs: bool) -> Sample:
    """The features of these predictions; inputs from their arrays (``raw_inputs``) or their summaries' means."""
    sample = Sample()
    for p in predictions:
        if raw_inputs and p.inputs is not None:
            for name, array in p.inputs.items():
                _input_rows(sample, name, array)
        else:
            for name, summary in p.input_summary.items():
                _input_means(sample, name, summary)
        names = sorted(p.output_summary or p.outputs)
        for name in names:
            feature = "output" if len(names) == 1 else f"output:{name}"
            _output(sample, feature, p.outputs.get(name) if raw_outputs else None, p.output_summary.get(name, {}))
    return sample


def compare(reference: Sequence[LoggedPrediction], current: Sequence[LoggedPrediction]) -> dict[str, FeatureDrift]:
    """Each feature's drift from ``reference`` to ``current`` (CPU work: call it from a thread)."""
    both = [*reference, *current]
    raw_inputs = all(p.inputs is not None for p in both)
    raw_outputs = all(set(p.outputs) >= _read_outputs(p) for p in both)
    ref = features(reference, raw_inputs=raw_inputs, raw_outputs=raw_outputs)
    cur = features(current, raw_inputs=raw_inputs, raw_outputs=raw_outputs)
    out: dict[str, FeatureDrift] = {}
    for name in sorted(set(ref.numeric) & set(cur.numeric)):
        drift = numeric_drift(np.concatenate(ref.numeric[name]), np.concatenate(cur.numeric[name]))
        if drift is not None:
            out[name] = drift
    for name in sorted(set(ref.classes) & set(cur.classes)):
        drift = class_drift(np.concatenate(ref.classes[name]), np.concatenate(cur.classes[name]))
        if drift is not None:
            out[name] = drift
    return out
