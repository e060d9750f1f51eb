"""Console pages for batch jobs: /jobs (datasets, new job, jobs with live progress, schedules, housekeeping)
and /jobs/{id} (progress bar polled by htmx, cancel/pause/resume/retry buttons, download, the job's log).

They call the same JobService and DatasetService as the JSON API. Everyone signed in reads; maintainers and
admins start and control jobs. Every POST checks the session's CSRF token first; static/datasets.js sends a
dataset file to ``POST /api/v1/datasets`` with the token in a header.
"""

from __future__ import annotations

import time
from typing import Any

from litestar import Controller, Request, get, post
from litestar.response import Redirect, Template

from flashml.auth.csrf import CSRF_FIELD, CSRF_HEADER, require_csrf
from flashml.auth.principal import require_role
from flashml.auth.sign_ins import SessionUser, SignInService
from flashml.composition import Services
from flashml.console.models import size
from flashml.console.pages import current_user, render, to_login
from flashml.errors import FlashMLError
from flashml.web.params import RowId

FORM_FIELDS = ("model", "version", "dataset", "output_format", "chunk_rows", "on_bad_row", "cron", "interval_s",
               "timezone")
DONE = {"schedule": "Schedule saved: it runs the job on its own from now on.",
        "schedule_delete": "Schedule deleted; the jobs it ran stay."}


def when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts)) if ts else "never"


def job_body(form: dict[str, str]) -> dict[str, Any]:
    """The JSON body of POST /api/v1/jobs from the console's form (ValueError in plain words)."""
    body: dict[str, Any] = {k: form[k] for k in ("model", "dataset", "output_format", "on_bad_row") if form.get(k)}
    if form.get("version"):
        body["version"] = form["version"]
    if form.get("chunk_rows"):
        if not form["chunk_rows"].isdigit():
            raise ValueError(f"Rows per chunk must be a whole number, not {form['chunk_rows']!r}.")
        body["chunk_rows"] = int(form["chunk_rows"])
    if form.get("cron") or form.get("interval_s"):
        schedule: dict[str, Any] = {"timezone": form.get("timezone") or "UTC"}
        if form.get("cron"):
            schedule["cron"] = form["cron"]
        if form.get("interval_s"):
            try:
                schedule["interval_s"] = float(form["interval_s"])
            except ValueError:
                raise ValueError(f"Every (seconds) must be a number, not {form['interval_s']!r}.") from None
        body["schedule"] = schedule
    return body


class JobsPageController(Controller):
    include_in_schema = False

    @get("/jobs")
    async def jobs_page(self, request: Request, sessions: SignInService, services: Services,
                        done: str = "") -> Template | Redirect:
        user = await current_user(request, sessions)
        if user is None:
            return to_login(request)
        if request.headers.get("HX-Request") == "true":
            return Template("_jobs_rows.html", context={"jobs": await services.jobs.list()},
                            headers={"Cache-Control": "no-store"})
        return await self._page(user, services, notice=DONE.get(done))

    async def _page(self, user: SessionUser, services: Services, *, notice: str | None = None,
                    error: str | None = None, form: dict[str, str] | None = None, status_code: int = 200) -> Template:
        return render("jobs.html", user, active="jobs", notice=notice, error=error, status_code=status_code,
                      jobs=await services.jobs.list(), datasets=await services.datasets.list(),
                      models=await services.registry.list_models(), schedules=await services.jobs.list_schedules(),
                      housekeeping=await services.housekeeping.status(),
                      can_manage=user.principal().has_role("maintainer"),
                      form=form or {"output_format": "csv", "on_bad_row": "skip", "timezone": "UTC"},
                      when=when, size=size)

    @get("/jobs/{job_id:int}")
    async def job_page(self, request: Request, sessions: SignInService, services: Services,
                       job_id: RowId) -> Template | Redirect:
        user = await current_user(request, sessions)
        if user is None:
            return to_login(request)
        try:
            job = await services.jobs.get(job_id)
        except FlashMLError as exc:
            return render("job.html", user, active="jobs", job=None, error=exc.message, status_code=exc.status)
        if request.headers.get("HX-Request") == "true":
            headers = {"Cache-Control": "no-store"}
            if job["state"] not in ("queued", "running"):  # finished or paused: reload once for buttons and log
                headers["HX-Refresh"] = "true"
            return Template("_job_progress.html", context={"job": job, "when": when}, headers=headers)
        return render("job.html", user, active="jobs", job=job, log=await services.jobs.log(job_id), when=when,
                      can_manage=user.principal().has_role("maintainer"), error=None)

    async def _checked(self, request: Request, sessions: SignInService) -> SessionUser | Redirect:
        user = await current_user(request, sessions)
        if user is None:
            return Redirect("/login?next=%2Fjobs")
        form = await request.form()
        given = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD)
        require_csrf(user.csrf_token, given if isinstance(given, str) else None)
        require_role(user.principal(), "maintainer")
        return user

    @post("/jobs", status_code=303)
    async def start_job(self, request: Request, sessions: SignInService, services: Services) -> Template | Redirect:
        user = await self._checked(request, sessions)
        if isinstance(user, Redirect):
            return user
        raw = await request.form()
        form = {k: str(raw.get(k) or "").strip() for k in FORM_FIELDS}
        try:
            kind, record = await services.jobs.create(job_body(form), actor=f"{user.name}/console")
        except ValueError as exc:
            return await self._page(user, services, error=f"Not started: {exc}", form=form, status_code=400)
        except FlashMLError as exc:
            return await self._page(user, services, error=f"Not started: {exc.message}", form=form,
                                    status_code=exc.status)
        return Redirect(f"/jobs/{record['id']}" if kind == "job" else "/jobs?done=schedule", status_code=303)

    @post("/jobs/{job_id:int}/{action:str}", status_code=303)
    async def control(self, request: Request, sessions: SignInService, services: Services, job_id: RowId,
                      action: str) -> Template | Redirect:
        user = await self._checked(request, sessions)
        if isinstance(user, Redirect):
            return user
        try:
            await services.jobs.control(job_id, action, actor=f"{user.name}/console")
        except FlashMLError as exc:
            job = await services.jobs.get(job_id)
            return render("job.html", user, active="jobs", job=job, log=await services.jobs.log(job_id), when=when,
                          can_manage=True, error=exc.message, status_code=exc.status)
        return Redirect(f"/jobs/{job_id}", status_code=303)

    @post("/schedules/{schedule_id:int}/delete", status_code=303)
    async def delete_schedule(self, request: Request, sessions: SignInService, services: Services,
                              schedule_id: RowId) -> Template | Redirect:
        user = await self._checked(request, sessions)
        if isinstance(user, Redirect):
            return user
        try:
            await services.jobs.delete_schedule(schedule_id)
        except FlashMLError as exc:
            return await self._page(user, services, error=exc.message, status_code=exc.status)
        return Redirect("/jobs?done=schedule_delete", status_code=303)
