"""Drift for Prometheus: the newest round's scores, each version's threshold and whether it is alerting.

- ``flashml_drift_score{model, version, feature}``: the feature's PSI in the newest round (``feature="output"``
  for the predictions);
- ``flashml_drift_threshold{model, version}``: the threshold it is held to;
- ``flashml_drift_alert{model, version}``: 1 while a feature is above the threshold, else 0.

Read at scrape time from ``DriftService.latest``; only models whose drift monitoring is on are shown, so
switching it off clears an alert.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from flashml.monitoring.drift_service import DriftService


def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
    return (GaugeMetricFamily("flashml_drift_score", "Drift score (PSI) of a feature against the version's reference, "
                              "newest round", labels=["model", "version", "feature"]),
            GaugeMetricFamily("flashml_drift_threshold", "Drift score above which a feature raises an alert",
                              labels=["model", "version"]),
            GaugeMetricFamily("flashml_drift_alert", "1 while a feature of the version is above its drift threshold",
                              labels=["model", "version"]))


class DriftCollector:
    """A prometheus_client collector over the drift service's newest scores."""

    def __init__(self, drift: DriftService) -> None:
        self.drift = drift

    def describe(self) -> Iterator[Metric]:
        yield from _families()

    def collect(self) -> Iterator[Metric]:
        score, threshold, alert = _families()
        for (model, version), state in sorted(self.drift.latest.items()):
            if not self.drift.config(model).enabled:
                continue
            labels = [model, str(version)]
            for feature, value in sorted(state.scores.items()):
                score.add_metric([*labels, feature], value.score)
            threshold.add_metric(labels, state.threshold)
            alert.add_metric(labels, 1.0 if state.alert else 0.0)
        yield from (score, threshold, alert)
