"""`flashml models`: upload, list, show, delete, pin, cache, serving config and aliases, over HTTP through
flashml.client like any program."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from flashml.cli.main import main
from flashml.cli.options import client_options, json_option
from flashml.cli.output import Bars, alias_text, config_lines, print_json, print_table, when
from flashml.client import Client
from flashml.errors import FlashMLError
from flashml.registry.aliases import parse_guard_text, parse_shadow_text, parse_target_text
from flashml.runtime.batching.config import parse_batch_sizes


@main.group()
def models() -> None:
    """Upload, list and configure models on a running server."""


@models.command("push")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", required=True, help="Model name; a new name creates the model.")
@json_option
@client_options
def models_push(file: Path, name: str, as_json: bool, fml: Client) -> None:
    """Upload an .onnx file or a .tar.gz / .zip bundle as the next version of NAME."""
    with Bars(file.name) as bars:
        record = fml.push_model(file, name, progress=bars, poll_s=2)
    if as_json:
        print_json(record)
    elif record.state == "ready":
        sig = record.signature or {"inputs": []}
        ins = ", ".join(f"{t['name']} {t['datatype']}{t['shape']}" for t in sig["inputs"])
        click.echo(f"{name} v{record.version} is ready. Inputs: {ins}")
        for warning in record.warnings or []:
            click.echo(f"warning: {warning}", err=True)
    if record.state == "failed":
        for err in record.errors or []:
            click.echo(f"error [{err['code']}]: {err['error']}", err=True)
        sys.exit(1)


@models.command("list")
@json_option
@client_options
def models_list(as_json: bool, fml: Client) -> None:
    """List the models on the server: what a call without a version gets, and each version's state."""
    found = fml.list_models()
    if as_json:
        print_json(found)
        return
    rows = []
    for m in found:
        states = ", ".join(f"v{v.version}:{v.state}" + (" (warning: see models config)" if v.warnings else "")
                           for v in m.versions)
        serving = "-" if m.serving is None else ", ".join(f"v{v} {w}%" if w != 100 else f"v{v}"
                                                           for v, w in m.serving.versions.items())
        rows.append([m.name, serving, states])
    print_table(["model", "serving", "versions"], rows, "no models")


@models.command("show")
@click.argument("model")
@json_option
@client_options
def models_show(model: str, as_json: bool, fml: Client) -> None:
    """MODEL's versions, aliases and settings."""
    m = fml.get_model(model)
    if as_json:
        print_json(m)
        return
    serving = "no ready version" if m.serving is None else (
        ", ".join(f"v{v} {w}%" for v, w in m.serving.versions.items())
        + (f" (alias {m.serving.alias})" if m.serving.alias else " (newest ready)"))
    click.echo(f"{m.name}: created by {m.created_by} at {when(m.created_at)}; a call without a version gets {serving}")
    print_table(["version", "state", "loaded", "pinned", "size", "source", "created"],
                [[f"v{v.version}", v.state, "yes" if v.loaded else "no", "yes" if v.pinned else "no",
                  v.size_bytes, v.source_name, when(v.created_at)] for v in m.versions], "no versions")
    for a in m.aliases:
        click.echo(f"alias {alias_text(a.to_dict())}".replace("\t", "  "))


@models.command("delete")
@click.argument("model")
@click.option("--force", is_flag=True, help="Delete even while aliases, schedules or jobs use its versions.")
@client_options
def models_delete(model: str, force: bool, fml: Client) -> None:
    """Delete MODEL and all its versions."""
    fml.delete_model(model, force=force)
    click.echo(f"Deleted model {model}.")


@models.command("pin")
@click.argument("model")
@click.argument("version", type=int)
@click.option("--off", is_flag=True, help="Unpin: the version may unload again to make room.")
@json_option
@client_options
def models_pin(model: str, version: int, off: bool, as_json: bool, fml: Client) -> None:
    """Pin VERSION of MODEL: it stays loaded whatever the memory budget."""
    saved = fml.pin_version(model, version, not off)
    if as_json:
        print_json(saved)
        return
    click.echo(f"{model} v{version}: {'pinned' if saved.pinned else 'not pinned'}, "
               f"{'loaded' if saved.loaded else 'not loaded'}")


@models.command("cache")
@click.argument("model")
@click.option("--on/--off", "enabled", default=None, help="Turn the response cache on or off (omit: just show it).")
@click.option("--max-entries", type=int, help="How many answers it keeps (least recently used go first).")
@json_option
@client_options
def models_cache(model: str, enabled: bool | None, max_entries: int | None, as_json: bool, fml: Client) -> None:
    """Show or set MODEL's response cache: identical inputs to the same version answered from memory."""
    if enabled is None and max_entries is None:
        view = fml.get_model(model).response_cache
    else:
        view = fml.set_response_cache(model, True if enabled is None else enabled, max_entries)
    if as_json:
        print_json(view)
        return
    state = f"on, up to {view.max_entries} answers" if view.enabled else "off"
    click.echo(f"{model}: response cache {state}; {view.entries} kept, {view.hits} hits, {view.misses} misses")


@models.command("config")
@click.argument("model")
@click.argument("version", type=int)
@click.option("--max-batch-size", type=int, help="Largest batch in rows; 0: never batch.")
@click.option("--max-queue-delay-us", type=int, help="Longest wait for a fuller batch, in microseconds.")
@click.option("--preferred-batch-sizes", help="Batch sizes to cut at, e.g. 4,8 (an empty string: none).")
@click.option("--max-queue-size", type=int, help="Requests that may wait; past it, 503 with Retry-After.")
@click.option("--default-timeout-us", type=int, help="Timeout of a request that names none; 0: none.")
@click.option("--batch-buckets", help="Fixed batch sizes, the largest max_batch_size, e.g. 1,32,64 (a session per "
              "size; an empty string: none; reloads the version).")
@click.option("--instance-count", type=int, help="Execution instances (reloads the version).")
@click.option("--device", help="cpu, cuda or cuda:N, or 'server' for the server's device (reloads the version).")
@json_option
@client_options
def models_config(model: str, version: int, as_json: bool, fml: Client, **options: Any) -> None:
    """Show VERSION of MODEL's serving config, performance card and live counters; with options, change the
    config now, without a restart."""
    changes = {name: value for name, value in options.items() if value is not None}
    for name in ("preferred_batch_sizes", "batch_buckets"):
        if name in changes:
            try:
                changes[name] = parse_batch_sizes(changes[name])
            except ValueError as exc:
                raise click.BadParameter(str(exc).replace("preferred_batch_sizes", name),
                                         param_hint=f"--{name.replace('_', '-')}") from None
    if "device" in changes and changes["device"] == "server":
        changes["device"] = None
    view = fml.set_config(model, version, **changes) if changes else fml.get_config(model, version)
    if as_json:
        print_json(view)
    else:
        click.echo("\n".join(config_lines(view.to_dict())))


@models.group("alias")
def models_alias() -> None:
    """Point aliases (production, staging, ...) at versions; a call without a version goes to production."""


def _alias_target(text: str) -> dict[str, Any]:
    try:
        return parse_target_text(text)
    except FlashMLError as exc:
        raise click.BadParameter(exc.message) from None


def _alias_extras(guard: str | None, shadow: str | None) -> dict[str, Any]:
    try:
        out: dict[str, Any] = {}
        if guard:
            out["guard"] = parse_guard_text(guard)
        if shadow:
            out["shadow"] = parse_shadow_text(shadow)
        return out
    except FlashMLError as exc:
        raise click.BadParameter(exc.message) from None


def _alias_out(model: str, saved: Any, as_json: bool) -> None:
    if as_json:
        print_json(saved)
    else:
        click.echo(f"{model}: {alias_text(saved.to_dict())}")


@models_alias.command("set")
@click.argument("model")
@click.argument("alias")
@click.argument("target", metavar="VERSION")
@click.option("--guard", help="Roll a split's canary back automatically, e.g. max_error_rate=0.05,max_p99_ms=200,"
              "window_s=60,min_requests=20.")
@click.option("--shadow", help="Mirror a share of the requests to a candidate version, e.g. 5=20 (v5, 20 %).")
@json_option
@client_options
def models_alias_set(model: str, alias: str, target: str, guard: str | None, shadow: str | None, as_json: bool,
                     fml: Client) -> None:
    """Point ALIAS of MODEL at VERSION (a ready version; or a split like 3=95,4=5)."""
    body = {**_alias_target(target), **_alias_extras(guard, shadow)}
    _alias_out(model, fml.set_alias(model, alias, **body), as_json)


@models_alias.command("shadow")
@click.argument("model")
@click.argument("alias")
@json_option
@client_options
def models_alias_shadow(model: str, alias: str, as_json: bool, fml: Client) -> None:
    """How ALIAS's shadow version compares with the served answers."""
    r = fml.alias_shadow(model, alias)
    if as_json:
        print_json(r)
        return
    if not r["shadow"]:
        click.echo(f"{model}/{alias}: no shadow")
        return
    agree = "n/a" if r["agreement"] is None else f"{r['agreement'] * 100:.1f}%"
    lat = r["latency_ms"]
    click.echo(f"{model}/{alias}: shadow v{r['version']} {r['shadow']['percent']:g}%; {r['compared']} compared, "
               f"{agree} agree, largest difference {r['max_abs_diff']}; {r['failed']} failed, {r['dropped']} "
               f"dropped; p50 ms served {lat['primary']['p50']} shadow {lat['shadow']['p50']}")


@models_alias.command("rollback")
@click.argument("model")
@click.argument("alias")
@json_option
@client_options
def models_alias_rollback(model: str, alias: str, as_json: bool, fml: Client) -> None:
    """Point ALIAS of MODEL back at its previous target (a second rollback undoes the first)."""
    _alias_out(model, fml.rollback_alias(model, alias), as_json)


@models_alias.command("list")
@click.argument("model")
@json_option
@client_options
def models_alias_list(model: str, as_json: bool, fml: Client) -> None:
    """List the aliases of MODEL."""
    found = fml.list_aliases(model)
    if as_json:
        print_json(found)
        return
    rows = []
    for a in found:
        target = f"v{a.version}" if a.version is not None else ", ".join(f"v{v} {w}%" for v, w in a.versions.items())
        guard = ",".join(f"{k}={v:g}" for k, v in (a.guard or {}).items() if v is not None)
        shadow = f"v{a.shadow['version']} {a.shadow['percent']:g}%" if a.shadow else ""
        rows.append([a.alias, target, guard, shadow, a.updated_by])
    print_table(["alias", "target", "guard", "shadow", "updated by"], rows, f"{model} has no aliases")


@models_alias.command("rm")
@click.argument("model")
@click.argument("alias")
@client_options
def models_alias_rm(model: str, alias: str, fml: Client) -> None:
    """Delete ALIAS of MODEL."""
    fml.delete_alias(model, alias)
    click.echo(f"Deleted alias {alias} of {model}.")
