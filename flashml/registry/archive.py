"""Unpack an uploaded model (raw .onnx, .tar.gz or .zip) into a folder, refusing anything unsafe.

Uploads are data from strangers: member names are checked before anything is written, links and
device files are refused, and sizes are counted from the bytes really written, never from headers.
Tar's extended headers (PAX records, GNU long names) are data too: tarfile reads each one whole into
memory, so their declared size is checked against a small budget before tarfile reads a byte of them.
"""

from __future__ import annotations

import os
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal, NoReturn

from flashml.errors import ValidationFailedError

Kind = Literal["onnx", "tar.gz", "zip"]
CHUNK = 1 << 20
MODEL_NAME = "model.onnx"
MAX_NAME_BYTES = 4096  # PATH_MAX on Linux; no real bundle comes near it
MAX_PART_BYTES = 255  # NAME_MAX: longer would fail at open() with our own path in the message
SHOWN_NAME_CHARS = 200  # how much of a member name an error message quotes
ZIP_ENTRY_BYTES = 46 + MAX_NAME_BYTES + 1024  # one central-directory entry: fixed part, name, extras
MAX_CHAINED_HEADERS = 8  # extended headers before one member (tarfile follows them recursively)
_EXTENDED = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE, tarfile.XGLTYPE,
             tarfile.SOLARIS_XHDTYPE)


@dataclass
class BundleLimits:
    max_members: int = 1000
    max_total_bytes: int = 8 << 30
    max_ratio: float = 200.0
    # Below this many bytes a high ratio is harmless (a small model full of zeros compresses well).
    ratio_min_bytes: int = 1 << 20
    # Extended tar headers (PAX, GNU long names) before one member, and in the whole archive: tarfile holds
    # each in memory at once. Real ones are a few hundred bytes (a long path, times, a few xattrs).
    max_header_bytes: int = 1 << 20
    max_total_header_bytes: int = 16 << 20


def detect_kind(path: Path) -> Kind:
    """The upload's kind from its first bytes; anything not gzip or zip is taken as a raw .onnx file."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head[:2] == b"\x1f\x8b":
        return "tar.gz"
    if head == b"PK\x03\x04":
        return "zip"
    return "onnx"


def shown(name: str) -> str:
    """A member name as messages quote it: cut to a few hundred characters, whatever the archive holds."""
    return name if len(name) <= SHOWN_NAME_CHARS else name[:SHOWN_NAME_CHARS] + "..."


def safe_member_path(name: str) -> str:
    """The normalized relative path for an archive member name, or raise ``unsafe_path``."""
    def refuse(why: str) -> ValidationFailedError:
        return ValidationFailedError(f"Bundle member {shown(name)!r} {why}; repack the bundle with plain relative "
                                     "paths.", code="unsafe_path", details={"member": shown(name)})

    if len(name.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
        raise refuse(f"has a name longer than {MAX_NAME_BYTES} bytes")
    if not name or "\x00" in name:
        raise refuse("has an empty or invalid name")
    if "\\" in name:
        raise refuse("contains a backslash")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise refuse("is an absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(len(p.encode("utf-8", "surrogateescape")) > MAX_PART_BYTES for p in parts):
        raise refuse(f"has a path component longer than {MAX_PART_BYTES} bytes")
    if ".." in parts:
        raise refuse("contains a '..' component")
    if not parts:
        raise refuse("names the bundle root itself")
    return "/".join(parts)


class _Writer:
    """Writes members under ``dest``, counting bytes against the limits as they stream."""

    def __init__(self, dest: Path, limits: BundleLimits, compressed_size: int) -> None:
        self.dest = dest
        self.root = os.path.realpath(dest)
        self.limits = limits
        self.compressed_size = max(compressed_size, 1)
        self.total = 0
        self.members = 0
        self.seen: set[str] = set()
        self.written: list[str] = []

    def count_member(self, name: str) -> None:
        self.members += 1
        if self.members > self.limits.max_members:
            raise ValidationFailedError(
                f"The bundle has more than {self.limits.max_members} members (stopped at {shown(name)!r}); "
                "remove files the model does not need.", code="too_many_members",
                details={"member": shown(name), "max_members": self.limits.max_members})

    def target(self, rel: str, name: str) -> Path:
        if rel in self.seen:
            raise ValidationFailedError(f"Bundle member {shown(name)!r} appears more than once; keep one copy.",
                                        code="duplicate_member", details={"member": shown(name)})
        self.seen.add(rel)
        path = self.dest / rel
        # Defense in depth: the name checks already keep us inside dest, and we never create links.
        if not os.path.realpath(path).startswith(self.root + os.sep):
            raise ValidationFailedError(f"Bundle member {shown(name)!r} would be written outside the bundle.",
                                        code="unsafe_path", details={"member": shown(name)})
        return path

    def mkdir(self, rel: str, name: str) -> None:
        self.target(rel, name).mkdir(parents=True, exist_ok=True)

    def count_header(self, size: int, name: str) -> None:
        """Header bytes count toward the bundle's size and ratio like file bytes."""
        self.total += size
        self._check_size(name)

    def write(self, rel: str, name: str, src: IO[bytes]) -> None:
        path = self.target(rel, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "xb") as out:  # "x": never overwrite or follow something already there
            while chunk := src.read(CHUNK):
                self.total += len(chunk)
                self._check_size(name)
                out.write(chunk)
        self.written.append(rel)

    def _check_size(self, name: str) -> None:
        lim = self.limits
        if self.total > lim.max_total_bytes:
            raise ValidationFailedError(
                f"The bundle unpacks to more than {lim.max_total_bytes} bytes (reached at member {shown(name)!r}).",
                code="bundle_too_large", details={"member": shown(name), "max_total_bytes": lim.max_total_bytes})
        if self.total > lim.ratio_min_bytes and self.total / self.compressed_size > lim.max_ratio:
            raise ValidationFailedError(
                f"The bundle unpacks to more than {lim.max_ratio:g} times its compressed size (reached at member "
                f"{shown(name)!r}); it looks like a compression bomb.", code="compression_ratio",
                details={"member": shown(name), "max_ratio": lim.max_ratio})


def _link_error(name: str) -> ValidationFailedError:
    return ValidationFailedError(f"Bundle member {shown(name)!r} is a link; bundles may hold only plain files and "
                                 "folders.", code="link_in_bundle", details={"member": shown(name)})


def _special_error(name: str) -> ValidationFailedError:
    return ValidationFailedError(
        f"Bundle member {shown(name)!r} is a device, fifo or other special file; bundles may hold only plain files.",
        code="special_file", details={"member": shown(name)})


class _HeaderBudget:
    """Counts tar extended-header bytes, refusing before tarfile reads a header bigger than the limits."""

    def __init__(self, w: _Writer) -> None:
        self.w = w
        self.total = 0
        self.member = 0  # bytes of the extended headers seen since the last real member
        self.chain = 0

    def take(self, info: tarfile.TarInfo) -> None:
        lim = self.w.limits
        self.chain += 1
        if info.size < 0 or self.chain > MAX_CHAINED_HEADERS:
            raise _header_error(f"has {self.chain} extended headers in a row" if info.size >= 0
                                else "has an extended header of negative size", lim)
        self.member += info.size
        self.total += info.size
        if self.member > lim.max_header_bytes:
            raise _header_error(f"has {self.member} bytes of extended headers (PAX records or GNU long names) "
                                f"for one member; the limit is {lim.max_header_bytes}", lim)
        if self.total > lim.max_total_header_bytes:
            raise _header_error(f"has more than {lim.max_total_header_bytes} bytes of extended headers in all", lim)
        self.w.count_header(info.size, "<tar header>")

    def member_done(self) -> None:
        self.member = 0
        self.chain = 0


def _header_error(why: str, lim: BundleLimits) -> ValidationFailedError:
    return ValidationFailedError(f"The tar archive {why}; repack it with a standard tar (names under "
                                 f"{MAX_NAME_BYTES} bytes).", code="tar_header_too_large",
                                 details={"max_header_bytes": lim.max_header_bytes})


def _sparse_error() -> ValidationFailedError:
    return ValidationFailedError("The tar archive holds a GNU sparse file; bundles may hold only plain files "
                                 "(repack without --sparse).", code="special_file", details={"member": None})


class _BoundedTarInfo(tarfile.TarInfo):
    """A TarInfo whose extended headers are budgeted before tarfile reads them whole into memory."""

    def _proc_member(self, tf: _BoundedTarFile) -> tarfile.TarInfo:  # tarfile's own hook for subclasses
        if self.type in _EXTENDED:
            tf.budget.take(self)
        elif self.type == tarfile.GNUTYPE_SPARSE:  # its extension blocks form an unbounded list
            raise _sparse_error()
        else:
            tf.budget.member_done()
        return super()._proc_member(tf)  # type: ignore[misc]  # a private tarfile hook, not in typeshed

    def _proc_gnusparse_10(self, next: tarfile.TarInfo,  # noqa: A002 - tarfile's own parameter name
                           pax_headers: dict[str, str], tf: tarfile.TarFile) -> NoReturn:
        raise _sparse_error()  # its map is read line by line from the data, with no bound


class _BoundedTarFile(tarfile.TarFile):
    tarinfo = _BoundedTarInfo

    def __init__(self, *args: Any, budget: _HeaderBudget, **kwargs: Any) -> None:
        self.budget = budget  # before super().__init__, which already reads the first member
        super().__init__(*args, **kwargs)


def _tar_members(tf: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    while (info := tf.next()) is not None:
        yield info


def _extract_tar(src: Path, w: _Writer) -> None:
    # Stream mode ("r|gz"): one pass, members are checked and written as they arrive.
    # TarFile.open hands extra keywords on to the class; typeshed lists only its own.
    with _BoundedTarFile.open(src, mode="r|gz", budget=_HeaderBudget(w)) as tf:  # type: ignore[call-overload]
        for info in _tar_members(tf):
            w.count_member(info.name)
            rel = safe_member_path(info.name)
            if info.issym() or info.islnk():
                raise _link_error(info.name)
            if info.sparse is not None:  # PAX sparse formats 0.0 and 0.1 (their maps sit in the bounded header)
                raise _sparse_error()
            if info.isdir():
                w.mkdir(rel, info.name)
            elif info.isreg():
                fobj = tf.extractfile(info)
                assert fobj is not None  # isreg() members always have data
                w.write(rel, info.name, fobj)
            else:
                raise _special_error(info.name)


def _check_zip_directory(src: Path, lim: BundleLimits) -> None:
    """Bound the central directory before ZipFile reads it whole and makes an object per entry."""
    with open(src, "rb") as f:
        # The end-of-central-directory record (zip64 too), or None: zipfile's private reader, not in typeshed.
        end = zipfile._EndRecData(f)  # type: ignore[attr-defined]
    if end is None:
        return  # not a zip after all: ZipFile says so
    # Private indices into that record, not in typeshed either.
    entries, size = end[zipfile._ECD_ENTRIES_TOTAL], end[zipfile._ECD_SIZE]  # type: ignore[attr-defined]
    most = lim.max_members * ZIP_ENTRY_BYTES
    if entries > lim.max_members:
        raise ValidationFailedError(f"The bundle has {entries} members, more than {lim.max_members}; remove files "
                                    "the model does not need.", code="too_many_members",
                                    details={"max_members": lim.max_members})
    if size > most:  # the count can lie; ZipFile reads every entry the directory holds
        raise ValidationFailedError(f"The zip's directory is {size} bytes, more than {most} for {lim.max_members} "
                                    "members; repack the bundle with a standard zip.", code="bad_archive",
                                    details={"kind": "zip"})


def _extract_zip(src: Path, w: _Writer) -> None:
    _check_zip_directory(src, w.limits)
    with zipfile.ZipFile(src) as zf:
        infos = zf.infolist()
        if len(infos) > w.limits.max_members:  # the central directory tells us up front
            w.members = w.limits.max_members
            w.count_member(infos[w.limits.max_members].filename)
        for info in infos:
            w.count_member(info.filename)
            rel = safe_member_path(info.filename)
            mode = info.external_attr >> 16  # Unix mode, when the zip was made on Unix
            if stat.S_ISLNK(mode):
                raise _link_error(info.filename)
            if mode and stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
                raise _special_error(info.filename)
            if info.is_dir():
                w.mkdir(rel, info.filename)
            else:
                with zf.open(info) as fobj:
                    w.write(rel, info.filename, fobj)


def _copy_onnx(src: Path, w: _Writer) -> None:
    w.count_member(MODEL_NAME)
    with open(src, "rb") as fobj:
        w.write(MODEL_NAME, MODEL_NAME, fobj)


def extract_bundle(src: Path, dest: Path, limits: BundleLimits) -> list[str]:
    """Unpack ``src`` into ``dest`` and return the relative paths of the files written."""
    kind = detect_kind(src)
    dest.mkdir(parents=True, exist_ok=True)
    w = _Writer(dest, limits, src.stat().st_size)
    extract = {"onnx": _copy_onnx, "tar.gz": _extract_tar, "zip": _extract_zip}[kind]
    try:
        extract(src, w)
    except ValidationFailedError:
        raise
    except OSError as e:  # with an errno its text names our scratch paths: say only what went wrong
        why = e.strerror if e.errno else shown(str(e))
        raise ValidationFailedError(f"The {kind} upload could not be unpacked ({why}). "
                                    "Upload a valid archive.", code="bad_archive", details={"kind": kind}) from e
    except (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, ValueError) as e:
        raise ValidationFailedError(f"The {kind} upload could not be unpacked: {shown(str(e))}. Upload a valid "
                                    "archive.", code="bad_archive", details={"kind": kind}) from e
    if not w.written:
        raise ValidationFailedError("The bundle holds no files; include model.onnx.", code="bad_archive",
                                    details={"kind": kind})
    return w.written
