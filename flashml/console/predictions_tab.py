"""The model page's Predictions tab: the prediction log's settings (a form), what it keeps, the newest logged
predictions as summaries (shapes, datatypes, means: never the raw tensors a caller sent) and the downloads.
``console/predictions.py`` takes the form."""

from __future__ import annotations

from typing import Any

from flashml.monitoring.prediction_log_records import LoggedPrediction
from flashml.monitoring.prediction_log_settings import PredictionLogSettings

RECENT = 5  # newest predictions shown, every version together
MEANS_SHOWN = 6  # per tensor; a wide one ends with "…"
NUMBER_FIELDS = {"sample_rate": float, "retention_s": float, "max_bytes": int}
FORM_FIELDS = ("mode", *NUMBER_FIELDS)


def _number(text: str, kind: type) -> Any:
    """A form's number as the body's number; text that is none stays text, so the body's rules word the refusal."""
    try:
        return kind(text)
    except ValueError:
        return text


def log_form_change(form: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """(the ``prediction_log`` object the form sends, the values typed in, for showing the form again)."""
    values = {f: str(form.get(f) or "").strip() for f in FORM_FIELDS}
    change: dict[str, Any] = {"enabled": form.get("enabled") == "on", "mode": values["mode"] or "full",
                              "redact_inputs": form.get("redact_inputs") == "on"}
    for name, kind in NUMBER_FIELDS.items():
        if values[name]:
            change[name] = _number(values[name], kind)
    values["enabled"] = "on" if change["enabled"] else ""
    values["redact_inputs"] = "on" if change["redact_inputs"] else ""
    return change, values


def _form_values(view: dict[str, Any]) -> dict[str, str]:
    return {"enabled": "on" if view["enabled"] else "", "redact_inputs": "on" if view["redact_inputs"] else "",
            "mode": view["mode"], "sample_rate": f"{view['sample_rate']:g}", "retention_s": f"{view['retention_s']:g}",
            "max_bytes": str(view["max_bytes"])}


def _number_text(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.4g}"  # 14603, not 1.46e+04


def summary_text(name: str, summary: dict[str, Any]) -> str:
    """``x: FP32 [1, 4], means 0.5, 1.25, …`` (and a classifier's counted top classes)."""
    text = f"{name}: {summary.get('datatype', '?')} {summary.get('shape', [])}"
    means = summary.get("mean")
    if means:
        shown = ", ".join(_number_text(m) for m in means[:MEANS_SHOWN])
        text += f", mean{'s' if len(means) > 1 else ''} {shown}{', …' if len(means) > MEANS_SHOWN else ''}"
    top = summary.get("top")
    if top and sum(top) == 1:
        text += f", top class {top.index(1)}"
    return text


def _row(p: LoggedPrediction) -> dict[str, Any]:
    return {"at": p.at, "version": p.version, "request_id": p.request_id,
            "inputs": [summary_text(n, s) for n, s in p.input_summary.items()],
            "outputs": [summary_text(n, s) for n, s in p.output_summary.items()]}


async def recent(settings: PredictionLogSettings, name: str) -> list[dict[str, Any]]:
    """The newest logged predictions of every version, newest first."""
    log = settings.log
    found: list[LoggedPrediction] = []
    for version in sorted({s.version for s in log.store.segments(name)}):
        found += await log.read(name, version, last=RECENT)
    return [_row(p) for p in sorted(found, key=lambda p: p.at, reverse=True)[:RECENT]]


async def predictions_tab(settings: PredictionLogSettings, name: str,
                          form_values: dict[str, str] | None = None) -> dict[str, Any]:
    """The tab's context: the log's view, the newest predictions and the form's values."""
    view = (await settings.view(name)).to_dict()
    return {"view": view, "recent": await recent(settings, name), "form": form_values or _form_values(view)}
