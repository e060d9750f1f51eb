"""The console's dashboard at /: models and their state, the last hour's traffic, and what runs where.

The page polls ``/dashboard/live`` (an htmx partial) every 10 s; the chart redraws from the JSON that partial
carries. Same numbers as ``GET /api/v1/metrics`` (flashml.inference.metrics_report). Every signed-in role reads it.
Its Monitoring panel points at what a monitoring stack reads: GET /metrics (and who may read it), the Grafana
dashboard FlashML ships, and the documentation page that says how to set them up.
"""

from __future__ import annotations

from typing import Any

from litestar import get
from litestar.params import FromQuery
from litestar.plugins.htmx import HTMXTemplate
from litestar.response import Redirect, Template

from flashml import __version__
from flashml.console.guards import SignedIn
from flashml.console.pages import NO_STORE, ConsoleController, console_dependencies, render
from flashml.errors import FlashMLError
from flashml.inference.metrics_report import UNKNOWN_MODEL, MetricsReport, MetricsReportService
from flashml.registry.service import RegistryService
from flashml.settings import Settings
from flashml.web.deps import Injected

REFRESH_S = 10
# Who may read GET /metrics under each metrics_access (flashml.api.prometheus), said on the Monitoring panel.
METRICS_READERS = {"loopback": "anyone on this machine; from elsewhere, a viewer API key or stronger",
                   "key": "a viewer API key or stronger (Authorization: Bearer), from anywhere",
                   "open": "anyone who can reach this server, without a key"}


def model_label(name: str) -> str:
    return "(no such model, or nothing serving)" if name == UNKNOWN_MODEL else name


def chart_data(report: MetricsReport) -> dict[str, Any]:
    """Columns for uPlot: minute starts (s), requests/s, p50 and p99 (ms; null where nothing was answered)."""
    return {"t": [p.timestamp for p in report.points], "rps": [p.rps for p in report.points],
            "p50": [p.p50_ms for p in report.points], "p99": [p.p99_ms for p in report.points],
            "requests": report.summary.requests}


def _context(report: MetricsReport) -> dict[str, Any]:
    return {"report": report, "chart": chart_data(report), "model_label": model_label, "refresh_s": REFRESH_S}


class DashboardController(ConsoleController):
    dependencies = console_dependencies("registry", "reports", "settings")

    @get("/")
    async def dashboard(self, user: SignedIn, registry: Injected[RegistryService],
                        reports: Injected[MetricsReportService], settings: Injected[Settings],
                        model: FromQuery[str] = "") -> Template:
        names = [m.name for m in await registry.list_models()]
        error: str | None = None
        try:
            report = await reports.report(model or None)
        except FlashMLError as exc:
            report, error = await reports.report(), exc.message
            model = ""
        return render("dashboard.html", user, active="dashboard", version=__version__, model=model, names=names,
                      error=error, metrics_access=settings.metrics_access,
                      metrics_readers=METRICS_READERS[settings.metrics_access], **_context(report))

    @get("/dashboard")
    async def dashboard_alias(self) -> Redirect:
        return Redirect("/")

    @get("/dashboard/live")
    async def live(self, reports: Injected[MetricsReportService], model: FromQuery[str] = "") -> Template:
        """The part of the page that refreshes: tiles, tables and the chart's numbers. A session that ended
        while the page was open sends the whole page to the sign-in form (the guards' client redirect)."""
        try:
            report = await reports.report(model or None)
        except FlashMLError:
            report = await reports.report()
        return HTMXTemplate(template_name="_dashboard_live.html", context=_context(report), headers=NO_STORE)
