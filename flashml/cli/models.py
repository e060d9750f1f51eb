"""`flashml models`: upload, list, pin, cache, serving config and aliases, over HTTP like any client."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click

from flashml.cli.main import main
from flashml.cli.options import client_options
from flashml.cli.output import alias_text, config_lines
from flashml.client import api_call, api_get, push_model
from flashml.errors import FlashMLError
from flashml.registry.aliases import parse_guard_text, parse_shadow_text, parse_target_text
from flashml.runtime.batching.config import parse_batch_sizes


@main.group()
def models() -> None:
    """Upload and list models on a running server."""


@models.command("push")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", required=True, help="Model name; a new name creates the model.")
@click.option("--json", "as_json", is_flag=True, help="Print the version record as JSON.")
@client_options
def models_push(file: Path, name: str, as_json: bool, url: str, key: str) -> None:
    """Upload an .onnx file or a .tar.gz / .zip bundle as the next version of NAME."""
    record = push_model(url, key, file, name)
    if as_json:
        click.echo(json.dumps(record, indent=2))
    elif record["state"] == "ready":
        sig = record["signature"]
        ins = ", ".join(f"{t['name']} {t['datatype']}{t['shape']}" for t in sig["inputs"])
        click.echo(f"{name} v{record['version']} is ready. Inputs: {ins}")
        for warning in record.get("warnings") or []:
            click.echo(f"warning: {warning}", err=True)
    if record["state"] == "failed":
        for err in record.get("errors") or []:
            click.echo(f"error [{err['code']}]: {err['error']}", err=True)
        sys.exit(1)


@models.command("list")
@client_options
def models_list(url: str, key: str) -> None:
    """List the models on the server."""
    for m in api_get(url, key, "/api/v1/models"):
        states = ", ".join(f"v{v['version']}:{v['state']}" + (" (warning: see models config)" if v.get("warnings")
                                                              else "") for v in m["versions"])
        click.echo(f"{m['name']}\t{states}")


@models.command("pin")
@click.argument("model")
@click.argument("version", type=int)
@click.option("--off", is_flag=True, help="Unpin: the version may unload again to make room.")
@client_options
def models_pin(model: str, version: int, off: bool, url: str, key: str) -> None:
    """Pin VERSION of MODEL: it stays loaded whatever the memory budget."""
    saved = api_call(url, key, "PATCH", f"/api/v1/models/{quote(model, safe='')}/versions/{version}",
                     {"pinned": not off})
    click.echo(f"{model} v{version}: {'pinned' if saved['pinned'] else 'not pinned'}, "
               f"{'loaded' if saved['loaded'] else 'not loaded'}")


@models.command("cache")
@click.argument("model")
@click.option("--on/--off", "enabled", default=None, help="Turn the response cache on or off (omit: just show it).")
@click.option("--max-entries", type=int, help="How many answers it keeps (least recently used go first).")
@client_options
def models_cache(model: str, enabled: bool | None, max_entries: int | None, url: str, key: str) -> None:
    """Show or set MODEL's response cache: identical inputs to the same version answered from memory."""
    path = f"/api/v1/models/{quote(model, safe='')}"
    if enabled is None and max_entries is None:
        view = api_call(url, key, "GET", path)["response_cache"]
    else:
        if enabled is None:
            enabled = True
        change: dict[str, Any] = {"enabled": enabled}
        if max_entries is not None:
            change["max_entries"] = max_entries
        view = api_call(url, key, "PATCH", path, {"response_cache": change})
    state = f"on, up to {view['max_entries']} answers" if view["enabled"] else "off"
    click.echo(f"{model}: response cache {state}; {view['entries']} kept, {view['hits']} hits, "
               f"{view['misses']} misses")


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
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
@client_options
def models_config(model: str, version: int, as_json: bool, url: str, key: str, **options: Any) -> None:
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
    path = f"/api/v1/models/{quote(model, safe='')}/versions/{version}/config"
    view = api_call(url, key, "PATCH" if changes else "GET", path, changes or None)
    click.echo(json.dumps(view, indent=2) if as_json else "\n".join(config_lines(view)))


@models.group("alias")
def models_alias() -> None:
    """Point aliases (production, staging, ...) at versions; a call without a version goes to production."""


def _alias_path(model: str, alias: str | None = None) -> str:
    path = f"/api/v1/models/{quote(model, safe='')}/aliases"
    return path + (f"/{quote(alias, safe='')}" if alias is not None else "")


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


@models_alias.command("set")
@click.argument("model")
@click.argument("alias")
@click.argument("target", metavar="VERSION")
@click.option("--guard", help="Roll a split's canary back automatically, e.g. max_error_rate=0.05,max_p99_ms=200,"
              "window_s=60,min_requests=20.")
@click.option("--shadow", help="Mirror a share of the requests to a candidate version, e.g. 5=20 (v5, 20 %).")
@client_options
def models_alias_set(model: str, alias: str, target: str, guard: str | None, shadow: str | None, url: str,
                     key: str) -> None:
    """Point ALIAS of MODEL at VERSION (a ready version; or a split like 3=95,4=5)."""
    body = {**_alias_target(target), **_alias_extras(guard, shadow)}
    saved = api_call(url, key, "PUT", _alias_path(model, alias), body)
    click.echo(f"{model}: {alias_text(saved)}")


@models_alias.command("shadow")
@click.argument("model")
@click.argument("alias")
@client_options
def models_alias_shadow(model: str, alias: str, url: str, key: str) -> None:
    """How ALIAS's shadow version compares with the served answers."""
    r = api_call(url, key, "GET", _alias_path(model, alias) + "/shadow")
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
@client_options
def models_alias_rollback(model: str, alias: str, url: str, key: str) -> None:
    """Point ALIAS of MODEL back at its previous target (a second rollback undoes the first)."""
    saved = api_call(url, key, "POST", _alias_path(model, alias) + "/rollback")
    click.echo(f"{model}: {alias_text(saved)}")


@models_alias.command("list")
@click.argument("model")
@client_options
def models_alias_list(model: str, url: str, key: str) -> None:
    """List the aliases of MODEL."""
    for a in api_call(url, key, "GET", _alias_path(model)):
        click.echo(alias_text(a))


@models_alias.command("rm")
@click.argument("model")
@click.argument("alias")
@client_options
def models_alias_rm(model: str, alias: str, url: str, key: str) -> None:
    """Delete ALIAS of MODEL."""
    api_call(url, key, "DELETE", _alias_path(model, alias))
    click.echo(f"Deleted alias {alias} of {model}.")
