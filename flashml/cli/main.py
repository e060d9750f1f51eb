"""The `flashml` command group; with no command it runs `serve`."""

from __future__ import annotations

import click

from flashml import __version__


@click.group(invoke_without_command=True)
@click.version_option(__version__, prog_name="flashml")
@click.pass_context
def main(ctx: click.Context) -> None:
    """FlashML: serve ONNX models over HTTP. With no command, runs `serve`."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(main.commands["serve"])
