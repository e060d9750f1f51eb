"""`flashml datasets` and `flashml jobs`: batch scoring on a running server, over HTTP."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click

from flashml.cli.main import main
from flashml.cli.options import client_options
from flashml.cli.output import job_line
from flashml.client import api_call, api_get, download, push_dataset


@main.group()
def datasets() -> None:
    """Upload and list datasets for batch jobs on a running server."""


@datasets.command("push")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the dataset record as JSON.")
@client_options
def datasets_push(file: Path, as_json: bool, url: str, key: str) -> None:
    """Upload a .csv, .jsonl, .npy, .npz or .parquet dataset, or a .zip of images; prints its id."""
    ds = push_dataset(url, key, file)
    if as_json:
        click.echo(json.dumps(ds, indent=2))
    else:
        cols = ", ".join(c["name"] for c in ds["columns"])
        click.echo(f"{ds['id']}\t{ds['name']}\t{ds['rows']} rows\tcolumns: {cols}")


@datasets.command("list")
@client_options
def datasets_list(url: str, key: str) -> None:
    """List the datasets on the server."""
    for ds in api_get(url, key, "/api/v1/datasets"):
        click.echo(f"{ds['id']}\t{ds['name']}\t{ds['format']}\t{ds['rows']} rows")


@datasets.command("delete")
@click.argument("dataset_id")
@client_options
def datasets_delete(dataset_id: str, url: str, key: str) -> None:
    """Delete a dataset and its stored file (refused while a queued, running or paused job or a schedule uses it)."""
    api_call(url, key, "DELETE", f"/api/v1/datasets/{quote(dataset_id, safe='')}")
    click.echo(f"Deleted dataset {dataset_id}.")


@main.group()
def jobs() -> None:
    """Run, list and control batch scoring jobs on a running server."""


@jobs.command("run")
@click.option("--model", required=True, help="The model that scores the dataset.")
@click.option("--version", default=None, help="A version number or an alias (default: the served version).")
@click.option("--dataset", required=True, help="The dataset's id (flashml datasets push prints it).")
@click.option("--format", "output_format", type=click.Choice(["csv", "jsonl", "npy", "npz", "parquet"]),
              default="csv", show_default=True, help="The result file's format.")
@click.option("--chunk-rows", type=int, default=None, help="Rows per chunk (the server's job_chunk_rows if not given).")
@click.option("--on-bad-row", type=click.Choice(["skip", "fail"]), default="skip", show_default=True,
              help="A row the model cannot take: skip it (the job's log names its row number) or fail the job.")
@click.option("--map", "mapping", multiple=True, metavar="INPUT=COLUMN", help="Feed INPUT from COLUMN (repeatable).")
@click.option("--cron", default=None, help="Run on this cron schedule (five fields) instead of now.")
@click.option("--every", "interval_s", type=float, default=None, help="Run every this many seconds instead of now.")
@click.option("--timezone", default="UTC", show_default=True, help="The schedule's time zone.")
@click.option("--wait", is_flag=True, help="Wait for the job to finish and show its progress.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="With --wait: save the result file here.")
@client_options
def jobs_run(model: str, version: str | None, dataset: str, output_format: str, chunk_rows: int | None,
             on_bad_row: str, mapping: tuple[str, ...], cron: str | None, interval_s: float | None, timezone: str,
             wait: bool, output: Path | None, url: str, key: str) -> None:
    """Score a dataset with a model now (or on a schedule)."""
    body: dict[str, Any] = {"model": model, "dataset": dataset, "output_format": output_format,
                            "on_bad_row": on_bad_row}
    if version:
        body["version"] = version
    if chunk_rows:
        body["chunk_rows"] = chunk_rows
    if mapping:
        pairs = [m.partition("=") for m in mapping]
        if any(not sep or not a or not b for a, sep, b in pairs):
            raise click.UsageError("--map takes INPUT=COLUMN")
        body["mapping"] = {a: b for a, _, b in pairs}
    if cron or interval_s:
        body["schedule"] = {"cron": cron, "interval_s": interval_s, "timezone": timezone}
        body["schedule"] = {k: v for k, v in body["schedule"].items() if v is not None}
    answer = api_call(url, key, "POST", "/api/v1/jobs", body)
    if "schedule" in answer:
        s = answer["schedule"]
        click.echo(f"schedule {s['id']}: {s['cron'] or str(s['interval_s']) + ' s'} ({s['timezone']})")
        return
    job = answer["job"]
    click.echo(job_line(job))
    if not wait:
        return
    while job["state"] in ("queued", "running"):
        time.sleep(1)
        job = api_call(url, key, "GET", f"/api/v1/jobs/{job['id']}")
        click.echo(job_line(job), err=True)
    click.echo(job_line(job))
    if job["state"] != "succeeded":
        if job["error"]:
            click.echo(f"error [{job['error']['code']}]: {job['error']['error']}", err=True)
        sys.exit(1)
    if output:
        download(url, key, job["result_url"], output)
        click.echo(f"result saved to {output}")


@jobs.command("list")
@client_options
def jobs_list(url: str, key: str) -> None:
    """List jobs, newest first."""
    for j in api_get(url, key, "/api/v1/jobs"):
        click.echo(job_line(j))


@jobs.command("show")
@click.argument("job_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the job record and its log as JSON.")
@client_options
def jobs_show(job_id: int, as_json: bool, url: str, key: str) -> None:
    """A job's progress and its log (bad rows with their row numbers)."""
    job = api_get(url, key, f"/api/v1/jobs/{job_id}")
    log = api_get(url, key, f"/api/v1/jobs/{job_id}/log")
    if as_json:
        click.echo(json.dumps({"job": job, "log": log}, indent=2))
        return
    click.echo(job_line(job))
    if job["error"]:
        click.echo(f"error [{job['error']['code']}]: {job['error']['error']}")
    if job["result_url"]:
        click.echo(f"result: {url.rstrip('/')}{job['result_url']}")
    for e in log:
        row = f"row {e['row']}: " if e["row"] is not None else ""
        click.echo(f"  {e['level']}\t{row}{e['message']}")


@jobs.command("result")
@click.argument("job_id", type=int)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Save the result here (default: job-JOB_ID-result.FORMAT in this folder).")
@client_options
def jobs_result(job_id: int, output: Path | None, url: str, key: str) -> None:
    """Download a succeeded job's result file."""
    job = api_get(url, key, f"/api/v1/jobs/{job_id}")
    dest = output or Path(f"job-{job_id}-result.{job['output_format']}")
    download(url, key, f"/api/v1/jobs/{job_id}/result", dest)  # the server says why when there is none yet
    click.echo(f"result saved to {dest} ({dest.stat().st_size} bytes)")


CONTROLS = {"cancel": "Cancel a queued, running or paused job.",
            "pause": "Pause a queued or running job after its current chunk.",
            "resume": "Resume a paused job from its last finished chunk.",
            "retry": "Run a failed or cancelled job again from its last finished chunk."}


def _job_control(action: str, help_text: str) -> click.Command:
    # help= here: click reads a command's help when it is declared, so a docstring set afterwards never shows.
    @jobs.command(action, help=help_text)
    @click.argument("job_id", type=int)
    @client_options
    def command(job_id: int, url: str, key: str) -> None:
        click.echo(job_line(api_call(url, key, "POST", f"/api/v1/jobs/{job_id}/{action}")))

    return command


for _action, _help in CONTROLS.items():
    _job_control(_action, _help)
