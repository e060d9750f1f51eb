"""`flashml predictions export` and `flashml models log`: a model's prediction log, over HTTP like any client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from msgspec import UnsetType

from flashml.cli.main import main
from flashml.cli.models import models
from flashml.cli.options import client_options, json_option
from flashml.cli.output import Bars, print_json
from flashml.client import Client


@main.group()
def predictions() -> None:
    """Export the predictions a running server logged (switch logging on with `flashml models log`)."""


@predictions.command("export")
@click.argument("model")
@click.option("--version", type=int, help="Only this version (default: every version, one after another).")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "parquet"]), default="jsonl", show_default=True,
              help="JSON Lines as logged, or Parquet with a list column per tensor.")
@click.option("--since", type=float, help="Only predictions logged at or after this time (UNIX seconds).")
@click.option("--until", type=float, help="Only predictions logged before this time (UNIX seconds).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Save the file here (default: MODEL[-vN]-predictions.FORMAT in this folder).")
@client_options
def predictions_export(model: str, version: int | None, fmt: str, since: float | None, until: float | None,
                       output: Path | None, fml: Client) -> None:
    """Download MODEL's logged predictions, oldest first."""
    dest = output or Path(f"{model}{'' if version is None else f'-v{version}'}-predictions.{fmt}")
    with Bars(dest.name) as bars:
        fml.export_predictions(model, dest, version=version, format=fmt, since=since, until=until, progress=bars)
    click.echo(f"predictions saved to {dest} ({dest.stat().st_size} bytes)")


def log_text(model: str, view: dict[str, Any]) -> str:
    """One line: whether MODEL's log is on, how, and what it keeps."""
    if view["enabled"]:
        kept = "summaries only" if view["mode"] == "summary" else (
            "outputs and input summaries" if view["redact_inputs"] else "inputs and outputs")
        state = f"on, {view['sample_rate'] * 100:g}% of requests, {kept}"
    else:
        state = "off"
    return (f"{model}: prediction log {state}; {view['records']} kept ({view['bytes']} bytes), up to "
            f"{view['retention_s']:g} s and {view['max_bytes']} bytes")


# A subcommand of `flashml models`, beside `models cache`: both are per-model settings a PATCH changes.
@models.command("log")
@click.argument("model")
@click.option("--on/--off", "enabled", default=None, help="Switch the prediction log on or off (omit: just show it).")
@click.option("--sample-rate", type=float, help="The share of requests logged, above 0 and up to 1.")
@click.option("--mode", type=click.Choice(["full", "summary"]), help="full: inputs and outputs; summary: only their "
              "summaries (shape, datatype, per-feature means).")
@click.option("--redact-inputs/--keep-inputs", default=None, help="Drop raw inputs, keep their summaries.")
@click.option("--retention-s", type=float, help="Seconds a prediction is kept (at most the server's setting).")
@click.option("--max-bytes", type=int, help="Bytes kept, the oldest removed first (at most the server's setting).")
@json_option
@client_options
def models_log(model: str, as_json: bool, fml: Client, **options: Any) -> None:
    """Show or set MODEL's prediction log: a sampled share of its requests, kept on the server's disk."""
    change = {name: value for name, value in options.items() if value is not None}
    view = fml.set_prediction_log(model, **change) if change else fml.get_model(model).prediction_log
    assert not isinstance(view, UnsetType)  # the API fills it
    if as_json:
        print_json(view)
    else:
        click.echo(log_text(model, view.to_dict()))
