"""The console's dashboard at /: models and their state, the last hour's traffic, and what runs where.

The page polls ``/dashboard/live`` (an htmx partial) every 10 s; the chart redraws from the JSON that partial
carries. Same numbers as ``GET /api/v1/metrics`` (flashml.inference.metrics_report). Every signed-in role reads it.
"""

from __future__ import annotations

import time

from litestar import Controller, Request, Response, get
from litestar.response import Redirect, Template

from flashml import __version__
from flashml.auth.sign_ins import SignInService
from flashml.composition import Services
from flashml.console.pages import current_user, render
from flashml.errors import FlashMLError
from flashml.inference.metrics_report import UNKNOWN_MODEL, MetricsReport

REFRESH_S = 10


def mib(n: int | None) -> str:
    return "not measured" if n is None else f"{n / 2**20:.1f} MiB"


def ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.2f} ms" if value < 1 else f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"


def percent(rate: float) -> str:
    return f"{rate * 100:.1f} %"


def duration(seconds: float) -> str:
    minutes, _ = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if days else f"{hours} h {minutes} min" if hours else f"{minutes} min"


def minute(timestamp: int) -> str:
    return time.strftime("%H:%M", time.gmtime(timestamp))


def model_label(name: str) -> str:
    return "(no such model, or nothing serving)" if name == UNKNOWN_MODEL else name


def chart_data(report: MetricsReport) -> dict[str, list]:
    """Columns for uPlot: minute starts (s), requests/s, p50 and p99 (ms; null where nothing was answered)."""
    return {"t": [p.timestamp for p in report.points], "rps": [p.rps for p in report.points],
            "p50": [p.p50_ms for p in report.points], "p99": [p.p99_ms for p in report.points],
            "requests": report.summary.requests}


def _context(report: MetricsReport) -> dict:
    return {"report": report, "chart": chart_data(report), "mib": mib, "ms": ms, "percent": percent,
            "duration": duration, "model_label": model_label, "minute": minute, "refresh_s": REFRESH_S,
            "updated": time.strftime("%H:%M:%S UTC", time.gmtime(report.generated_at))}


class DashboardController(Controller):
    include_in_schema = False

    @get("/")
    async def dashboard(self, request: Request, sessions: SignInService, services: Services,
                        model: str = "") -> Template | Redirect:
        user = await current_user(request, sessions)
        if user is None:
            return Redirect("/login")
        names = [m.name for m in await services.registry.list_models()]
        try:
            report = await services.reports.report(model or None)
        except FlashMLError as exc:
            report, error = await services.reports.report(), exc.message
            model = ""
        else:
            error = None
        return render("dashboard.html", user, active="dashboard", version=__version__, model=model, names=names,
                      error=error, **_context(report))

    @get("/dashboard")
    async def dashboard_alias(self) -> Redirect:
        return Redirect("/")

    @get("/dashboard/live")
    async def live(self, request: Request, sessions: SignInService, services: Services,
                   model: str = "") -> Template | Response:
        """The part of the page that refreshes: tiles, tables and the chart's numbers."""
        user = await current_user(request, sessions)
        if user is None:  # the session ended while the page was open: the whole page goes to the sign-in form
            return Response(b"", status_code=200, headers={"HX-Redirect": "/login?next=%2F"})
        try:
            report = await services.reports.report(model or None)
        except FlashMLError:
            report = await services.reports.report()
        return Template("_dashboard_live.html", context=_context(report), headers={"Cache-Control": "no-store"})
