"""Write the reference pages that come from the code: docs/settings.md and docs/cli.md.

Run ``python -m docs.generate`` from the repository root after changing a setting or a command;
``python -m docs.generate --check`` only says which pages differ. tests/project/test_docs.py fails while a page
differs from what this writes, so the reference can never drift from the code.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import click

from flashml.cli import main as flashml_command
from flashml.settings import FIELDS, settings_table

DOCS = Path(__file__).resolve().parent
REGENERATE = "python -m docs.generate"
GENERATED = f"<!-- Generated from the code by `{REGENERATE}`: edit the code, not this page. -->"

SETTINGS_INTRO = """\
Every setting can be given in three places besides its default; the strongest wins:

1. a flag of `flashml serve` (`--port 9000`, `--no-autotune`);
2. a `FLASHML_*` environment variable (`FLASHML_PORT=9000`);
3. a key in a TOML file named by `--config` or `FLASHML_CONFIG` (`port = 9000`).

Flags and variables take text: a yes/no setting is on for `1`, `true`, `yes` or `on`, and a list is written with
commas (`FLASHML_ALLOWED_OP_DOMAINS=",ai.onnx"`: the empty first item is the default ONNX domain). In the TOML
file a list is an array. An unknown name in the file, a value of the wrong type, a number out of range (most
sizes, limits and intervals must be above 0) and a device or memory budget that does not parse stop the server
at start with a sentence naming the setting.

`flashml settings` prints the table below.
"""

CLI_INTRO = """\
`flashml` with no command runs `serve`. Commands come in three kinds:

- `serve` and `settings` start the server and print its settings;
- `users` and `keys` act on a server over HTTP when one is named (`--server`, `FLASHML_SERVER` or a profile), and
  otherwise in-process on the server's own data directory, which also works while no server runs (the first admin
  and key, before any key exists; `--data-dir` always means the data directory);
- the other management commands (`models`, `versions`, `datasets`, `jobs`, `schedules`, `predictions`, `audit`,
  `metrics`, `whoami`) call a running server over HTTP through the [Python client](client.md).

A server is named, and its key given, by `--server URL` and `--key KEY`, else `FLASHML_SERVER` and `FLASHML_KEY`,
else a profile (`--profile NAME` or `FLASHML_PROFILE`, else `[default]`) of the profile file
(`~/.config/flashml/profiles.toml`; [Which server and key](client.md#which-server-and-key)); without any, the HTTP
commands go to `http://127.0.0.1:8000`. The older `--url`, `FLASHML_URL` and `FLASHML_API_KEY` still work for the
HTTP commands (`FLASHML_URL` does not send `users` and `keys` to a server, as before). Commands print a table or a
line a person reads; `--json` prints the API's records instead, for scripts. A refused key, a server that does not
answer and an unknown profile each end the command with a sentence saying what to check.
"""


def settings_page() -> str:
    """docs/settings.md: every declared setting with its flag, variable, default and help line."""
    return "\n".join(["# Settings", "", GENERATED, "", SETTINGS_INTRO, settings_table(), ""])


def _commands(command: click.Command, ctx: click.Context) -> Iterator[tuple[click.Command, click.Context]]:
    """Every command under ``command``, depth first, each with the context that names its full path."""
    yield command, ctx
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                yield from _commands(sub, click.Context(sub, info_name=name, parent=ctx))


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _paragraphs(help_text: str) -> str:
    """A docstring as Markdown paragraphs (click keeps its indentation, and stops at a form feed)."""
    text = inspect.cleandoc(help_text.split("\f")[0])
    return "\n\n".join(" ".join(block.split()) for block in text.split("\n\n"))


def _value(option: click.Option) -> str:
    if option.is_flag:
        return "flag"
    if option.metavar:
        return option.metavar
    if isinstance(option.type, click.Choice):
        return " | ".join(str(choice) for choice in option.type.choices)
    return option.type.name.upper()


def _default(option: click.Option) -> str:
    """The default as a reader needs it: required, a variable it reads, a value worth printing."""
    parts = ["required"] if option.required else []
    default = option.default
    # click marks "no default" with its own sentinel object; only plain values are worth printing.
    if isinstance(default, str | int | float) and not option.is_flag and default != "":
        parts.append(f"`{default}`")
    if isinstance(option.envvar, str):
        parts.append(f"`{option.envvar}`")
    return ", ".join(parts)


def _is_setting_flag(option: click.Option) -> bool:
    """`serve` has one flag per setting, declared from the settings; settings.md documents those."""
    return option.name in FIELDS and option.help == FIELDS[option.name].metadata["help"]


def _option_rows(options: list[click.Option]) -> list[str]:
    rows = ["| Option | Value | Default | Meaning |", "|---|---|---|---|"]
    for option in options:
        names = " / ".join(f"`{name}`" for name in option.opts + option.secondary_opts)
        rows.append(f"| {names} | {_cell(_value(option))} | {_default(option)} | {_cell(option.help or '')} |")
    return rows


def _command_section(command: click.Command, ctx: click.Context) -> list[str]:
    path = ctx.command_path
    depth = path.count(" ")  # flashml and its commands are level 2, their subcommands 3, deeper ones 4
    lines = [f"{'#' * min(2 + max(depth - 1, 0), 4)} {path}", ""]
    if command.help:
        lines += [_paragraphs(command.help), ""]
    usage = " ".join([path, *command.collect_usage_pieces(ctx)])
    lines += ["```text", usage, "```", ""]
    options = [p for p in command.params if isinstance(p, click.Option) and p.name != "help" and not p.hidden]
    settings = [o for o in options if _is_setting_flag(o)]
    others = [o for o in options if not _is_setting_flag(o)]
    if settings:
        lines += [f"Besides the options below, each of the {len(settings)} settings is a flag of this command "
                  "(`--port 9000`, `--no-autotune`): see [Settings](settings.md).", ""]
    if others:
        lines += [*_option_rows(others), ""]
    if isinstance(command, click.Group):
        lines += ["| Command | What it does |", "|---|---|"]
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                anchor = f"{path} {name}".replace(" ", "-")
                lines.append(f"| [`{path} {name}`](#{anchor}) | {_cell(sub.get_short_help_str(1000))} |")
        lines.append("")
    return lines


def cli_page() -> str:
    """docs/cli.md: every command of `flashml`, read from its click group."""
    root = click.Context(flashml_command, info_name="flashml")
    lines = ["# Command line", "", GENERATED, "", CLI_INTRO]
    for command, ctx in _commands(flashml_command, root):
        lines += _command_section(command, ctx)
    return "\n".join(lines).rstrip("\n") + "\n"


PAGES: dict[str, Callable[[], str]] = {"settings.md": settings_page, "cli.md": cli_page}


def stale_pages() -> list[str]:
    """The generated pages whose file differs from what the code gives now."""
    stale = []
    for name, render in PAGES.items():
        path = DOCS / name
        if not path.is_file() or path.read_text() != render():
            stale.append(name)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=REGENERATE, description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 when a page is out of date")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_pages()
        for name in stale:
            print(f"docs/{name} is out of date: run `{REGENERATE}`", file=sys.stderr)
        return 1 if stale else 0
    for name, render in PAGES.items():
        (DOCS / name).write_text(render())
        print(f"wrote docs/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
