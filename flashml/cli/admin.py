"""Where `flashml users` and `flashml keys` act: a server over HTTP when one is named (--server, FLASHML_SERVER or
a profile), else in-process on the server's own database (the data directory): the bootstrap, before any key
exists, and what --data-dir forces."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
import msgspec

from flashml.cli.options import client_errors, connect, connection_options, create_option, data_options, resolve
from flashml.client import Client
from flashml.client.connection import Connection
from flashml.errors import FlashMLError
from flashml.settings import Settings
from flashml.startup_checks import private_data_dir

if TYPE_CHECKING:
    from flashml.composition import AdminServices

T = TypeVar("T")


@dataclass
class Where:
    """A remote server (``conn``) or the local data directory (``settings``), and how to run an action there."""

    conn: Connection | None = None
    settings: Settings | None = None

    @property
    def remote(self) -> bool:
        return self.conn is not None

    def run(self, remote: Callable[[Client], T], local: Callable[[AdminServices], Awaitable[Any]],
            as_type: Any = None) -> T:
        """``remote(client)`` on the server, or ``local(services)`` on the database (its answer converted to
        ``as_type``, the API's record, so both print alike)."""
        if self.conn is not None:
            with Client(self.conn.server, self.conn.key) as fml, client_errors(self.conn):
                return remote(fml)
        assert self.settings is not None
        answer = run_admin(self.settings, local)
        return msgspec.convert(answer, as_type, from_attributes=True) if as_type is not None else answer


def admin_options(func=None, *, needs_key: bool = True, creates: bool = False):
    """The connection options and --data-dir/--config (and --create where ``creates``), resolved into ``where``."""
    if func is None:
        return functools.partial(admin_options, needs_key=needs_key, creates=creates)

    @functools.wraps(func)
    def wrapper(*args: Any, server: str | None, key: str | None, profile: str | None, old_url: str | None,
                config: Path | None, data_dir: Path | None, create: bool | None = None, **kwargs: Any) -> Any:
        conn = None if data_dir is not None or config is not None else connect(server, key, profile, old_url)
        if conn is not None and conn.server_named:
            if needs_key and not conn.key:
                raise click.UsageError(f"No API key for {conn.server} (from {conn.server_from}): give --key, set "
                                       "FLASHML_KEY or use a profile that has one; --data-dir works on a local data "
                                       "directory instead.")
            click.echo(f"Server: {conn.server}", err=True)
            return func(*args, where=Where(conn=conn), **kwargs)
        settings = data_dir_settings(config, data_dir, create if creates else None)
        return func(*args, where=Where(settings=settings), **kwargs)

    wrapped: Any = data_options(wrapper)
    if creates:
        wrapped = create_option(wrapped)
    return connection_options(wrapped)


def data_dir_settings(config: Path | None, data_dir: Path | None, create: bool | None = None) -> Settings:
    """The settings of the data directory a command works on, named on standard error.

    A folder without a database is refused unless ``create``: run in the wrong folder, a command would otherwise
    make a new empty ``flashml-data`` there and, say, print a key that the running server does not know. ``None``:
    the command has no --create (a new database would hold nothing for it to work on).
    """
    settings = resolve(config, {"data_dir": data_dir})
    if not create and not settings.database_url and not settings.db_path.is_file():
        raise click.ClickException(
            f"{settings.data_dir} holds no FlashML database ({settings.db_path.name}). Run this in the folder "
            "where flashml serve runs, or name the server's data directory with --data-dir (or FLASHML_DATA_DIR)"
            + ("; --create starts a new one there" if create is False else "")
            + ". To manage a server over HTTP instead, name it with --server, FLASHML_SERVER or --profile.")
    if settings.database_url:
        from flashml.db.engine import shown

        click.echo(f"Database: {shown(settings.database_url)}", err=True)
    else:
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
