"""``flashml restore SRC``: bring a backup back into an empty data directory.

Everything is checked before anything is written: the database's and every file's sha256 against the
manifest, and each object's (copied in the backup, or, for an S3 backup, read back from the bucket). A
problem stops the restore with every problem named. The data directory is built under a hidden temporary
name beside it and renamed into place when whole; objects of a backup that carries them go into the store
the settings name (under the data directory, or a bucket).
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import shutil
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from flashml.db import schema
from flashml.ops.backup import PG_BACKUP, Progress
from flashml.ops.backup_manifest import DATABASE_NAME, OBJECTS_DIR, Manifest, read_manifest
from flashml.settings import Settings
from flashml.storage.base import ArtifactStore, check_key, file_sha256
from flashml.storage.factory import open_store

SHOWN_PROBLEMS = 20


class RestoreError(RuntimeError):
    """The backup cannot be restored here; the message says why, in words. Nothing was written."""


@dataclass(frozen=True)
class Restored:
    manifest: Manifest
    data_dir: Path
    objects: int
    bytes: int


def restore(src: Path, settings: Settings, progress: Progress = lambda _: None,
            store: ArtifactStore | None = None) -> Restored:
    """Restore the backup folder ``src`` into ``settings.data_dir``, which must be empty or absent."""
    if settings.database_url:
        raise RestoreError(PG_BACKUP.replace("back it up with pg_dump", "restore it with pg_restore"))
    manifest = read_manifest(src)  # ManifestError (a ValueError) says what is wrong with it
    target = settings.data_dir.absolute()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise RestoreError(f"{target} is not empty: a restore goes only into an empty (or new) data directory, so "
                           "that nothing there is overwritten or mixed with the backup. Name another with "
                           "--data-dir, or move that one away.")
    if not manifest.objects_copied and settings.storage != "s3":
        raise RestoreError(f"This backup's objects stayed in S3 ({manifest.store}) and it holds only their list: "
                           "restore it with storage = s3 and the settings of the bucket that holds them "
                           "(--config, or FLASHML_STORAGE, FLASHML_S3_ENDPOINT, ...).")
    progress(f"Backup of {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(manifest.created_at))} by FlashML "
             f"{manifest.flashml_version}: {len(manifest.objects)} object(s) from a {manifest.storage} store")
    work = target.parent / f".{target.name}.restoring-{secrets.token_hex(4)}"
    local_target = settings.storage == "local"
    if store is None:
        store = open_store(dataclasses.replace(settings, data_dir=work) if local_target else settings)
    target.parent.mkdir(parents=True, exist_ok=True)
    _check(src, manifest, store, progress, target.parent)
    work.mkdir(mode=0o700)
    try:
        shutil.copyfile(src / DATABASE_NAME, work / DATABASE_NAME)
        (work / DATABASE_NAME).chmod(0o600)
        for entry in manifest.files:
            dest = work / entry.path
            dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            shutil.copyfile(src / entry.path, dest)
        total = 0
        if manifest.objects_copied:
            store.prepare()
            progress(f"Putting {len(manifest.objects)} object(s) into the {store.kind} store")
            for n, obj in enumerate(manifest.objects, 1):
                store.put_file(obj.key, src / OBJECTS_DIR / obj.key, sha256=obj.sha256)
                total += obj.size
                if n % 50 == 0 or n == len(manifest.objects):
                    progress(f"  {n}/{len(manifest.objects)} objects, {total / 1e6:.1f} MB")
        else:
            total = sum(o.size for o in manifest.objects)
        _note_in_audit(work / DATABASE_NAME, src, manifest)
        if target.exists():
            target.rmdir()  # empty (checked above): the rename takes its place
        os.rename(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return Restored(manifest, target, len(manifest.objects), total)


def _check(src: Path, manifest: Manifest, store: ArtifactStore, progress: Progress, scratch: Path) -> None:
    """Every sha256 of the manifest against what is there; RestoreError naming each problem."""
    problems: list[str] = []
    progress("Checking the database and the files of the backup")
    for entry in (manifest.database, *manifest.files):
        path = src / entry.path
        problems += _compare(entry.path, path if path.is_file() else None, entry.size, entry.sha256, "backup")
    if manifest.objects_copied:
        progress(f"Checking {len(manifest.objects)} object(s) in the backup")
        for obj in manifest.objects:
            path = src / OBJECTS_DIR / check_key(obj.key)
            problems += _compare(obj.key, path if path.is_file() else None, obj.size, obj.sha256, "backup")
    else:
        progress(f"Checking {len(manifest.objects)} object(s) in the store {store!r}")
        tmp = scratch / f".flashml-restore-check-{secrets.token_hex(4)}"
        try:
            for obj in manifest.objects:
                info = store.stat(obj.key)
                if info is None:
                    problems.append(f"{obj.key}: missing from the store")
                    continue
                if info.size != obj.size:
                    problems.append(f"{obj.key}: changed in the store ({info.size} bytes, the backup lists "
                                    f"{obj.size})")
                    continue
                store.get_file(obj.key, tmp)
                problems += _compare(obj.key, tmp, obj.size, obj.sha256, "store")
        finally:
            tmp.unlink(missing_ok=True)
    if problems:
        shown = "\n  ".join(problems[:SHOWN_PROBLEMS])
        more = f"\n  ... and {len(problems) - SHOWN_PROBLEMS} more" if len(problems) > SHOWN_PROBLEMS else ""
        raise RestoreError(f"The backup does not check out, so nothing was restored ({len(problems)} "
                           f"problem(s)):\n  {shown}{more}")


def _compare(name: str, path: Path | None, size: int, sha256: str, where: str) -> list[str]:
    if path is None:
        return [f"{name}: missing from the {where}"]
    actual = path.stat().st_size
    if actual != size:
        return [f"{name}: changed in the {where} ({actual} bytes, the manifest lists {size})"]
    if file_sha256(path) != sha256:
        return [f"{name}: changed in the {where} (its sha256 differs from the manifest's)"]
    return []


def _note_in_audit(db: Path, src: Path, manifest: Manifest) -> None:
    detail = {"backup": str(src.absolute()), "backup_created_at": manifest.created_at,
              "flashml_version": manifest.flashml_version, "objects": len(manifest.objects)}
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute(f'INSERT INTO "{schema.audit.name}" (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)',
                     (time.time(), "cli", "backup.restore", "data_dir", json.dumps(detail)))
