"""`flashml db upgrade` and `flashml db current`: the metadata database's schema revision (Alembic).

`flashml serve` upgrades at every start; these let an operator migrate before starting N nodes, or check what a
database is at. Both work in-process on the database the settings name (database_url, else the SQLite file in
the data directory).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from flashml.cli.main import main
from flashml.cli.options import data_options, resolve


@main.group("db")
def db() -> None:
    """The metadata database's schema: migrations (flashml serve runs them at start)."""


def _database_option(func):
    return click.option("--database-url", default=None,
                        help="The database (also FLASHML_DATABASE_URL; default: the SQLite file in the data "
                             "directory).")(func)


def _target(config: Path | None, data_dir: Path | None, database_url: str | None):
    from flashml.db.engine import database_target, sqlite_file

    settings = resolve(config, {"data_dir": data_dir, "database_url": database_url})
    target = database_target(settings)
    path = sqlite_file(target)
    if path is not None and not path.is_file():
        raise click.ClickException(f"no database at {path}: flashml serve makes one at its first start")
    return target


def _run(coro, target):
    """Run a database call; a database that cannot be reached is one sentence, not a traceback."""
    from sqlalchemy.exc import DBAPIError

    from flashml.db.engine import shown

    try:
        return asyncio.run(coro)
    except (OSError, DBAPIError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise click.ClickException(f"cannot use the database {shown(target)}: {reason}") from None


@db.command("current")
@data_options
@_database_option
def current(config: Path | None, data_dir: Path | None, database_url: str | None) -> None:
    """Print the database's schema revision and this FlashML's newest (head); changes nothing."""
    from flashml.db.engine import create_engine, shown
    from flashml.db.migrate import revision

    target = _target(config, data_dir, database_url)

    async def read():
        engine = create_engine(target)
        try:
            return await revision(engine)
        finally:
            await engine.dispose()

    state = _run(read(), target)
    click.echo(f"Database: {shown(target)}")
    if state.pre_alembic:
        now = "none (made by a FlashML from before migrations: upgrade adopts it)"
    else:
        now = state.current or "none (empty)"
    click.echo(f"Revision: {now}")
    click.echo(f"Head: {state.head} ({'up to date' if state.up_to_date else 'flashml db upgrade brings it there'})")


@db.command("upgrade")
@data_options
@_database_option
def upgrade(config: Path | None, data_dir: Path | None, database_url: str | None) -> None:
    """Bring the database to this FlashML's newest schema revision (what flashml serve does at start)."""
    from flashml.db.engine import create_engine, shown
    from flashml.db.migrate import revision
    from flashml.db.migrate import upgrade as migrate

    target = _target(config, data_dir, database_url)

    async def go():
        engine = create_engine(target)
        try:
            before = await revision(engine)
            await migrate(engine)
            return before, await revision(engine)
        finally:
            await engine.dispose()

    before, after = _run(go(), target)
    if before.up_to_date:
        click.echo(f"{shown(target)} is already at the head revision {after.head}.")
        return
    click.echo(f"Upgraded {shown(target)} ({before.described}) to revision {after.current}.")
