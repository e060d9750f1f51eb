"""`flashml datasets` and `flashml jobs`: batch scoring on a running server, over HTTP."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from flashml.cli.main import main
from flashml.cli.options import client_options, json_option
from flashml.cli.output import Bars, job_line, print_json, print_table, when
from flashml.client import Client
from flashml.jobs.records import JobRecord, ScheduleRecord


@main.group()
def datasets() -> None:
    """Upload and list datasets for batch jobs on a running server."""


@datasets.command("push")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@json_option
@client_options
def datasets_push(file: Path, as_json: bool, fml: Client) -> None:
    """Upload a .csv, .jsonl, .npy, .npz or .parquet dataset, or a .zip of images; prints its id."""
    with Bars(file.name) as bars:
        ds = fml.push_dataset(file, progress=bars)
    if as_json:
        print_json(ds)
    else:
        cols = ", ".join(c["name"] for c in ds.columns)
        click.echo(f"{ds.id}\t{ds.name}\t{ds.rows} rows\tcolumns: {cols}")


@datasets.command("list")
@json_option
@client_options
def datasets_list(as_json: bool, fml: Client) -> None:
    """List the datasets on the server."""
    found = fml.list_datasets()
    if as_json:
        print_json(found)
        return
    print_table(["id", "name", "format", "rows", "bytes", "created"],
                [[d.id, d.name, d.format, d.rows, d.size_bytes, when(d.created_at)] for d in found], "no datasets")


@datasets.command("show")
@click.argument("dataset_id")
@json_option
@client_options
def datasets_show(dataset_id: str, as_json: bool, fml: Client) -> None:
    """A dataset's format, rows and columns."""
    d = fml.get_dataset(dataset_id)
    if as_json:
        print_json(d)
        return
    click.echo(f"{d.id}: {d.name}, {d.format}, {d.rows} rows, {d.size_bytes} bytes, by {d.created_by} at "
               f"{when(d.created_at)}")
    print_table(["column", "datatype", "shape"],
                [[c.get("name"), c.get("datatype"), c.get("shape")] for c in d.columns], "no columns")


@datasets.command("delete")
@click.argument("dataset_id")
@client_options
def datasets_delete(dataset_id: str, fml: Client) -> None:
    """Delete a dataset and its stored file (refused while a queued, running or paused job or a schedule uses it)."""
    fml.delete_dataset(dataset_id)
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
@json_option
@client_options
def jobs_run(model: str, version: str | None, dataset: str, output_format: str, chunk_rows: int | None,
             on_bad_row: str, mapping: tuple[str, ...], cron: str | None, interval_s: float | None, timezone: str,
             wait: bool, output: Path | None, as_json: bool, fml: Client) -> None:
    """Score a dataset with a model now (or on a schedule)."""
    pairs = [m.partition("=") for m in mapping]
    if any(not sep or not a or not b for a, sep, b in pairs):
        raise click.UsageError("--map takes INPUT=COLUMN")
    answer = fml.run_job(model, dataset, version=version, output_format=output_format, chunk_rows=chunk_rows or None,
                         on_bad_row=on_bad_row, mapping={a: b for a, _, b in pairs} or None, cron=cron,
                         interval_s=interval_s, timezone=timezone)
    if isinstance(answer.schedule, ScheduleRecord):
        s = answer.schedule
        if as_json:
            print_json(answer)
        else:
            click.echo(f"schedule {s.id}: {s.cron or str(s.interval_s) + ' s'} ({s.timezone})")
        return
    job = answer.job
    assert isinstance(job, JobRecord)
    if not as_json:
        click.echo(job_line(job.to_dict()))
    if wait:
        job = fml.wait_job(job.id, on_progress=None if as_json else lambda j: click.echo(job_line(j.to_dict()),
                                                                                          err=True))
    if as_json:
        print_json(job)
    elif wait:
        click.echo(job_line(job.to_dict()))
    if not wait:
        return
    if job.state != "succeeded":
        if job.error:
            click.echo(f"error [{job.error['code']}]: {job.error['error']}", err=True)
        sys.exit(1)
    if output:
        with Bars(output.name) as bars:
            fml.download_result(job.id, output, progress=bars)
        click.echo(f"result saved to {output}", err=as_json)


@jobs.command("list")
@json_option
@client_options
def jobs_list(as_json: bool, fml: Client) -> None:
    """List jobs, newest first."""
    found = fml.list_jobs()
    if as_json:
        print_json(found)
        return
    rows = []
    for j in found:
        version = f"v{j.resolved_version}" if j.resolved_version else (j.version or "served")
        rows.append([j.id, j.state, f"{j.model} {version}", j.dataset_id, f"{j.rows_done}/{j.rows_total}",
                     j.rows_bad, f"{j.rows_per_s:g}" if j.rows_per_s else "", when(j.created_at)])
    print_table(["id", "state", "model", "dataset", "rows", "bad", "rows/s", "created"], rows, "no jobs")


@jobs.command("show")
@click.argument("job_id", type=int)
@json_option
@client_options
def jobs_show(job_id: int, as_json: bool, fml: Client) -> None:
    """A job's progress and its log (bad rows with their row numbers)."""
    job = fml.get_job(job_id)
    log = fml.job_log(job_id)
    if as_json:
        print_json({"job": job, "log": log})
        return
    click.echo(job_line(job.to_dict()))
    if job.error:
        click.echo(f"error [{job.error['code']}]: {job.error['error']}")
    if job.result_url:
        click.echo(f"result: {fml.server}{job.result_url}")
    for e in log:
        row = f"row {e.row}: " if e.row is not None else ""
        click.echo(f"  {e.level}\t{row}{e.message}")


@jobs.command("log")
@click.argument("job_id", type=int)
@json_option
@client_options
def jobs_log(job_id: int, as_json: bool, fml: Client) -> None:
    """A job's log: errors with their row numbers, and events, oldest first."""
    log = fml.job_log(job_id)
    if as_json:
        print_json(log)
        return
    print_table(["at (UTC)", "level", "row", "message"], [[when(e.at), e.level, e.row, e.message] for e in log],
                f"job {job_id} has logged nothing")


@jobs.command("result")
@click.argument("job_id", type=int)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Save the result here (default: job-JOB_ID-result.FORMAT in this folder).")
@client_options
def jobs_result(job_id: int, output: Path | None, fml: Client) -> None:
    """Download a succeeded job's result file."""
    job = fml.get_job(job_id)
    dest = output or Path(f"job-{job_id}-result.{job.output_format}")
    with Bars(dest.name) as bars:
        fml.download_result(job_id, dest, progress=bars)  # the server says why when there is none yet
    click.echo(f"result saved to {dest} ({dest.stat().st_size} bytes)")


CONTROLS = {"cancel": "Cancel a queued, running or paused job.",
            "pause": "Pause a queued or running job after its current chunk.",
            "resume": "Resume a paused job from its last finished chunk.",
            "retry": "Run a failed or cancelled job again from its last finished chunk."}


def _job_control(action: str, help_text: str) -> click.Command:
    # help= here: click reads a command's help when it is declared, so a docstring set afterwards never shows.
    @jobs.command(action, help=help_text)
    @click.argument("job_id", type=int)
    @json_option
    @client_options
    def command(job_id: int, as_json: bool, fml: Client) -> None:
        job = getattr(fml, f"{action}_job")(job_id)
        print_json(job) if as_json else click.echo(job_line(job.to_dict()))

    return command


for _action, _help in CONTROLS.items():
    _job_control(_action, _help)
