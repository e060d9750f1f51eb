"""`flashml keys`: create, list, show, limit and revoke API keys, on a named server or the local data directory."""

from __future__ import annotations

import functools
from typing import Any

import click

from flashml.auth.records import KeyRecord
from flashml.cli.admin import Where, admin_options
from flashml.cli.main import main
from flashml.cli.options import CLEAR, json_option, limit_options
from flashml.cli.output import limits_text, print_json, print_table, when


@main.group()
def keys() -> None:
    """Manage API keys (on the server named by --server, FLASHML_SERVER or a profile; else in the data directory)."""


@keys.command("create")
@click.option("--name", required=True, help="What the key is for.")
@click.option("--role", type=click.Choice(["admin", "maintainer", "viewer", "inference"]), default="inference",
              show_default=True, help="What the key may do: inference calls models only; viewer reads only; "
                                      "maintainer also changes models and jobs; admin does everything.")
@click.option("--model", "models", multiple=True, help="Limit an inference key to this model (repeatable).")
@json_option
@admin_options(creates=True)
@functools.partial(limit_options, clearable=False)
def keys_create(name: str, role: str, models: tuple[str, ...], as_json: bool, where: Where,
                rate_limit_per_s: float | None, burst: int | None, daily_quota: int | None,
                weight: int | None) -> None:
    """Create an API key and print its secret (shown only once)."""
    key = where.run(
        lambda c: c.create_key(name, role, models=list(models) or None, rate_limit_per_s=rate_limit_per_s,
                               burst=burst, daily_quota=daily_quota, weight=weight),
        lambda s: s.keys.create(name=name, role=role, models=list(models) or None, actor="cli",
                                rate_limit_per_s=rate_limit_per_s, burst=burst, daily_quota=daily_quota,
                                weight=1 if weight is None else weight))
    if as_json:
        print_json(key)
        return
    click.echo(f"Created {role} key {key.id} ({name}). Its secret, shown only this once:", err=True)
    click.echo(key.token)


def _rows(found: list[KeyRecord]) -> list[list[Any]]:
    return [[k.id, k.name, k.role, ",".join(k.models) if k.models else "all models",
             "revoked" if k.revoked else "active", limits_text(k), when(k.last_used_at)] for k in found]


HEADERS = ["id", "name", "role", "models", "state", "limits", "last used (UTC)"]


@keys.command("list")
@json_option
@admin_options
def keys_list(as_json: bool, where: Where) -> None:
    """List API keys (never their secrets)."""
    found = where.run(lambda c: c.list_keys(), lambda s: s.keys.list())
    if as_json:
        print_json(found)
    else:
        print_table(HEADERS, _rows(found), "no keys")


@keys.command("show")
@click.argument("key_id", type=int)
@json_option
@admin_options
def keys_show(key_id: int, as_json: bool, where: Where) -> None:
    """One API key: its role, models, limits and today's use."""
    key = where.run(lambda c: c.get_key(key_id), lambda s: s.keys.get(key_id))
    if as_json:
        print_json(key)
    else:
        print_table(HEADERS, _rows([key]))


@keys.command("limit")
@click.argument("key_id", type=int)
@json_option
@admin_options
@functools.partial(limit_options, clearable=True)
def keys_limit(key_id: int, as_json: bool, where: Where, **limits: Any) -> None:
    """Change an API key's limits; only the options given change ('none' clears a limit, and a cleared
    weight is 1). On the data directory, a running server applies it within about a second (sync_interval_s)."""
    changes = {k: (None if v is CLEAR else v) for k, v in limits.items() if v is not None}
    if not changes:
        raise click.UsageError("Give at least one of --rate-limit, --burst, --daily-quota, --weight.")
    key = where.run(lambda c: c.set_key_limits(key_id, **changes),
                    lambda s: s.keys.set_limits(key_id, actor="cli", **changes))
    print_json(key) if as_json else click.echo(f"Key {key_id} ({key.name}): {limits_text(key)}.")


@keys.command("revoke")
@click.argument("key_id", type=int)
@json_option
@admin_options
def keys_revoke(key_id: int, as_json: bool, where: Where) -> None:
    """Revoke an API key by its id."""
    key = where.run(lambda c: c.revoke_key(key_id), lambda s: s.keys.revoke(key_id, actor="cli"))
    print_json(key) if as_json else click.echo(f"Revoked key {key_id}.")
