"""Every command and option of `flashml` says what it does, and `serve --help` shows each setting's default."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from click.testing import CliRunner

from flashml.cli import main
from flashml.cli.options import given_settings, resolve, setting_options


def walk(command: click.Command, path: str = "flashml") -> Iterator[tuple[str, click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from walk(sub, f"{path} {name}")


def test_every_command_and_option_has_help():
    missing = []
    for path, command in walk(main):
        if not (command.help or "").strip():
            missing.append(path)
        missing += [f"{path} {p.opts[0]}" for p in command.params
                    if isinstance(p, click.Option) and not (p.help or "").strip()]
    assert missing == [], f"commands and options without help: {missing}"


def test_serve_help_shows_the_defaults():
    text = " ".join(CliRunner().invoke(main, ["serve", "--help"], terminal_width=200).output.split())
    assert "TCP port to listen on. [default: 8000]" in text
    assert "[default: 127.0.0.1]" in text and "[default: auto]" in text and "[default: autotune]" in text
    assert '[default: ""]' not in text  # an empty default means "not set": nothing to show


@click.command()
@setting_options
def port_of(config: Path | None = None, **values: Any) -> None:
    click.echo(resolve(config, given_settings(values)).port)


def test_a_shown_default_does_not_beat_the_environment_or_a_flag():
    runner = CliRunner()
    assert runner.invoke(port_of, [], env={"FLASHML_PORT": "9100"}).output.strip() == "9100"
    assert runner.invoke(port_of, ["--port", "9200"], env={"FLASHML_PORT": "9100"}).output.strip() == "9200"
    assert runner.invoke(port_of, [], env={"FLASHML_PORT": None}).output.strip() == "8000"
