"""The prediction log's numbers for GET /metrics, read from its counters when Prometheus scrapes."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, Metric

from flashml.monitoring.prediction_log import PredictionLog


class PredictionLogCollector:
    """flashml_prediction_log_records (written, per model and version) and flashml_prediction_log_dropped (per
    model: offered while the queue was full), both since the server started."""

    def __init__(self, log: PredictionLog) -> None:
        self.log = log

    def describe(self) -> Iterator[Metric]:
        return self._families()

    def collect(self) -> Iterator[Metric]:
        return self._families()

    def _families(self) -> Iterator[Metric]:
        records = CounterMetricFamily("flashml_prediction_log_records", "Predictions written to the prediction log",
                                      labels=["model", "version"])
        for (model, version), count in sorted(self.log.written.items()):
            records.add_metric([model, str(version)], count)
        dropped = CounterMetricFamily("flashml_prediction_log_dropped", "Sampled predictions dropped because the "
                                      "prediction log's queue was full", labels=["model"])
        for model, count in sorted(self.log.dropped.items()):
            dropped.add_metric([model], count)
        yield records
        yield dropped
