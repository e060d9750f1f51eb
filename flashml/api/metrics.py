"""GET /api/v1/metrics: requests, errors and latency per minute over the last hour, and what runs where."""

from __future__ import annotations

from litestar import Controller, get
from litestar.params import Parameter

from flashml.inference.metrics_report import MetricsReport, MetricsReportService
from flashml.web.deps import Authenticated, Injected, provide


class MetricsController(Controller):
    path = "/api/v1/metrics"
    tags = ["Metrics"]
    dependencies = provide("reports")

    @get("/", summary="Requests/s, error rate and p50/p99 latency per minute (last hour), and what runs where")
    async def get_metrics(self, viewer: Authenticated, reports: Injected[MetricsReportService],
                          model: str | None = Parameter(default=None, description="only this model's requests")
                          ) -> MetricsReport:
        """Counted in this process since it started (at most the last hour); viewers and stronger roles."""
        return await reports.report(model or None)
