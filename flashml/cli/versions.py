"""`flashml versions`: a model's versions: list, show, delete, archive and restore, over HTTP."""

from __future__ import annotations

import click

from flashml.cli.main import main
from flashml.cli.options import client_options, json_option
from flashml.cli.output import print_json, print_table, when
from flashml.client import Client
from flashml.registry.records import VersionRecord


@main.group()
def versions() -> None:
    """List, show, archive, restore and delete a model's versions on a running server."""


def _line(v: VersionRecord) -> str:
    return f"{v.model} v{v.version}: {v.state}"


@versions.command("list")
@click.argument("model")
@json_option
@client_options
def versions_list(model: str, as_json: bool, fml: Client) -> None:
    """List MODEL's versions, oldest first."""
    found = fml.list_versions(model)
    if as_json:
        print_json(found)
        return
    print_table(["version", "state", "loaded", "pinned", "size", "source", "created by", "created"],
                [[f"v{v.version}", v.state, "yes" if v.loaded else "no", "yes" if v.pinned else "no", v.size_bytes,
                  v.source_name, v.created_by, when(v.created_at)] for v in found], f"{model} has no versions")


@versions.command("show")
@click.argument("model")
@click.argument("version", type=int)
@json_option
@client_options
def versions_show(model: str, version: int, as_json: bool, fml: Client) -> None:
    """VERSION of MODEL: state, signature, errors and warnings."""
    v = fml.get_version(model, version)
    if as_json:
        print_json(v)
        return
    click.echo(f"{_line(v)}, {'loaded' if v.loaded else 'not loaded'}{', pinned' if v.pinned else ''}; "
               f"{v.source_name or 'no file name'}, {v.size_bytes} bytes, by {v.created_by} at {when(v.created_at)}")
    sig = v.signature or {}
    rows = [[side[:-1], t["name"], t["datatype"], t["shape"]] for side in ("inputs", "outputs")
            for t in sig.get(side) or []]
    print_table(["", "tensor", "datatype", "shape"], rows, "no signature")
    for err in v.errors or []:
        click.echo(f"error [{err['code']}]: {err['error']}")
    for warning in v.warnings:
        click.echo(f"warning: {warning}")


@versions.command("delete")
@click.argument("model")
@click.argument("version", type=int)
@click.option("--force", is_flag=True, help="Delete even while an alias, schedule or job uses it.")
@client_options
def versions_delete(model: str, version: int, force: bool, fml: Client) -> None:
    """Delete VERSION of MODEL and its stored file."""
    fml.delete_version(model, version, force=force)
    click.echo(f"Deleted {model} v{version}.")


@versions.command("archive")
@click.argument("model")
@click.argument("version", type=int)
@json_option
@client_options
def versions_archive(model: str, version: int, as_json: bool, fml: Client) -> None:
    """Stop serving VERSION of MODEL (it stays stored; `versions restore` serves it again)."""
    v = fml.archive_version(model, version)
    print_json(v) if as_json else click.echo(_line(v))


@versions.command("restore")
@click.argument("model")
@click.argument("version", type=int)
@json_option
@client_options
def versions_restore(model: str, version: int, as_json: bool, fml: Client) -> None:
    """Serve an archived VERSION of MODEL again."""
    v = fml.restore_version(model, version)
    print_json(v) if as_json else click.echo(_line(v))
