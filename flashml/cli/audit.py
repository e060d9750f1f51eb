"""`flashml audit`: who did what, when, from the server's audit log, over HTTP."""

from __future__ import annotations

import fnmatch

import click

from flashml.cli.main import main
from flashml.cli.options import client_options, json_option
from flashml.cli.output import print_json, print_table, when
from flashml.client import Client


@main.command("audit")
@click.option("--limit", type=click.IntRange(1, 10000), default=100, show_default=True,
              help="How many of the newest events to read before the filters below.")
@click.option("--action", "actions", multiple=True,
              help="Only these actions, e.g. key.create or 'user.*' (repeatable; * and ? match).")
@click.option("--actor", help="Only events whose actor contains this, e.g. ada or key:deploy.")
@click.option("--target", help="Only events whose target contains this, e.g. resnet or key:3.")
@click.option("--since", type=float, help="Only events at or after this time (UNIX seconds).")
@json_option
@client_options
def audit(limit: int, actions: tuple[str, ...], actor: str | None, target: str | None, since: float | None,
          as_json: bool, fml: Client) -> None:
    """The audit log, newest first (viewer and maintainer keys see model events only)."""
    events = [e for e in fml.audit(limit)
              if (not actions or any(fnmatch.fnmatchcase(e.action, a) for a in actions))
              and (actor is None or actor in e.actor) and (target is None or target in e.target)
              and (since is None or e.at >= since)]
    if as_json:
        print_json(events)
        return
    print_table(["at (UTC)", "actor", "action", "target", "detail"],
                [[when(e.at), e.actor, e.action, e.target, "; ".join(e.detail_lines)] for e in events],
                "no audit events match")
