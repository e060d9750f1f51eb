"""``flashml backup DEST``: a consistent backup of a data directory while the server runs.

First the database, one consistent snapshot (ops/snapshot.py); then the artifacts that snapshot names, read
from the store: copied into the backup from a local store, listed with their sizes and sha256 for an S3 one
(the bucket keeps them; a restore checks them there). Objects in a local store are never changed in place
(each arrives by a rename), so a copy is of a whole object. An object the snapshot names that has gone by the
time it is read was deleted after the snapshot: the backup starts again from a new snapshot (a few times).
The folder is built under a hidden temporary name beside DEST and renamed to DEST when whole.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from flashml import __version__
from flashml.ops import snapshot
from flashml.ops.backup_manifest import (
    DATABASE_NAME,
    FORMAT,
    MANIFEST_NAME,
    OBJECTS_DIR,
    PREDICTIONS_DIR,
    FileEntry,
    Manifest,
    ObjectEntry,
    encode,
)
from flashml.settings import Settings
from flashml.storage.base import ArtifactStore, check_key, file_sha256
from flashml.storage.factory import open_store

Progress = Callable[[str], None]
TRIES = 3


class BackupError(RuntimeError):
    """The backup could not be made; the message says why, in words. Nothing is left under DEST."""


# Several nodes on PostgreSQL: the database is backed up with PostgreSQL's own tools, the objects with the store's.
PG_BACKUP = ("database_url names a PostgreSQL database: back it up with pg_dump (and the S3 bucket with the store's "
             "own replication or `mc mirror`); flashml backup and restore copy the embedded SQLite setup only.")


class _Vanished(Exception):
    """An object the snapshot names was deleted before it was read."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def backup(settings: Settings, dest: Path, progress: Progress = lambda _: None,
           store: ArtifactStore | None = None) -> Manifest:
    """Write a backup of ``settings.data_dir`` (and its store) to the new folder ``dest``."""
    dest = dest.absolute()
    if settings.database_url:
        raise BackupError(PG_BACKUP)
    if not settings.db_path.is_file():
        raise BackupError(f"{settings.data_dir} holds no FlashML database ({settings.db_path.name}): name the "
                          "server's data directory with --data-dir (or FLASHML_DATA_DIR).")
    if dest.exists() and not (dest.is_dir() and not any(dest.iterdir())):
        raise BackupError(f"{dest} already exists: a backup goes into a new (or empty) folder, so that no older "
                          "backup is overwritten or mixed with this one.")
    if dest.resolve().is_relative_to(settings.data_dir.resolve()):
        raise BackupError(f"{dest} is inside the data directory {settings.data_dir}: put the backup elsewhere.")
    store = store or open_store(settings)
    dest.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, TRIES + 1):
        work = dest.parent / f".{dest.name}.partial-{secrets.token_hex(4)}"
        work.mkdir(mode=0o700)
        try:
            manifest = _take(settings, store, work, progress)
        except _Vanished as gone:
            shutil.rmtree(work, ignore_errors=True)
            if attempt == TRIES:
                raise BackupError(f"{gone.key} was deleted while the backup read it, {TRIES} times over: the server "
                                  "is changing faster than a backup can be taken. Try again when it is quieter."
                                  ) from None
            progress(f"{gone.key} was deleted after the snapshot was taken; starting again from a new snapshot")
            continue
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        if dest.exists():
            dest.rmdir()  # empty (checked above): the rename takes its place
        os.rename(work, dest)
        return manifest
    raise AssertionError("unreachable")


def _take(settings: Settings, store: ArtifactStore, work: Path, progress: Progress) -> Manifest:
    db = work / DATABASE_NAME
    progress(f"Copying the database {settings.db_path} (online backup)")
    snapshot.copy_database(settings.db_path, db)
    taken = time.time()
    settled = snapshot.settle(db, taken)
    if settled["versions"] or settled["uploads"]:
        progress(f"Left out what was under way at the snapshot: {settled['versions']} version(s) being validated, "
                 f"{settled['uploads']} direct upload(s); they are marked failed in the backup")
    refs = snapshot.references(db)
    copy = store.kind == "local"
    keys = list(refs.keys)
    for folder in refs.folders:
        found = store.list_prefix(folder)
        if not any(k.endswith("/checksums.json") for k in found):
            raise _Vanished(folder)
        keys.extend(found)
    keys = sorted(set(keys))
    progress(f"{'Copying' if copy else 'Checking'} {len(keys)} object(s) from the {store.kind} store")
    objects = []
    total = 0
    for n, key in enumerate(keys, 1):
        entry = _copy_object(store, key, work / OBJECTS_DIR) if copy else _check_object(store, key, work)
        objects.append(entry)
        total += entry.size
        if n % 50 == 0 or n == len(keys):
            progress(f"  {n}/{len(keys)} objects, {total / 1e6:.1f} MB")
    files = _copy_predictions(settings.data_dir / PREDICTIONS_DIR, work / PREDICTIONS_DIR, refs.models, work)
    if files:
        progress(f"Copied {len(files)} prediction log segment(s)")
    manifest = Manifest(
        format=FORMAT, flashml_version=__version__, created_at=taken, storage=store.kind, objects_copied=copy,
        store=str(settings.data_dir) if copy else repr(store).removeprefix("S3ArtifactStore(").removesuffix(")"),
        database=FileEntry(DATABASE_NAME, db.stat().st_size, file_sha256(db)), objects=objects, files=files,
        counts=snapshot.counts(db))
    tmp = work / (MANIFEST_NAME + ".part")
    tmp.write_bytes(encode(manifest))
    os.replace(tmp, work / MANIFEST_NAME)  # last: a folder without it is no backup
    return manifest


def _copy_object(store: ArtifactStore, key: str, objects: Path) -> ObjectEntry:
    """Copy a local store's object into the backup; its sha256 is computed from the copy."""
    src = store.local_path(check_key(key))
    target = objects / key
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        if src is not None:
            shutil.copyfile(src, target)
        else:
            store.get_file(key, target)
    except FileNotFoundError:
        raise _Vanished(key) from None
    return ObjectEntry(key, target.stat().st_size, file_sha256(target))


def _check_object(store: ArtifactStore, key: str, work: Path) -> ObjectEntry:
    """Read an S3 object once to learn its sha256 (the store knows it only for some); the bytes stay there."""
    tmp = work / ".object"
    try:
        store.get_file(key, tmp)
    except FileNotFoundError:
        raise _Vanished(key) from None
    try:
        return ObjectEntry(key, tmp.stat().st_size, file_sha256(tmp))
    finally:
        tmp.unlink(missing_ok=True)


def _copy_predictions(src: Path, dest: Path, models: list[str], work: Path) -> list[FileEntry]:
    """The prediction log's segments of the snapshot's models, each up to its last whole line (a segment being
    written has a line in progress at its end; readers skip such a line anyway)."""
    entries: list[FileEntry] = []
    for model in models:
        for segment in sorted((src / model).glob("v*/*.jsonl")):
            if not (segment.parent.name[1:].isdigit() and segment.stem.isdigit()):
                continue
            try:
                data = segment.read_bytes()
            except FileNotFoundError:  # removed by retention meanwhile: it would be gone after a restore too
                continue
            data = data[: data.rfind(b"\n") + 1]
            target = dest / segment.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            entries.append(FileEntry(target.relative_to(work).as_posix(), len(data), file_sha256(target)))
    return entries
