"""The doctor's checks of where FlashML keeps things: the data directory (private, writable, room on its disk) and
the artifact store (the local folders, or the S3 bucket within a short timeout)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import stat
import tempfile
from pathlib import Path

from minio.error import S3Error

from flashml.ops.doctor import Check, fail, ok, warn
from flashml.settings import Settings
from flashml.storage.factory import open_store
from flashml.storage.local import LocalArtifactStore
from flashml.storage.s3 import S3ArtifactStore
from flashml.storage.s3_http import store_call

STORE_FOLDERS = ("models", "uploads", "incoming", "tmp")  # what LocalArtifactStore.prepare makes
DOCTOR_STORE_DEADLINE_S = 10.0  # the doctor waits this long at most for a silent store (the server: its setting)


def size_text(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def is_dir(path: Path) -> bool:
    """Whether ``path`` is a folder; False too where this user may not look (the row that matters says so)."""
    try:
        return path.is_dir()
    except OSError:
        return False


def data_dir_checks(settings: Settings, min_free_bytes: int) -> list[Check]:
    path = settings.data_dir
    if not path.exists():
        return [_missing_data_dir(path), _disk_check(path, min_free_bytes)]
    if not path.is_dir():
        return [fail("data_dir", f"{path} is not a folder: FlashML keeps its database and models in a data "
                                 "directory there. Move the file away, or name another folder (--data-dir).")]
    return [_privacy_check(settings), _writable_check(path), _disk_check(path, min_free_bytes)]


def _missing_data_dir(path: Path) -> Check:
    parent = next(p for p in path.absolute().parents if p.exists())
    if not os.access(parent, os.W_OK | os.X_OK):
        return fail("data_dir", f"there is no data directory at {path}, and flashml serve cannot make one: "
                                f"{parent} is not writable for this user.")
    return warn("data_dir", f"there is no data directory at {path} yet: flashml serve makes it (0700) at its "
                            "first start. If a server already ran here, it used another one: check --data-dir or "
                            "FLASHML_DATA_DIR.")


def _privacy_check(settings: Settings) -> Check:
    """The data directory 0700 and the database 0600, owned by this user, as flashml serve makes them."""
    path = settings.data_dir
    info = path.stat()
    problems = []
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        problems.append(f"the data directory {path} can be read by other users (mode {mode:04o}); flashml serve "
                        f"makes it 0700 when it starts, or run: chmod 700 {path}")
    for db in (settings.db_path, *(settings.db_path.with_name(settings.db_path.name + s) for s in ("-wal", "-shm"))):
        try:
            db_mode = stat.S_IMODE(db.stat().st_mode)
        except FileNotFoundError:
            continue
        except OSError as exc:
            problems.append(f"{db.name} cannot be looked at by this user ({exc.strerror})")
            continue
        if db_mode & 0o077:
            problems.append(f"{db.name} can be read by other users (mode {db_mode:04o}; it holds password hashes "
                            f"and sessions): flashml serve makes it 0600 when it starts, or run: chmod 600 {db}")
    if info.st_uid != os.geteuid():
        problems.append(f"it belongs to user id {info.st_uid}, not to the user running this check "
                        f"({os.geteuid()}): run the doctor as the user that runs the server")
    if problems:
        return warn("data_dir_private", "; ".join(problems) + ".")
    return ok("data_dir_private", f"the data directory {path} is private (0700, owned by this user).")


def _writable_check(path: Path) -> Check:
    """Really write (and remove) a file: the permission bits do not say everything (a read-only mount, a full disk)."""
    problems = []
    for where in (path, *(path / f for f in STORE_FOLDERS if is_dir(path / f))):
        try:
            fd, probe = tempfile.mkstemp(prefix=".flashml-doctor-", dir=where)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            problems.append(f"{where} ({exc.strerror or exc})")
    if problems:
        return fail("data_dir_writable", "FlashML cannot write in " + ", ".join(problems) + ": the server needs to "
                    "write its database, uploads and models there. Give the folder to the user that runs the "
                    "server (chown), or name another one (--data-dir).")
    return ok("data_dir_writable", f"FlashML can write in {path}.")


def _disk_check(path: Path, min_free_bytes: int) -> Check:
    existing = next(p for p in (path.absolute(), *path.absolute().parents) if p.exists())
    usage = shutil.disk_usage(existing)
    text = f"{size_text(usage.free)} free of {size_text(usage.total)} on the disk of {existing}"
    if usage.free < min_free_bytes:
        return warn("disk_space", f"only {text}, below the {size_text(min_free_bytes)} the doctor asks for "
                                  "(--min-free): uploads, model versions and job results need room.")
    return ok("disk_space", text + ".")


def store_check(settings: Settings) -> Check:
    if settings.storage == "local":
        return _local_store_check(settings)
    return _s3_store_check(settings)


def _local_store_check(settings: Settings) -> Check:
    store = LocalArtifactStore(settings.data_dir)
    missing = [f + "/" for f in STORE_FOLDERS if not is_dir(store.root / f)]
    if not is_dir(store.root):
        return ok("store", f"the local store lives in the data directory ({store.root}), which flashml serve makes.")
    if missing:
        return ok("store", f"the local store in {store.root} lacks {', '.join(missing)}: flashml serve makes "
                           "them at start.")
    folders = ", ".join(f + "/" for f in STORE_FOLDERS)
    return ok("store", f"the local store in {store.root} has its folders ({folders}).")


def _s3_store_check(settings: Settings) -> Check:
    """Connect to the endpoint (the socket's own error when that fails), then ask S3 for the bucket."""
    quick = dataclasses.replace(settings, storage_timeout_s=min(settings.storage_timeout_s, 5.0),
                                storage_deadline_s=min(settings.storage_deadline_s, DOCTOR_STORE_DEADLINE_S))
    scheme = "https" if settings.s3_secure else "http"
    where = f"the S3 store {scheme}://{settings.s3_endpoint} (bucket {settings.s3_bucket})"
    try:
        store = open_store(quick)
    except ValueError as exc:  # the credentials file
        return fail("store", f"{where} cannot be used: {exc}.")
    assert isinstance(store, S3ArtifactStore)
    host, _, port = settings.s3_endpoint.rpartition(":")
    if not port.isdigit():  # no port named: the scheme's
        host, port = settings.s3_endpoint, "443" if settings.s3_secure else "80"
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=quick.storage_timeout_s):
            pass
    except (OSError, ValueError) as exc:
        reason = "no answer in time" if isinstance(exc, TimeoutError) else (getattr(exc, "strerror", None) or exc)
        return fail("store", f"{where} cannot be reached: {reason}. Models already loaded would keep serving, "
                             "but nothing can be uploaded or loaded; check s3_endpoint and that the store runs.")
    try:
        with store_call():
            exists = store.client.bucket_exists(store.bucket)
    except S3Error as exc:
        return fail("store", f"{where} answers but refuses FlashML: {exc.code} ({exc.message}). Check the "
                             "credentials (s3_credentials_file or FLASHML_S3_ACCESS_KEY / FLASHML_S3_SECRET_KEY).")
    except Exception as exc:  # noqa: BLE001 - TLS, a stall, a broken answer: all mean "not usable now"
        return fail("store", f"{where} takes connections but does not answer S3 requests "
                             f"({type(exc).__name__}): check s3_secure (https or http) and the endpoint.")
    if not exists:
        return warn("store", f"{where} answers, but the bucket does not exist: flashml serve creates it at start "
                             "(if the credentials allow it).")
    return ok("store", f"{where} answers and the bucket is there.")
