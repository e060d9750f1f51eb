"""`flashml models drift`: show or set a model's drift monitoring, check it now, and read its newest scores, over
HTTP like any client (PATCH /api/v1/models/{model} with "drift", POST .../drift/check, GET .../drift)."""

from __future__ import annotations

from typing import Any

import click

from flashml.cli.models import models
from flashml.cli.options import client_options, json_option
from flashml.cli.output import print_json
from flashml.client import Client

OPTION_FIELDS = ("enabled", "reference", "reference_dataset", "reference_size", "window_size", "window_s",
                 "min_predictions", "threshold", "rollback")


def config_text(model: str, config: dict[str, Any]) -> str:
    """One line: whether MODEL is watched, against what, over which window, and what happens past the threshold."""
    if not config["enabled"]:
        return f"{model}: drift monitoring off"
    reference = (f"the first {config['reference_size']} rows of dataset {config['reference_dataset']}"
                 if config["reference"] == "dataset" else f"the first {config['reference_size']} logged predictions")
    window = f"the last {config['window_size']} logged predictions"
    if config["window_s"]:
        window += f" of the last {config['window_s']:g} s"
    rollback = "guarded canaries roll back past max_drift" if config["rollback"] else "no rollback"
    return f"{model}: drift monitoring on, {reference} against {window}; threshold {config['threshold']:g}, {rollback}"


def report_lines(report: dict[str, Any]) -> list[str]:
    """A version's newest scores, one feature a line, those above the threshold marked."""
    if report["version"] is None:
        return ["no version has drift scores yet"]
    head = f"v{report['version']}: {'ALERT, a feature is above' if report['alert'] else 'within'} the threshold"
    lines = [f"{head} {report['threshold']:g}"]
    width = max((len(f["feature"]) for f in report["features"]), default=0)
    for feature in report["features"]:
        p_value = feature["points"][-1]["p_value"]
        tested = "" if p_value is None else f"  p={p_value:.3g}"
        lines.append(f"  {feature['feature']:<{width}}  {feature['latest']:.4f}{tested}"
                     f"{'  above' if feature['above'] else ''}")
    return lines


@models.command("drift")
@click.argument("model")
@click.option("--on/--off", "enabled", default=None, help="Watch the model's versions for drift, or stop.")
@click.option("--reference", type=click.Choice(["first", "dataset"]),
              help="first: each version's first logged predictions; dataset: --reference-dataset's rows.")
@click.option("--reference-dataset", help="The id of a dataset uploaded for batch jobs (with --reference dataset).")
@click.option("--reference-size", type=int, help="Predictions (or dataset rows) in the reference.")
@click.option("--window-size", type=int, help="The current window: the last this many logged predictions.")
@click.option("--window-s", type=float, help="And only those of the last this many seconds.")
@click.option("--min-predictions", type=int, help="Predictions the current window needs to be scored.")
@click.option("--threshold", type=float, help="The drift score (PSI) above which a feature raises an alert.")
@click.option("--rollback/--no-rollback", default=None,
              help="Whether a guarded canary whose drift passes its guard's max_drift goes back to the stable version.")
@click.option("--check", is_flag=True, help="Score the ready versions now instead of waiting for the next round.")
@click.option("--version", type=int, help="Show this version's scores (default: the newest version with scores).")
@json_option
@client_options
def models_drift(model: str, check: bool, version: int | None, as_json: bool, fml: Client, **options: Any) -> None:
    """Show or set MODEL's drift monitoring, and its newest drift scores."""
    change = {name: options[name] for name in OPTION_FIELDS if options[name] is not None}
    if change:
        fml.set_drift(model, **change)
    checked = fml.check_drift(model) if check else None
    report = fml.drift(model, version)
    if as_json:
        print_json({"check": checked, "report": report} if checked else report)
        return
    for outcome in checked.versions if checked else []:
        if not outcome.scored:
            click.echo(f"v{outcome.version} not scored: {outcome.reason}")
    click.echo(config_text(model, report.config.to_dict()))
    for line in report_lines(report.to_dict()):
        click.echo(line)
