"""Options shared by the commands: one flag per setting, the data directory, a server's URL and key, key limits."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

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


def client_options(func):
    func = click.option("--key", envvar="FLASHML_API_KEY", required=True,
                        help="An admin API key (or FLASHML_API_KEY).")(func)
    return click.option("--url", envvar="FLASHML_URL", default="http://127.0.0.1:8000", show_default=True,
                        help="The server (or FLASHML_URL).")(func)


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
