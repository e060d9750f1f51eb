"""Drift API: a version's scores over time (viewers), and a check run now (maintainers and admins).

A model's drift settings are changed with ``PATCH /api/v1/models/{model}`` (``{"drift": {...}}``) like its other
settings; the scores are computed in the background every ``drift_interval_s``, or at once with POST .../check.
"""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.params import Parameter

from flashml.monitoring.drift_records import DriftCheck, DriftReport
from flashml.monitoring.drift_report import drift_report
from flashml.monitoring.drift_service import DriftService
from flashml.web.deps import Authenticated, Injected, provide
from flashml.web.params import MAX_ROW_ID

OptionalVersion = Annotated[int | None, Parameter(ge=1, le=MAX_ROW_ID, description="a version number; default: the "
                                                                                   "newest version with scores")]
Since = Annotated[float | None, Parameter(ge=0, description="only scores from this UNIX time on")]


class DriftController(Controller):
    path = "/api/v1/models/{model:str}/drift"
    tags = ["Models"]
    dependencies = provide("drift")

    @get("/", summary="A version's drift scores over time, per feature, with the threshold")
    async def get_drift(self, model: str, viewer: Authenticated, drift: Injected[DriftService],
                        version: OptionalVersion = None, since: Since = None) -> DriftReport:
        return await drift_report(drift, model, version, since)

    @post("/check", summary="Score the model's ready versions for drift now", status_code=200)
    async def check_drift(self, model: str, maintainer: Authenticated, drift: Injected[DriftService]) -> DriftCheck:
        """The same round the background runs every drift_interval_s, for this model, now: each ready version's
        scores, or why it was not scored yet (its reference or window is not full)."""
        return await drift.check(model)
