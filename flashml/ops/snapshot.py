"""A consistent copy of a live database, and what in it must travel with it.

SQLite's online backup API copies the database in one step under one read transaction: with WAL, the server
goes on writing while the copy sees the database as it was at one instant. The copy is then made to stand on
its own: what was half done at that instant (a version being validated, a direct upload under way) is marked
failed in the copy, because its bytes are not part of the backup.
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from flashml.db import schema

LIVE_JOB_STATES = ("queued", "running", "paused")  # their chunk checkpoints are read again when they go on
KEPT_VERSION_STATES = ("ready", "archived")  # the states whose files are in the store

INTERRUPTED_VERSION = ("The backup this server was restored from was taken while this version was being "
                       "validated, so its files are not in it. Upload it again.")
INTERRUPTED_UPLOAD = ("The backup this server was restored from was taken while this upload was under way, so "
                      "its bytes are not in it. Upload it again.")


def copy_database(source: Path, dest: Path) -> None:
    """Copy a live database to ``dest`` (a new file) with the online backup API, as one self-contained file."""
    with closing(sqlite3.connect(source, timeout=30)) as src, closing(sqlite3.connect(dest)) as out:
        src.execute("PRAGMA busy_timeout=30000")
        src.backup(out)  # pages=-1: every page in one step, under one read transaction: one instant
        out.execute("PRAGMA journal_mode=DELETE")  # one file, no -wal beside it
        problem = out.execute("PRAGMA quick_check").fetchone()[0]
    if problem != "ok":
        raise RuntimeError(f"the copied database failed SQLite's quick_check: {problem}")


def settle(db: Path, now: float | None = None) -> dict[str, int]:
    """Mark what was half done at the snapshot as failed; returns how many versions and uploads were marked."""
    now = time.time() if now is None else now
    versions, uploads = schema.versions.name, schema.upload_sessions.name
    with closing(sqlite3.connect(db)) as conn, conn:
        v = conn.execute(f'UPDATE "{versions}" SET state = ?, errors = ?, updated_at = ? WHERE state = ?',
                         ("failed", json.dumps([{"code": "interrupted", "error": INTERRUPTED_VERSION}]), now,
                          "validating")).rowcount
        u = conn.execute(f'UPDATE "{uploads}" SET state = ?, error = ?, multipart_id = NULL, updated_at = ? '
                         "WHERE state IN ('pending', 'completing')",
                         ("failed", json.dumps({"code": "interrupted", "error": INTERRUPTED_UPLOAD}), now)).rowcount
    return {"versions": v, "uploads": u}


@dataclass(frozen=True)
class References:
    """The objects a snapshot names: whole keys, and version folders (listed in the store, ``checksums.json``
    included, since a version's files are only known from its folder)."""

    keys: list[str]
    folders: list[str]
    models: list[str]  # model names, for the prediction log folders


def references(db: Path) -> References:
    m, v, d, j, c = (t.name for t in (schema.models, schema.versions, schema.datasets, schema.jobs,
                                      schema.job_chunks))
    keys: set[str] = set()
    folders: set[str] = set()
    with closing(sqlite3.connect(db)) as conn:
        rows = conn.execute(f'SELECT m.name, v.version, v.report FROM "{v}" v JOIN "{m}" m ON m.id = v.model_id '
                            f"WHERE v.state IN {KEPT_VERSION_STATES}").fetchall()
        for model, number, report in rows:
            folders.add(f"models/{model}/v{number}/")
            bundle = (json.loads(report) if report else {}).get("bundle_key")
            if bundle:
                keys.add(bundle)
        keys.update(k for (k,) in conn.execute(f'SELECT object_key FROM "{d}"'))
        keys.update(k for (k,) in conn.execute(f'SELECT result_key FROM "{j}" WHERE result_key IS NOT NULL'))
        keys.update(k for (k,) in conn.execute(
            f'SELECT c.object_key FROM "{c}" c JOIN "{j}" j ON j.id = c.job_id WHERE j.state IN {LIVE_JOB_STATES}'))
        models = [name for (name,) in conn.execute(f'SELECT name FROM "{m}" ORDER BY name')]
    return References(sorted(keys), sorted(folders), models)


def counts(db: Path) -> dict[str, int]:
    """Rows per table, for the summary people read (a table the snapshot lacks counts 0)."""
    found = {}
    with closing(sqlite3.connect(db)) as conn:
        have = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        for table in (schema.users, schema.api_keys, schema.models, schema.versions, schema.aliases, schema.datasets,
                      schema.jobs, schema.job_schedules, schema.audit):
            found[table.name] = (conn.execute(f'SELECT count(*) FROM "{table.name}"').fetchone()[0]
                                 if table.name in have else 0)
    return found
