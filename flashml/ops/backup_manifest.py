"""A backup's folder and its ``manifest.json``: what the backup holds, with a sha256 for every file and object.

A backup is a folder::

    manifest.json         this record, written last
    flashml.db            the database, a consistent snapshot (SQLite's online backup API)
    objects/<key>         the artifacts the snapshot names, from a local store (none for S3: see below)
    predictions/...       the prediction log's segments, as under the data directory

For an S3 store the objects stay in the bucket: the manifest lists their keys, sizes and sha256, and a
restore checks them there. The folder is built under a temporary name and renamed when whole, so a folder
named like the backup is always a complete one.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

FORMAT = 1  # raised when the layout changes; a restore refuses a format newer than it knows
MANIFEST_NAME = "manifest.json"
DATABASE_NAME = "flashml.db"
OBJECTS_DIR = "objects"
PREDICTIONS_DIR = "predictions"


class FileEntry(msgspec.Struct, frozen=True):
    """A file of the backup (the database, a prediction log segment), by its path inside the backup folder."""

    path: str
    size: int
    sha256: str


class ObjectEntry(msgspec.Struct, frozen=True):
    """An artifact the database names: a version's file, a kept upload, a dataset, a job's result or chunk."""

    key: str
    size: int
    sha256: str


class Manifest(msgspec.Struct, frozen=True):
    format: int
    flashml_version: str
    created_at: float  # UNIX seconds, UTC: when the database snapshot was taken
    storage: str  # local | s3: the store the objects came from
    objects_copied: bool  # True: under objects/ in the backup; False: left in the store (S3), listed only
    store: str  # where the objects were, in words (a folder, or s3://endpoint/bucket/prefix), for people
    database: FileEntry
    objects: list[ObjectEntry]
    files: list[FileEntry]  # prediction log segments
    counts: dict[str, int]  # rows per table in the snapshot, for the summary


def encode(manifest: Manifest) -> bytes:
    return msgspec.json.format(msgspec.json.encode(manifest), indent=2) + b"\n"


class ManifestError(ValueError):
    """The folder is not a backup this FlashML can read; the message says why, in words."""


def read_manifest(folder: Path) -> Manifest:
    path = folder / MANIFEST_NAME
    if not path.is_file():
        raise ManifestError(f"{folder} is not a FlashML backup: it has no {MANIFEST_NAME} (a backup that did not "
                            "finish leaves no folder under its name, so this one is something else).")
    try:
        raw = msgspec.json.decode(path.read_bytes())
    except msgspec.DecodeError:
        raise ManifestError(f"{path} is not valid JSON: the backup is damaged.") from None
    if isinstance(raw, dict) and isinstance(raw.get("format"), int) and raw["format"] > FORMAT:
        raise ManifestError(f"{folder} is a backup of format {raw['format']}, made by FlashML "
                            f"{raw.get('flashml_version', '?')}; this FlashML reads format {FORMAT} and older. "
                            "Restore it with that FlashML or a newer one.")
    try:
        return msgspec.convert(raw, Manifest)
    except msgspec.ValidationError as exc:
        raise ManifestError(f"{path} is not a FlashML backup manifest ({exc}).") from None
