"""Small records for answers whose server-side types live in layers a client must not import."""

from __future__ import annotations

from typing import Any

from flashml.records import Record


class MetricsSummary(Record):
    """The last hour (or since the server started): requests, errors and latency over the whole window."""

    window_s: float
    requests: int
    errors: int
    errors_4xx: int
    errors_5xx: int
    rejected: int  # 429 (a key over its limits) and 503 (a full queue); also counted in errors
    rps: float
    error_rate: float
    p50_ms: float | None
    p99_ms: float | None


class MetricsReport(Record):
    """GET /api/v1/metrics: the summary, per-minute points, per-model activity and what runs where (the last
    three as the API sends them)."""

    generated_at: float
    window_minutes: int
    model: str | None
    summary: MetricsSummary
    points: list[dict[str, Any]]
    models: list[dict[str, Any]] = []
    running: list[dict[str, Any]] = []
    process: dict[str, Any] | None = None
