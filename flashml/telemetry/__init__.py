"""In-process request metrics: per model version, per minute, over the last hour; and memory readings."""

from flashml.telemetry.recorder import MinuteTotals, RequestMetrics

__all__ = ["MinuteTotals", "RequestMetrics"]
