"""`flashml schedules`: the batch jobs that run on a cron schedule or an interval, over HTTP."""

from __future__ import annotations

import click

from flashml.cli.main import main
from flashml.cli.options import client_options, json_option
from flashml.cli.output import print_json, print_table, when
from flashml.client import Client


@main.group()
def schedules() -> None:
    """List and delete job schedules on a running server (`flashml jobs run --cron/--every` makes them)."""


@schedules.command("list")
@json_option
@client_options
def schedules_list(as_json: bool, fml: Client) -> None:
    """List the schedules with their next run."""
    found = fml.list_schedules()
    if as_json:
        print_json(found)
        return
    rows = []
    for s in found:
        rows.append([s.id, s.spec.get("model"), s.spec.get("dataset"), s.cron or f"every {s.interval_s:g} s",
                     s.timezone, when(s.next_run_at), s.last_job_id])
    print_table(["id", "model", "dataset", "when", "timezone", "next run (UTC)", "last job"], rows, "no schedules")


@schedules.command("delete")
@click.argument("schedule_id", type=int)
@client_options
def schedules_delete(schedule_id: int, fml: Client) -> None:
    """Delete a schedule (the jobs it ran stay)."""
    fml.delete_schedule(schedule_id)
    click.echo(f"Deleted schedule {schedule_id}.")
