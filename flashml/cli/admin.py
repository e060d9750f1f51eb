"""`flashml users` and `flashml keys`: administration in-process, on the server's own database."""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from flashml.cli.main import main
from flashml.cli.options import CLEAR, create_option, data_options, limit_options, resolve
from flashml.cli.output import limits_text
from flashml.errors import FlashMLError
from flashml.settings import Settings
from flashml.startup_checks import private_data_dir

if TYPE_CHECKING:
    from flashml.composition import AdminServices

T = TypeVar("T")


@main.group()
def users() -> None:
    """Manage console users."""


@users.command("create")
@click.argument("name")
@click.option("--admin", is_flag=True, help="Make the user an admin.")
@click.option("--role", type=click.Choice(["admin", "maintainer", "viewer"]), default=None,
              help="What the user may do in the console: viewers read, maintainers also change models and jobs, "
                   "admins also manage users and keys (default viewer).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (for scripts).")
@data_options
@create_option
def users_create(name: str, admin: bool, role: str | None, password_stdin: bool, config: Path | None,
                 data_dir: Path | None, create: bool) -> None:
    """Create a user (the password is asked for, or read with --password-stdin)."""
    role = "admin" if admin else (role or "viewer")
    settings = data_dir_settings(config, data_dir, create)  # before the password is asked for
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    user = run_admin(settings, lambda s: s.users.create(name, password, role=role, actor="cli"))
    click.echo(f"Created {user['role']} {user['name']}.")


@users.command("unlock")
@click.argument("name")
@data_options
def users_unlock(name: str, config: Path | None, data_dir: Path | None) -> None:
    """Clear a user's failed sign-ins, so that addresses refused for the account may try again (a running
    server reads the unlock from the database)."""
    settings = data_dir_settings(config, data_dir)
    run_admin(settings, lambda s: s.sign_ins.unlock(name, actor="cli"))
    click.echo(f"Unlocked {name}.")


@main.group()
def keys() -> None:
    """Manage API keys."""


@keys.command("create")
@click.option("--name", required=True, help="What the key is for.")
@click.option("--role", type=click.Choice(["admin", "maintainer", "viewer", "inference"]), default="inference",
              show_default=True, help="What the key may do: inference calls models only; viewer reads only; "
                                      "maintainer also changes models and jobs; admin does everything.")
@click.option("--model", "models", multiple=True, help="Limit an inference key to this model (repeatable).")
@data_options
@create_option
@functools.partial(limit_options, clearable=False)
def keys_create(name: str, role: str, models: tuple[str, ...], config: Path | None, data_dir: Path | None,
                create: bool, rate_limit_per_s: float | None, burst: int | None, daily_quota: int | None,
                weight: int | None) -> None:
    """Create an API key and print its secret (shown only once)."""
    settings = data_dir_settings(config, data_dir, create)
    key = run_admin(settings, lambda s: s.keys.create(name=name, role=role, models=list(models) or None,
                                                          actor="cli", rate_limit_per_s=rate_limit_per_s,
                                                          burst=burst, daily_quota=daily_quota,
                                                          weight=1 if weight is None else weight))
    click.echo(f"Created {role} key {key.id} ({name}). Its secret, shown only this once:", err=True)
    click.echo(key.token)


@keys.command("list")
@data_options
def keys_list(config: Path | None, data_dir: Path | None) -> None:
    """List API keys (never their secrets)."""
    settings = data_dir_settings(config, data_dir)
    for k in run_admin(settings, lambda s: s.keys.list()):
        state = "revoked" if k.revoked else "active"
        scope = ",".join(k.models) if k.models else "all models"
        click.echo(f"{k.id}\t{k.name}\t{k.role}\t{scope}\t{state}\t{limits_text(k)}")


@keys.command("limit")
@click.argument("key_id", type=int)
@data_options
@functools.partial(limit_options, clearable=True)
def keys_limit(key_id: int, config: Path | None, data_dir: Path | None, **limits: Any) -> None:
    """Change an API key's limits; only the options given change ('none' clears a limit, and a cleared
    weight is 1). Writes the database directly: a running server applies it within 10 s (its key cache)."""
    changes = {k: (None if v is CLEAR else v) for k, v in limits.items() if v is not None}
    if not changes:
        raise click.UsageError("Give at least one of --rate-limit, --burst, --daily-quota, --weight.")
    settings = data_dir_settings(config, data_dir)
    key = run_admin(settings, lambda s: s.keys.set_limits(key_id, actor="cli", **changes))
    click.echo(f"Key {key_id} ({key.name}): {limits_text(key)}.")


@keys.command("revoke")
@click.argument("key_id", type=int)
@data_options
def keys_revoke(key_id: int, config: Path | None, data_dir: Path | None) -> None:
    """Revoke an API key by its id."""
    settings = data_dir_settings(config, data_dir)
    run_admin(settings, lambda s: s.keys.revoke(key_id, actor="cli"))
    click.echo(f"Revoked key {key_id}.")


def data_dir_settings(config: Path | None, data_dir: Path | None, create: bool | None = None) -> Settings:
    """The settings of the data directory a command works on, named on standard error.

    A folder without a database is refused unless ``create``: run in the wrong folder, a command would otherwise
    make a new empty ``flashml-data`` there and, say, print a key that the running server does not know. ``None``:
    the command has no --create (a new database would hold nothing for it to work on).
    """
    settings = resolve(config, {"data_dir": data_dir})
    if not create and not settings.db_path.is_file():
        raise click.ClickException(
            f"{settings.data_dir} holds no FlashML database ({settings.db_path.name}). Run this in the folder "
            "where flashml serve runs, or name the server's data directory with --data-dir (or FLASHML_DATA_DIR)"
            + ("; --create starts a new one there." if create is False else "."))
    click.echo(f"Data directory: {settings.data_dir}", err=True)
    return settings


def run_admin(settings: Settings, action: Callable[[AdminServices], Awaitable[T]]) -> T:
    """Run ``action`` on the database-only services; a FlashML error becomes the command's error message."""
    # Imported here: the composition root pulls in ONNX Runtime, which `flashml --help` should not wait for.
    from flashml.composition import open_admin

    notice = private_data_dir(settings.data_dir)  # these commands may be the first to create it
    if notice:
        click.echo(notice, err=True)

    async def go() -> T:
        services = await open_admin(settings)
        try:
            return await action(services)
        finally:
            await services.close()

    try:
        return asyncio.run(go())
    except FlashMLError as exc:
        raise click.ClickException(exc.message) from None
