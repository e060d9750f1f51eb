"""The model page's Drift tab: each scored version's scores over time (a chart with the threshold line, and the
newest numbers), why a version is not scored yet, and the form's values (``console/drift.py`` takes the form).
"""

from __future__ import annotations

from typing import Any

from flashml.errors import FlashMLError
from flashml.monitoring.drift_report import drift_report
from flashml.monitoring.drift_service import DriftService

VERSIONS_SHOWN = 3  # the newest scored versions get a chart each (a canary beside its stable version)
NUMBER_FIELDS = {"reference_size": int, "window_size": int, "min_predictions": int, "threshold": float,
                 "window_s": float}
FORM_FIELDS = ("reference", "reference_dataset", *NUMBER_FIELDS)


def _number(text: str, kind: type) -> Any:
    """A form's number as the body's number; text that is none stays text, so the body's rules word the refusal."""
    try:
        return kind(text)
    except ValueError:
        return text


def drift_form_change(form: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """(the ``drift`` object the form sends, the values typed in, for showing the form again)."""
    values = {f: str(form.get(f) or "").strip() for f in FORM_FIELDS}
    change: dict[str, Any] = {"enabled": form.get("enabled") == "on", "rollback": form.get("rollback") == "on",
                              "reference": values["reference"] or "first",
                              "reference_dataset": values["reference_dataset"] or None}
    for name, kind in NUMBER_FIELDS.items():
        if values[name]:
            change[name] = _number(values[name], kind)
        elif name == "window_s":
            change[name] = None  # empty: the window has no age limit
    values["enabled"] = "on" if change["enabled"] else ""
    values["rollback"] = "on" if change["rollback"] else ""
    return change, values


def _form_values(config: dict[str, Any]) -> dict[str, str]:
    out = {k: "" if config[k] is None else str(config[k]) for k in FORM_FIELDS}
    out["enabled"] = "on" if config["enabled"] else ""
    out["rollback"] = "on" if config["rollback"] else ""
    return out


async def drift_tab(drift: DriftService, name: str,
                    form_values: dict[str, str] | None = None) -> dict[str, Any] | None:
    """The Drift tab's context: settings, the newest scored versions' series (and chart data), the form; None for a
    model that does not exist (the page says so)."""
    try:
        newest = await drift_report(drift, name)
    except FlashMLError:
        return None
    reports = [newest] + [await drift_report(drift, name, v) for v in newest.versions[1:VERSIONS_SHOWN]]
    versions = []
    for report in reports:
        if report.version is None:
            continue
        times = sorted({p.at for f in report.features for p in f.points})
        index = {t: i for i, t in enumerate(times)}
        series = []
        for feature in report.features:
            scores: list[float | None] = [None] * len(times)
            for point in feature.points:
                scores[index[point.at]] = round(point.score, 4)
            series.append({"label": feature.feature, "scores": scores})
        versions.append({"version": report.version, "alert": report.alert, "checked_at": report.checked_at,
                         "features": [f.to_dict() for f in report.features],
                         "chart": {"t": times, "threshold": report.threshold, "series": series}})
    config = newest.config.to_dict()
    last = drift.last_checks.get(name)
    waiting = [{"version": v.version, "reason": v.reason} for v in last.versions if not v.scored] if last else []
    return {"config": config, "versions": versions, "waiting": waiting, "checked_at": last.at if last else None,
            "interval_s": drift.interval_s, "form": form_values or _form_values(config)}


