"""A throw-away PostgreSQL cluster on loopback for the tests: Debian's binaries (initdb, pg_ctl), started once per
session in a temporary folder, one fresh empty database per test.

PostgreSQL refuses to run as root: under root the cluster belongs to the ``postgres`` system user the Debian package
made. Durability is off (fsync, synchronous_commit, full_page_writes): the cluster dies with the session anyway.
"""

from __future__ import annotations

import asyncio
import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers.server_process import free_port

# The role FlashML connects as: no superuser, owner of each test database, as a production role would be.
ROLE = "flashml"
SUPERUSER = "postgres"


def pg_bin_dir() -> Path | None:
    """The folder of initdb and pg_ctl: Debian's newest /usr/lib/postgresql/N/bin, else the PATH's."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


class PostgresCluster:
    """initdb + pg_ctl in a temporary folder; ``new_database()`` gives the postgresql+asyncpg URL of an empty one."""

    def __init__(self) -> None:
        bin_dir = pg_bin_dir()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL's initdb and pg_ctl were not found (/usr/lib/postgresql/*/bin or PATH): "
                               "install Debian's postgresql package (apt-get install postgresql); .ci/run does")
        self.bin = bin_dir
        self.port = 0
        self.root = Path(tempfile.mkdtemp(prefix="flashml-pg-"))
        self.data = self.root / "data"
        self.log_path = self.root / "postgres.log"
        self._names = itertools.count(1)
        # The server may not run as root: the folder then belongs to postgres (the Debian package's user).
        self._user: str | None = SUPERUSER if os.geteuid() == 0 else None
        if self._user is not None:
            try:
                entry = pwd.getpwnam(self._user)
            except KeyError:
                shutil.rmtree(self.root)
                raise RuntimeError("PostgreSQL refuses to run as root and there is no postgres user to run it as: "
                                   "install Debian's postgresql package, which makes one") from None
            os.chown(self.root, entry.pw_uid, entry.pw_gid)

    def _run(self, *args: str, timeout: float = 60) -> None:
        kwargs = {"user": self._user, "group": pwd.getpwnam(self._user).pw_gid, "extra_groups": []} \
            if self._user else {}
        proc = subprocess.run([str(self.bin / args[0]), *args[1:]], capture_output=True, text=True, timeout=timeout,
                              cwd=self.root, **kwargs)  # type: ignore[call-overload]
        if proc.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def start(self) -> PostgresCluster:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--locale=C",
                  "--no-sync", "--no-instructions")
        for attempt in range(5):  # another program may take the free port between choosing and binding it
            self.port = free_port()
            options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off "
                       "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300 "
                       "-c shared_buffers=32MB")
            try:
                self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log_path), "-o", options, "-w", "-t", "60",
                          "start", timeout=90)
                break
            except RuntimeError:
                if attempt == 4:
                    raise
        self.sql(f"CREATE ROLE {ROLE} LOGIN")

    def sql(self, statement: str) -> None:
        """Run one statement as the superuser in the maintenance database (a loop of its own, in a thread: a test
        may already run one here)."""
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, self._sql(statement)).result()

    async def _sql(self, statement: str) -> None:
        conn = await asyncpg.connect(host="127.0.0.1", port=self.port, user=SUPERUSER, database="postgres")
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://{ROLE}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A new empty database owned by ROLE; its URL for database_url / open_database."""
        name = f"test_{next(self._names)}"
        self.sql(f"CREATE DATABASE {name} OWNER {ROLE}")
        return self.url(name)

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            try:
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
        shutil.rmtree(self.root, ignore_errors=True)


def database_settings(target: Path | str) -> dict[str, str]:
    """Settings naming db_target's database: database_url for PostgreSQL, nothing for SQLite (data_dir's file)."""
    return {"database_url": target} if isinstance(target, str) else {}


async def rows(engine: AsyncEngine, sql: str, **params: object) -> list[tuple]:
    """What a query reads through the engine: the tests' look into the database, the same on both engines."""
    async with engine.connect() as conn:
        return [tuple(r) for r in (await conn.execute(text(sql), params)).all()]
