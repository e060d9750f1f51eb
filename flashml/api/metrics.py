"""GET /api/v1/metrics: requests, errors and latency per minute over the last hour, and what runs where."""

from __future__ import annotations

from litestar import Controller, get
from litestar.params import Parameter

from flashml.auth.principal import Principal
from flashml.composition import Services
from flashml.inference.metrics_report import MetricsReport


class MetricsController(Controller):
    path = "/api/v1/metrics"
    tags = ["Metrics"]

    @get("/", summary="Requests/s, error rate and p50/p99 latency per minute (last hour), and what runs where")
    async def get_metrics(self, viewer: Principal, services: Services,
                          model: str | None = Parameter(default=None, description="only this model's requests")
                          ) -> MetricsReport:
        """Counted in this process since it started (at most the last hour); viewers and stronger roles."""
        return await services.reports.report(model or None)
