"""`flashml metrics` and `flashml whoami`: the server's last hour and the caller's identity, over HTTP."""

from __future__ import annotations

import click
from msgspec import UNSET

from flashml.cli.main import main
from flashml.cli.options import client_options, json_option
from flashml.cli.output import print_json, print_table
from flashml.client import Client


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


@main.command("metrics")
@click.option("--model", help="Only this model's requests.")
@json_option
@client_options
def metrics(model: str | None, as_json: bool, fml: Client) -> None:
    """Requests, errors and p50/p99 latency of the last hour (GET /api/v1/metrics), and what runs where."""
    report = fml.metrics(model)
    if as_json:
        print_json(report)
        return
    s = report.summary
    click.echo(f"{report.model or 'all models'}, last {s.window_s:g} s: {s.requests} requests ({s.rps:g}/s), "
               f"{s.errors} errors ({s.error_rate * 100:.2f}%: {s.errors_4xx} 4xx, {s.errors_5xx} 5xx, "
               f"{s.rejected} rejected), p50 {_ms(s.p50_ms)} ms, p99 {_ms(s.p99_ms)} ms")
    rows = [[f"{r['model']} v{r['version']}", r["device"], r["instance_count"], r["in_flight"], r["queued"],
             r["last_hour"]["requests"], _ms(r["last_hour"]["p50_ms"]), _ms(r["last_hour"]["p99_ms"])]
            for r in report.running]
    print_table(["running", "device", "instances", "in flight", "queued", "requests", "p50 ms", "p99 ms"], rows,
                "no version is loaded")


@main.command("whoami")
@json_option
@client_options
def whoami(as_json: bool, fml: Client) -> None:
    """Which key (or user) the server sees: its name, role, models and limits."""
    me = fml.whoami()
    if as_json:
        print_json(me)
        return
    if me.key is not UNSET:
        k = me.key
        scope = ", ".join(k.models) if k.models else "all models"
        click.echo(f"key {k.id} ({k.key_id}) \"{k.name}\": {k.role}, {scope}; made by {k.user}; at {fml.server}")
    elif me.user is not UNSET:
        click.echo(f"user {me.user.name}: {me.user.role}; at {fml.server}")
