"""The `flashml` command: `serve` (the default), `users`, `keys`, `models`, `datasets`, `jobs`, `settings`."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
import math
import os
import sys
from pathlib import Path
from typing import Any

import click

from flashml import __version__, event_loop
from flashml.settings import RESOLVED_ENV, Settings, SettingsError, load_settings, settings_table

log = logging.getLogger("flashml")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _setting_options(func):
    """One CLI flag per setting, declared from the settings table itself."""
    for f in reversed(dataclasses.fields(Settings)):
        default = f.default
        if isinstance(default, bool):
            on = _flag(f.name)
            func = click.option(f"{on}/--no-{on[2:]}", f.name, default=None, help=f.metadata["help"])(func)
            continue
        kind = {int: int, float: float}.get(type(default), str)
        func = click.option(_flag(f.name), f.name, type=kind, default=None, help=f.metadata["help"])(func)
    return click.option("--config", type=click.Path(dir_okay=False, path_type=Path), default=None,
                        help="A TOML file of settings (also FLASHML_CONFIG).")(func)


def _resolve(config: Path | None, values: dict[str, Any]) -> Settings:
    try:
        settings = load_settings(values, config_file=config)
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None
    return dataclasses.replace(settings, data_dir=settings.data_dir.resolve())


def _data_options(func):
    func = click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                        help="The server's data directory (also FLASHML_DATA_DIR).")(func)
    return click.option("--config", type=click.Path(dir_okay=False, path_type=Path), default=None,
                        help="A TOML file of settings (also FLASHML_CONFIG).")(func)


@click.group(invoke_without_command=True)
@click.version_option(__version__, prog_name="flashml")
@click.pass_context
def main(ctx: click.Context) -> None:
    """FlashML: serve ONNX models over HTTP. With no command, runs `serve`."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(serve)


@main.command()
@_setting_options
def serve(config: Path | None = None, **values: Any) -> None:
    """Start the server: one process, Granian with one worker."""
    from granian import Granian
    from granian.constants import Interfaces

    settings = _resolve(config, values)
    _start_checks(settings)
    os.environ[RESOLVED_ENV] = settings.to_json()
    event_loop.install()  # before Granian forks its worker, which builds the loop with asyncio.new_event_loop()
    server = Granian("flashml.app:app_from_env", factory=True, address=settings.host, port=settings.port,
                     interface=Interfaces.RSGI, workers=1, runtime_threads=http_threads(settings.http_threads),
                     log_level=settings.log_level.lower(),
                     workers_kill_timeout=30, **_connection_options(settings), **_tls_options(settings))
    server.serve()


def _start_checks(settings: Settings) -> None:
    """Private files from here on (the umask Granian's worker and SQLite inherit), a private data directory,
    and a warning when the server would listen beyond this machine in clear text. Printed like the setup link:
    the person starting the server must see them."""
    from flashml.startup_checks import exposure_warning, private_data_dir

    for line in (private_data_dir(settings.data_dir), exposure_warning(settings)):
        if line:
            print(line, file=sys.stderr, flush=True)


def http_threads(setting: int, cores: int | None = None) -> int:
    """Granian's I/O threads: the setting, or one per four cores (1 to 4). On a small CPU box one thread keeps
    up and more would take cores from the model; a GPU box's large binary tensors need several to read them."""
    if setting > 0:
        return setting
    return max(1, min(4, (cores or os.cpu_count() or 1) // 4))


def _connection_options(settings: Settings) -> dict[str, Any]:
    """Bounds that keep idle and slow clients from holding the server.

    HTTP/1.1 only: in Granian's auto mode a connection that never sends a byte waits forever in the HTTP/2
    detection, outside the header timeout, and 1024 of them (the default limit) locked every client out.
    """
    from granian.constants import HTTPModes
    from granian.http import HTTP1Settings

    limit = raise_open_files(settings.max_connections)
    return {"http": HTTPModes.http1, "backpressure": limit, "backlog": min(limit, 4096),
            "http1_settings": HTTP1Settings(header_read_timeout=int(settings.header_timeout_s * 1000))}


def raise_open_files(connections: int, spare: int = 256) -> int:
    """Raise the open-files soft limit towards the hard one so that ``connections`` sockets fit next to the
    files the server itself opens (``spare``); returns the connections that fit."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + spare
    if soft != resource.RLIM_INFINITY and soft < wanted:
        soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    fits = connections if soft == resource.RLIM_INFINITY else max(16, min(connections, soft - spare))
    if fits < connections:
        log.warning("only %d connections fit the open-files limit (%d); raise it (LimitNOFILE)", fits, soft)
    return fits


def _tls_options(settings: Settings) -> dict[str, Any]:
    """Granian terminates TLS itself when a certificate and key are set."""
    if not settings.tls_certificate:
        return {}
    return {"ssl_cert": Path(settings.tls_certificate).expanduser().resolve(),
            "ssl_key": Path(settings.tls_key).expanduser().resolve()}


@main.command("settings")
def settings_cmd() -> None:
    """Print the table of every setting (Markdown)."""
    click.echo(settings_table())


# ---- users ----

@main.group()
def users() -> None:
    """Manage console users."""


@users.command("create")
@click.argument("name")
@click.option("--admin", is_flag=True, help="Make the user an admin.")
@click.option("--role", type=click.Choice(["admin", "maintainer", "viewer"]), default=None)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (for scripts).")
@_data_options
def users_create(name: str, admin: bool, role: str | None, password_stdin: bool, config: Path | None,
                 data_dir: Path | None) -> None:
    """Create a user (the password is asked for, or read with --password-stdin)."""
    role = "admin" if admin else (role or "viewer")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    settings = _resolve(config, {"data_dir": data_dir})
    user = _run_metadata(settings, lambda s: s.users.create(name, password, role=role, actor="cli"))
    click.echo(f"Created {user['role']} {user['name']}.")


@users.command("unlock")
@click.argument("name")
@_data_options
def users_unlock(name: str, config: Path | None, data_dir: Path | None) -> None:
    """Clear a user's failed sign-ins, so that addresses refused for the account may try again (a running
    server reads the unlock from the database)."""
    settings = _resolve(config, {"data_dir": data_dir})
    _run_metadata(settings, lambda s: s.sign_ins.unlock(name, actor="cli"))
    click.echo(f"Unlocked {name}.")


# ---- keys ----

@main.group()
def keys() -> None:
    """Manage API keys."""


class _OrNone(click.ParamType):
    """A number, or `none` to clear the limit."""

    def __init__(self, kind: type) -> None:
        self.kind = kind
        self.name = f"{kind.__name__}|none"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is None or isinstance(value, self.kind | _Clear):
            return value
        if str(value).strip().lower() == "none":
            return _CLEAR
        try:
            return self.kind(value)
        except ValueError:
            self.fail(f"{value!r} is not a {self.kind.__name__} (or 'none').", param, ctx)


class _Clear:
    pass


_CLEAR = _Clear()


def _limit_options(func, *, clearable: bool):
    def kind(t: type) -> Any:
        return _OrNone(t) if clearable else t

    none = " or 'none' to clear" if clearable else ""
    func = click.option("--weight", type=kind(int), default=None,
                        help="Share under contention for the batch scheduler, 1 to 100 (default 1).")(func)
    func = click.option("--daily-quota", "daily_quota", type=kind(int), default=None,
                        help=f"Inference requests per UTC day{none}.")(func)
    func = click.option("--burst", type=kind(int), default=None,
                        help=f"Requests allowed at once (default max(1, ceil(rate))){none}.")(func)
    return click.option("--rate-limit", "rate_limit_per_s", type=kind(float), default=None,
                        help=f"Inference requests per second{none}.")(func)


@keys.command("create")
@click.option("--name", required=True, help="What the key is for.")
@click.option("--role", type=click.Choice(["admin", "maintainer", "viewer", "inference"]), default="inference",
              show_default=True)
@click.option("--model", "models", multiple=True, help="Limit an inference key to this model (repeatable).")
@_data_options
@functools.partial(_limit_options, clearable=False)
def keys_create(name: str, role: str, models: tuple[str, ...], config: Path | None, data_dir: Path | None,
                rate_limit_per_s: float | None, burst: int | None, daily_quota: int | None,
                weight: int | None) -> None:
    """Create an API key and print its secret (shown only once)."""
    settings = _resolve(config, {"data_dir": data_dir})
    key = _run_metadata(settings, lambda s: s.keys.create(name=name, role=role, models=list(models) or None,
                                                          actor="cli", rate_limit_per_s=rate_limit_per_s,
                                                          burst=burst, daily_quota=daily_quota,
                                                          weight=1 if weight is None else weight))
    click.echo(f"Created {role} key {key['id']} ({name}). Its secret, shown only this once:", err=True)
    click.echo(key["token"])


@keys.command("list")
@_data_options
def keys_list(config: Path | None, data_dir: Path | None) -> None:
    """List API keys (never their secrets)."""
    settings = _resolve(config, {"data_dir": data_dir})
    for k in _run_metadata(settings, lambda s: s.keys.list()):
        state = "revoked" if k["revoked_at"] else "active"
        scope = ",".join(k["models"]) if k["models"] else "all models"
        click.echo(f"{k['id']}\t{k['name']}\t{k['role']}\t{scope}\t{state}\t{_limits_text(k)}")


def _limits_text(k: dict[str, Any]) -> str:
    parts = []
    if k.get("rate_limit_per_s") is not None:
        burst = k["burst"] if k.get("burst") is not None else max(1, math.ceil(k["rate_limit_per_s"]))
        parts.append(f"{k['rate_limit_per_s']:g}/s burst {burst}")
    if k.get("daily_quota") is not None:
        parts.append(f"{k.get('used_today', 0)}/{k['daily_quota']} today")
    if k.get("weight", 1) != 1:
        parts.append(f"weight {k['weight']}")
    return ", ".join(parts) or "no limits"


@keys.command("limit")
@click.argument("key_id", type=int)
@_data_options
@functools.partial(_limit_options, clearable=True)
def keys_limit(key_id: int, config: Path | None, data_dir: Path | None, **limits: Any) -> None:
    """Change an API key's limits; only the options given change ('none' clears a limit, and a cleared
    weight is 1). Writes the database directly: a running server applies it within 10 s (its key cache)."""
    changes = {k: (None if v is _CLEAR else v) for k, v in limits.items() if v is not None}
    if not changes:
        raise click.UsageError("Give at least one of --rate-limit, --burst, --daily-quota, --weight.")
    settings = _resolve(config, {"data_dir": data_dir})
    key = _run_metadata(settings, lambda s: s.keys.set_limits(key_id, actor="cli", **changes))
    click.echo(f"Key {key_id} ({key['name']}): {_limits_text(key)}.")


@keys.command("revoke")
@click.argument("key_id", type=int)
@_data_options
def keys_revoke(key_id: int, config: Path | None, data_dir: Path | None) -> None:
    """Revoke an API key by its id."""
    settings = _resolve(config, {"data_dir": data_dir})
    _run_metadata(settings, lambda s: s.keys.revoke(key_id, actor="cli"))
    click.echo(f"Revoked key {key_id}.")


def _run_metadata(settings: Settings, action):
    from flashml.composition import open_admin
    from flashml.errors import FlashMLError
    from flashml.startup_checks import private_data_dir

    notice = private_data_dir(settings.data_dir)  # these commands may be the first to create it
    if notice:
        click.echo(notice, err=True)

    async def go():
        services = await open_admin(settings)
        try:
            return await action(services)
        finally:
            await services.close()

    try:
        return asyncio.run(go())
    except FlashMLError as exc:
        raise click.ClickException(exc.message) from None


# ---- models (over HTTP, like any client) ----

@main.group()
def models() -> None:
    """Upload and list models on a running server."""


def _client_options(func):
    func = click.option("--key", envvar="FLASHML_API_KEY", required=True,
                        help="An admin API key (or FLASHML_API_KEY).")(func)
    return click.option("--url", envvar="FLASHML_URL", default="http://127.0.0.1:8000", show_default=True,
                        help="The server (or FLASHML_URL).")(func)


@models.command("push")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", required=True, help="Model name; a new name creates the model.")
@click.option("--json", "as_json", is_flag=True, help="Print the version record as JSON.")
@_client_options
def models_push(file: Path, name: str, as_json: bool, url: str, key: str) -> None:
    """Upload an .onnx file or a .tar.gz / .zip bundle as the next version of NAME."""
    from flashml.client import push_model

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
@_client_options
def models_list(url: str, key: str) -> None:
    """List the models on the server."""
    from flashml.client import api_get

    for m in api_get(url, key, "/api/v1/models"):
        states = ", ".join(f"v{v['version']}:{v['state']}" + (" (warning: see models config)" if v.get("warnings")
                                                              else "") for v in m["versions"])
        click.echo(f"{m['name']}\t{states}")


@models.command("pin")
@click.argument("model")
@click.argument("version", type=int)
@click.option("--off", is_flag=True, help="Unpin: the version may unload again to make room.")
@_client_options
def models_pin(model: str, version: int, off: bool, url: str, key: str) -> None:
    """Pin VERSION of MODEL: it stays loaded whatever the memory budget."""
    from urllib.parse import quote

    from flashml.client import api_call

    saved = api_call(url, key, "PATCH", f"/api/v1/models/{quote(model, safe='')}/versions/{version}",
                     {"pinned": not off})
    click.echo(f"{model} v{version}: {'pinned' if saved['pinned'] else 'not pinned'}, "
               f"{'loaded' if saved['loaded'] else 'not loaded'}")


@models.command("cache")
@click.argument("model")
@click.option("--on/--off", "enabled", default=None, help="Turn the response cache on or off (omit: just show it).")
@click.option("--max-entries", type=int, help="How many answers it keeps (least recently used go first).")
@_client_options
def models_cache(model: str, enabled: bool | None, max_entries: int | None, url: str, key: str) -> None:
    """Show or set MODEL's response cache: identical inputs to the same version answered from memory."""
    from urllib.parse import quote

    from flashml.client import api_call

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
@_client_options
def models_config(model: str, version: int, as_json: bool, url: str, key: str, **options: Any) -> None:
    """Show VERSION of MODEL's serving config, performance card and live counters; with options, change the
    config now, without a restart."""
    from urllib.parse import quote

    from flashml.client import api_call
    from flashml.runtime.batching.config import parse_batch_sizes

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
    click.echo(json.dumps(view, indent=2) if as_json else "\n".join(_config_lines(view)))


def _config_lines(view: dict[str, Any]) -> list[str]:
    cfg = view["config"] or {}
    sizes = ",".join(str(s) for s in cfg.get("preferred_batch_sizes") or []) or "none"
    running = view.get("device") or "not loaded"
    if not cfg.get("device"):
        device = f"the server's device ({running})"
    elif view.get("device") and view["device"] != cfg["device"]:
        device = f"{running} ({cfg['device']} was asked for)"
    else:
        device = cfg["device"]
    lines = [f"{view['model']} v{view['version']} on {device}, instance_count {cfg.get('instance_count')}",
             *(f"warning: {w}" for w in view.get("warnings") or []),
             f"batching: max_batch_size {cfg.get('max_batch_size')}, max_queue_delay_us "
             f"{cfg.get('max_queue_delay_us')}, preferred_batch_sizes {sizes}, max_queue_size "
             f"{cfg.get('max_queue_size')}, default_timeout_us {cfg.get('default_timeout_us')}"]
    if cfg.get("batch_buckets"):
        lines.append("fixed batch shapes: " + ", ".join(str(b) for b in cfg["batch_buckets"])
                     + " (a session per size; a batch runs padded on the smallest that holds it)")
    card = view.get("performance")
    if card:
        lines.append(f"performance card ({card['device']}, latency budget {card['latency_budget_ms']:g} ms):")
        lines += [f"  batch {p['batch_size']}: {p['latency_ms']:g} ms, {p['throughput']:,.0f} rows/s"
                  for p in card["points"]]
        split = card.get("instances")
        if split:
            rates = split["throughput"]
            lines += [f"  at batch {split['batch_size']}: one instance of all the cores {rates['1']:,.0f} rows/s"
                      + "".join(f", {n} sharing them {r:,.0f} rows/s" for n, r in rates.items() if n != "1")]
        chosen = card.get("chosen") or {}
        lines.append(f"  auto-tune chose max_batch_size {chosen.get('max_batch_size')}, max_queue_delay_us "
                     f"{chosen.get('max_queue_delay_us')}"
                     + (f", instance_count {chosen['instance_count']}" if "instance_count" in chosen else ""))
    stats = view.get("stats")
    if stats:
        lines.append(f"live: {stats['requests']} requests in {stats['batches']} batches, {stats['queued']} queued, "
                     f"{stats['rejected']} rejected, {stats['timed_out']} timed out, {stats['failed']} failed")
    return lines


@models.group("alias")
def models_alias() -> None:
    """Point aliases (production, staging, ...) at versions; a call without a version goes to production."""


def _alias_path(model: str, alias: str | None = None) -> str:
    from urllib.parse import quote

    path = f"/api/v1/models/{quote(model, safe='')}/aliases"
    return path + (f"/{quote(alias, safe='')}" if alias is not None else "")


def _alias_target(text: str) -> dict[str, Any]:
    from flashml.errors import FlashMLError
    from flashml.registry.aliases import parse_target_text

    try:
        return parse_target_text(text)
    except FlashMLError as exc:
        raise click.BadParameter(exc.message) from None


def _alias_text(a: dict[str, Any]) -> str:
    if a.get("version") is not None:
        text = f"{a['alias']}\tv{a['version']}"
    else:
        text = f"{a['alias']}\t" + ", ".join(f"v{v} {w}%" for v, w in a["versions"].items())
    if a.get("guard"):
        text += "\tguard " + ",".join(f"{k}={v:g}" for k, v in a["guard"].items() if v is not None)
    if a.get("shadow"):
        text += f"\tshadow v{a['shadow']['version']} {a['shadow']['percent']:g}%"
    return text


def _alias_extras(guard: str | None, shadow: str | None) -> dict[str, Any]:
    from flashml.errors import FlashMLError
    from flashml.registry.aliases import parse_guard_text, parse_shadow_text

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
@_client_options
def models_alias_set(model: str, alias: str, target: str, guard: str | None, shadow: str | None, url: str,
                     key: str) -> None:
    """Point ALIAS of MODEL at VERSION (a ready version; or a split like 3=95,4=5)."""
    from flashml.client import api_call

    body = {**_alias_target(target), **_alias_extras(guard, shadow)}
    saved = api_call(url, key, "PUT", _alias_path(model, alias), body)
    click.echo(f"{model}: {_alias_text(saved)}")


@models_alias.command("shadow")
@click.argument("model")
@click.argument("alias")
@_client_options
def models_alias_shadow(model: str, alias: str, url: str, key: str) -> None:
    """How ALIAS's shadow version compares with the served answers."""
    from flashml.client import api_call

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
@_client_options
def models_alias_rollback(model: str, alias: str, url: str, key: str) -> None:
    """Point ALIAS of MODEL back at its previous target (a second rollback undoes the first)."""
    from flashml.client import api_call

    saved = api_call(url, key, "POST", _alias_path(model, alias) + "/rollback")
    click.echo(f"{model}: {_alias_text(saved)}")


@models_alias.command("list")
@click.argument("model")
@_client_options
def models_alias_list(model: str, url: str, key: str) -> None:
    """List the aliases of MODEL."""
    from flashml.client import api_call

    for a in api_call(url, key, "GET", _alias_path(model)):
        click.echo(_alias_text(a))


@models_alias.command("rm")
@click.argument("model")
@click.argument("alias")
@_client_options
def models_alias_rm(model: str, alias: str, url: str, key: str) -> None:
    """Delete ALIAS of MODEL."""
    from flashml.client import api_call

    api_call(url, key, "DELETE", _alias_path(model, alias))
    click.echo(f"Deleted alias {alias} of {model}.")


if __name__ == "__main__":
    main()


@main.group()
def datasets() -> None:
    """Upload and list datasets for batch jobs on a running server."""


@datasets.command("push")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the dataset record as JSON.")
@_client_options
def datasets_push(file: Path, as_json: bool, url: str, key: str) -> None:
    """Upload a .csv, .jsonl, .npy, .npz or .parquet dataset, or a .zip of images; prints its id."""
    from flashml.client import push_dataset

    ds = push_dataset(url, key, file)
    if as_json:
        click.echo(json.dumps(ds, indent=2))
    else:
        cols = ", ".join(c["name"] for c in ds["columns"])
        click.echo(f"{ds['id']}\t{ds['name']}\t{ds['rows']} rows\tcolumns: {cols}")


@datasets.command("list")
@_client_options
def datasets_list(url: str, key: str) -> None:
    """List the datasets on the server."""
    from flashml.client import api_get

    for ds in api_get(url, key, "/api/v1/datasets"):
        click.echo(f"{ds['id']}\t{ds['name']}\t{ds['format']}\t{ds['rows']} rows")


@main.group()
def jobs() -> None:
    """Run, list and control batch scoring jobs on a running server."""


def _job_line(j: dict[str, Any]) -> str:
    version = f"v{j['resolved_version']}" if j["resolved_version"] else (j["version"] or "served")
    rate = f"\t{j['rows_per_s']} rows/s, ETA {j['eta_s']} s" if j["rows_per_s"] else ""
    return (f"{j['id']}\t{j['state']}\t{j['model']} {version}\t{j['rows_done']}/{j['rows_total']} rows"
            f" ({j['rows_bad']} bad){rate}")


@jobs.command("run")
@click.option("--model", required=True, help="The model that scores the dataset.")
@click.option("--version", default=None, help="A version number or an alias (default: the served version).")
@click.option("--dataset", required=True, help="The dataset's id (flashml datasets push prints it).")
@click.option("--format", "output_format", type=click.Choice(["csv", "jsonl", "npy", "npz", "parquet"]),
              default="csv", show_default=True, help="The result file's format.")
@click.option("--chunk-rows", type=int, default=None, help="Rows per chunk (the server's job_chunk_rows if not given).")
@click.option("--on-bad-row", type=click.Choice(["skip", "fail"]), default="skip", show_default=True)
@click.option("--map", "mapping", multiple=True, metavar="INPUT=COLUMN", help="Feed INPUT from COLUMN (repeatable).")
@click.option("--cron", default=None, help="Run on this cron schedule (five fields) instead of now.")
@click.option("--every", "interval_s", type=float, default=None, help="Run every this many seconds instead of now.")
@click.option("--timezone", default="UTC", show_default=True, help="The schedule's time zone.")
@click.option("--wait", is_flag=True, help="Wait for the job to finish and show its progress.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="With --wait: save the result file here.")
@_client_options
def jobs_run(model: str, version: str | None, dataset: str, output_format: str, chunk_rows: int | None,
             on_bad_row: str, mapping: tuple[str, ...], cron: str | None, interval_s: float | None, timezone: str,
             wait: bool, output: Path | None, url: str, key: str) -> None:
    """Score a dataset with a model now (or on a schedule)."""
    from flashml.client import api_call, download

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
    click.echo(_job_line(job))
    if not wait:
        return
    import time

    while job["state"] in ("queued", "running"):
        time.sleep(1)
        job = api_call(url, key, "GET", f"/api/v1/jobs/{job['id']}")
        click.echo(_job_line(job), err=True)
    click.echo(_job_line(job))
    if job["state"] != "succeeded":
        if job["error"]:
            click.echo(f"error [{job['error']['code']}]: {job['error']['error']}", err=True)
        sys.exit(1)
    if output:
        download(url, key, job["result_url"], output)
        click.echo(f"result saved to {output}")


@jobs.command("list")
@_client_options
def jobs_list(url: str, key: str) -> None:
    """List jobs, newest first."""
    from flashml.client import api_get

    for j in api_get(url, key, "/api/v1/jobs"):
        click.echo(_job_line(j))


@jobs.command("show")
@click.argument("job_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the job record and its log as JSON.")
@_client_options
def jobs_show(job_id: int, as_json: bool, url: str, key: str) -> None:
    """A job's progress and its log (bad rows with their row numbers)."""
    from flashml.client import api_get

    job = api_get(url, key, f"/api/v1/jobs/{job_id}")
    log = api_get(url, key, f"/api/v1/jobs/{job_id}/log")
    if as_json:
        click.echo(json.dumps({"job": job, "log": log}, indent=2))
        return
    click.echo(_job_line(job))
    if job["error"]:
        click.echo(f"error [{job['error']['code']}]: {job['error']['error']}")
    if job["result_url"]:
        click.echo(f"result: {url.rstrip('/')}{job['result_url']}")
    for e in log:
        row = f"row {e['row']}: " if e["row"] is not None else ""
        click.echo(f"  {e['level']}\t{row}{e['message']}")


def _job_control(action: str):
    @jobs.command(action)
    @click.argument("job_id", type=int)
    @_client_options
    def command(job_id: int, url: str, key: str) -> None:
        from flashml.client import api_call

        click.echo(_job_line(api_call(url, key, "POST", f"/api/v1/jobs/{job_id}/{action}")))

    command.__doc__ = {"cancel": "Cancel a job.", "pause": "Pause a job after its current chunk.",
                       "resume": "Resume a paused job.", "retry": "Run a failed or cancelled job again from its "
                                                                   "last finished chunk."}[action]
    return command


for _action in ("cancel", "pause", "resume", "retry"):
    _job_control(_action)
