"""Console pages for batch jobs: /jobs (datasets, new job, jobs with live progress, schedules, housekeeping)
and /jobs/{id} (progress bar polled by htmx, cancel/pause/resume/retry buttons, download, the job's log).
A dataset is deleted in two steps: its Delete button shows a confirmation page, whose button deletes it.

They call the same JobService and DatasetService as the JSON API. Everyone signed in reads; maintainers and
admins start and control jobs (a role guard; the console's guards check the session's CSRF token on every POST).
static/datasets.js sends a dataset file to ``POST /api/v1/datasets`` with the token in a header.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import get, post
from litestar.di import Provide
from litestar.params import FromPath, FromQuery
from litestar.plugins.htmx import ClientRefresh, HTMXRequest, HTMXTemplate
from litestar.response import Redirect, Response, Template

from flashml.auth.sign_ins import SessionUser
from flashml.console.guards import SignedIn, needs_role
from flashml.console.pages import NO_STORE, ConsoleController, console_dependencies, render
from flashml.errors import DatasetNotFoundError, FlashMLError
from flashml.jobs.datasets import DatasetService
from flashml.jobs.housekeeping import Housekeeping
from flashml.jobs.records import DatasetRecord
from flashml.jobs.requests import JobRequest
from flashml.jobs.service import JobService
from flashml.records import parse_body
from flashml.registry.service import RegistryService
from flashml.web.deps import Injected
from flashml.web.params import RowId

FORM_FIELDS = ("model", "version", "dataset", "output_format", "chunk_rows", "on_bad_row", "cron", "interval_s",
               "timezone")
DONE = {"schedule": "Schedule saved: it runs the job on its own from now on.",
        "schedule_delete": "Schedule deleted; the jobs it ran stay.",
        "dataset_delete": "Dataset deleted; the jobs that scored it keep their results."}
MANAGE = [needs_role("maintainer")]  # starting and controlling jobs


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


async def dataset_or_none(datasets: DatasetService, dataset_id: str) -> DatasetRecord | None:
    """The dataset a job scored, or None once it was deleted (the page then says so beside its id)."""
    try:
        return await datasets.get(dataset_id)
    except DatasetNotFoundError:
        return None


@dataclass(frozen=True)
class JobsPage:
    """The /jobs page, rendered from what it reads: after a GET, and again with the error of a failed change."""

    jobs: JobService
    datasets: DatasetService
    registry: RegistryService
    housekeeping: Housekeeping

    async def render(self, user: SessionUser, *, notice: str | None = None, error: str | None = None,
                     form: dict[str, str] | None = None, status_code: int = 200) -> Template:
        datasets = await self.datasets.list()
        return render("jobs.html", user, active="jobs", notice=notice, error=error, status_code=status_code,
                      jobs=await self.jobs.list(), datasets=datasets, dataset_names={d.id: d.name for d in datasets},
                      models=await self.registry.list_models(), schedules=await self.jobs.list_schedules(),
                      housekeeping=await self.housekeeping.status(),
                      can_manage=user.principal().has_role("maintainer"),
                      form=form or {"output_format": "csv", "on_bad_row": "skip", "timezone": "UTC"})


def provide_jobs_page(jobs: Injected[JobService], datasets: Injected[DatasetService],
                      registry: Injected[RegistryService], housekeeping: Injected[Housekeeping]) -> JobsPage:
    return JobsPage(jobs, datasets, registry, housekeeping)


class JobsPageController(ConsoleController):
    dependencies = {**console_dependencies("jobs", "datasets", "registry", "housekeeping"),
                    "page": Provide(provide_jobs_page, sync_to_thread=False)}

    @get("/jobs")
    async def jobs_page(self, request: HTMXRequest, user: SignedIn, page: Injected[JobsPage],
                        jobs: Injected[JobService], done: FromQuery[str] = "") -> Template:
        if request.htmx:  # the table's rows, polled every 2 s
            return HTMXTemplate(template_name="_jobs_rows.html", context={"jobs": await jobs.list()},
                                headers=NO_STORE)
        return await page.render(user, notice=DONE.get(done))

    @get("/jobs/{job_id:int}")
    async def job_page(self, request: HTMXRequest, user: SignedIn, jobs: Injected[JobService],
                       datasets: Injected[DatasetService], job_id: RowId) -> Response:
        try:
            job = await jobs.get(job_id)
        except FlashMLError as exc:
            return render("job.html", user, active="jobs", job=None, error=exc.message, status_code=exc.status)
        if request.htmx:  # the progress bar, polled every second
            if job.state not in ("queued", "running"):  # finished or paused: reload once for buttons and log
                return ClientRefresh()
            return HTMXTemplate(template_name="_job_progress.html", context={"job": job}, headers=NO_STORE)
        return render("job.html", user, active="jobs", job=job, log=await jobs.log(job_id),
                      dataset=await dataset_or_none(datasets, job.dataset_id),
                      can_manage=user.principal().has_role("maintainer"), error=None)

    @post("/jobs", status_code=303, guards=MANAGE)
    async def start_job(self, request: HTMXRequest, user: SignedIn, page: Injected[JobsPage],
                        jobs: Injected[JobService]) -> Template | Redirect:
        raw = await request.form()
        form = {k: str(raw.get(k) or "").strip() for k in FORM_FIELDS}
        try:
            kind, record = await jobs.create(parse_body(job_body(form), JobRequest), actor=f"{user.name}/console")
        except ValueError as exc:
            return await page.render(user, error=f"Not started: {exc}", form=form, status_code=400)
        except FlashMLError as exc:
            return await page.render(user, error=f"Not started: {exc.message}", form=form,
                                     status_code=exc.status)
        return Redirect(f"/jobs/{record.id}" if kind == "job" else "/jobs?done=schedule", status_code=303)

    @post("/jobs/{job_id:int}/{action:str}", status_code=303, guards=MANAGE)
    async def control(self, user: SignedIn, jobs: Injected[JobService], job_id: RowId,
                      action: FromPath[str]) -> Template | Redirect:
        try:
            await jobs.control(job_id, action, actor=f"{user.name}/console")
        except FlashMLError as exc:
            job = await jobs.get(job_id)
            return render("job.html", user, active="jobs", job=job, log=await jobs.log(job_id), can_manage=True,
                          error=exc.message, status_code=exc.status)
        return Redirect(f"/jobs/{job_id}", status_code=303)

    @post("/schedules/{schedule_id:int}/delete", status_code=303, guards=MANAGE)
    async def delete_schedule(self, user: SignedIn, page: Injected[JobsPage], jobs: Injected[JobService],
                              schedule_id: RowId) -> Template | Redirect:
        try:
            await jobs.delete_schedule(schedule_id)
        except FlashMLError as exc:
            return await page.render(user, error=exc.message, status_code=exc.status)
        return Redirect("/jobs?done=schedule_delete", status_code=303)

    @post("/datasets/{dataset_id:str}/delete", status_code=303, guards=MANAGE)
    async def delete_dataset(self, request: HTMXRequest, user: SignedIn, page: Injected[JobsPage],
                             datasets: Injected[DatasetService], dataset_id: FromPath[str]) -> Template | Redirect:
        """Without confirm=yes: the confirmation page (what goes, and who still uses it); with it: the delete."""
        confirmed = (await request.form()).get("confirm") == "yes"
        try:
            if not confirmed:
                dataset = await datasets.get(dataset_id)
                job_ids, schedule_ids = await datasets.users(dataset_id)
                return render("jobs_dataset_delete.html", user, active="jobs", dataset=dataset, job_ids=job_ids,
                              schedule_ids=schedule_ids)
            await datasets.delete(dataset_id, actor=f"{user.name}/console")
        except FlashMLError as exc:
            return await page.render(user, error=f"Not deleted: {exc.message}", status_code=exc.status)
        return Redirect("/jobs?done=dataset_delete", status_code=303)
