"""Options shared by the commands: one flag per setting, the data directory, a server's URL and key, key limits."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from flashml.client.connection import Connection, profiles_path, resolve_connection
from flashml.settings import Settings, SettingsError, load_settings


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def setting_options(func):
    """One CLI flag per setting, declared from the settings table itself, each showing its default in --help.

    The defaults are there for --help only: the command passes on the values given on the command line
    (``given_settings``), so that a FLASHML_* variable or the --config file still beats a default.
    """
    for f in reversed(dataclasses.fields(Settings)):
        default = f.default
        if isinstance(default, bool):
            on = flag(f.name)
            func = click.option(f"{on}/--no-{on[2:]}", f.name, default=default, show_default=True,
                                help=f.metadata["help"])(func)
            continue
        kind = {int: int, float: float}.get(type(default), str)
        shown = ",".join(default) if isinstance(default, tuple) else default  # a list is written with commas
        func = click.option(flag(f.name), f.name, type=kind, default=shown if kind is not str else str(shown),
                            show_default=shown != "", help=f.metadata["help"])(func)  # "": not set
    return click.option("--config", type=click.Path(dir_okay=False, path_type=Path), default=None,
                        help="A TOML file of settings (also FLASHML_CONFIG).")(func)


def given_settings(values: dict[str, Any]) -> dict[str, Any]:
    """The settings given on the command line, out of ``values`` (which holds every flag's default too)."""
    ctx = click.get_current_context()
    return {k: v for k, v in values.items() if ctx.get_parameter_source(k) is ParameterSource.COMMANDLINE}


def resolve(config: Path | None, values: dict[str, Any]) -> Settings:
    try:
        settings = load_settings(values, config_file=config)
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None
    return dataclasses.replace(settings, data_dir=settings.data_dir.resolve())


def data_options(func):
    """The data directory an in-process command works on (it must hold a database: see create_option)."""
    func = click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                        help="The server's data directory (also FLASHML_DATA_DIR; default ./flashml-data).")(func)
    return click.option("--config", type=click.Path(dir_okay=False, path_type=Path), default=None,
                        help="A TOML file of settings (also FLASHML_CONFIG).")(func)


def create_option(func):
    """--create, for the commands that may start a data directory: the ones that make a user or a key."""
    return click.option("--create", is_flag=True,
                        help="Create the data directory and its database if it has none (flashml serve creates "
                             "its own on the first start).")(func)


def connection_options(func):
    """--server, --key and --profile (and the older, hidden --url), resolved by flashml.client.resolve_connection:
    a flag, then FLASHML_SERVER / FLASHML_KEY (or FLASHML_URL / FLASHML_API_KEY), then the profile."""
    func = click.option("--url", "old_url", default=None, hidden=True,
                        help="The older name of --server (also FLASHML_URL).")(func)
    func = click.option("--profile", default=None,
                        help="A profile of the profile file (also FLASHML_PROFILE; default [default]).")(func)
    func = click.option("--key", default=None, help="An API key (also FLASHML_KEY, or the profile's key).")(func)
    return click.option("--server", default=None,
                        help="The server's URL (also FLASHML_SERVER, or the profile's; default "
                             "http://127.0.0.1:8000).")(func)


def json_option(func):
    return click.option("--json", "as_json", is_flag=True, help="Print the API's records as JSON.")(func)


def client_options(func=None, *, needs_key: bool = True):
    """The connection options, resolved into a ``fml`` argument: a flashml.client.Client. A ClientError becomes the
    command's error message, with a hint where the cause is likely the connection (unreachable, refused key)."""
    if func is None:
        return functools.partial(client_options, needs_key=needs_key)

    @functools.wraps(func)
    def wrapper(*args: Any, server: str | None, key: str | None, profile: str | None, old_url: str | None,
                **kwargs: Any) -> Any:
        conn = connect(server, key, profile, old_url)
        if needs_key and not conn.key:
            raise click.UsageError("No API key: give --key, set FLASHML_KEY, or name a profile that has one "
                                   f"(--profile; the file is {profiles_path()}).")
        from flashml.client import Client

        with Client(conn.server, conn.key) as fml, client_errors(conn):
            return func(*args, fml=fml, **kwargs)

    return connection_options(wrapper)


def connect(server: str | None, key: str | None, profile: str | None, old_url: str | None) -> Connection:
    """The resolved connection of the options; a bad profile is a usage error, a loose profile file a warning."""
    from flashml.client import ClientError

    def warn(message: str) -> None:
        click.echo(f"warning: {message}", err=True)

    try:
        conn = resolve_connection(server or old_url, key, profile, warn=warn)
    except ClientError as exc:
        raise click.UsageError(exc.message) from None
    if old_url and not server:
        conn = dataclasses.replace(conn, server_from="--url")
    return conn


@contextlib.contextmanager
def client_errors(conn: Connection) -> Iterator[None]:
    """A ClientError as a click error: the server's status, sentence and code, and what to check."""
    from flashml.client import ClientError

    try:
        yield
    except ClientError as exc:
        text = str(exc)
        if exc.code == "unreachable":
            text += (f". Is the server running there? (the address came from {conn.server_from}; "
                     "set it with --server, FLASHML_SERVER or a profile)")
        elif exc.status == 401:
            text += f". The server refused the API key (from {conn.key_from or 'nowhere'}): check --key, " \
                    "FLASHML_KEY or the profile's key"
        raise click.ClickException(text) from None


class OrNone(click.ParamType):
    """A number, or `none` to clear the limit."""

    def __init__(self, kind: type) -> None:
        self.kind = kind
        self.name = f"{kind.__name__}|none"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is None or isinstance(value, self.kind | Clear):
            return value
        if str(value).strip().lower() == "none":
            return CLEAR
        try:
            return self.kind(value)
        except ValueError:
            self.fail(f"{value!r} is not a {self.kind.__name__} (or 'none').", param, ctx)


class Clear:
    pass


CLEAR = Clear()


def limit_options(func, *, clearable: bool):
    def kind(t: type) -> Any:
        return OrNone(t) if clearable else t

    none = " or 'none' to clear" if clearable else ""
    func = click.option("--weight", type=kind(int), default=None,
                        help="Share under contention for the batch scheduler, 1 to 100 (default 1).")(func)
    func = click.option("--daily-quota", "daily_quota", type=kind(int), default=None,
                        help=f"Inference requests per UTC day{none}.")(func)
    func = click.option("--burst", type=kind(int), default=None,
                        help=f"Requests allowed at once (default max(1, ceil(rate))){none}.")(func)
    return click.option("--rate-limit", "rate_limit_per_s", type=kind(float), default=None,
                        help=f"Inference requests per second{none}.")(func)
