"""The prediction log's files: JSON Lines segments under ``data_dir/predictions/<model>/v<version>/``.

A segment is named after the time of its first line (nanoseconds, zero-padded, so names sort by age) and
only ever appended to by the one writer (``PredictionLog``'s thread), whole lines at a time; a new start of
the server opens new segments and never appends to old ones, so a line torn by a crash is always the last
of its file, and readers skip it (and anything else that does not end in a newline or parse). A segment is
closed once it reaches its size or age; the oldest go first when a model's files pass its byte cap, and any
whose newest line is older than the retention. All methods run in threads: writer calls one at a time, readers
beside them (a lock keeps the list of segments whole; a file removed under a reader reads as empty).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

SEGMENT_BYTES = 64 * 1024 * 1024  # largest segment: what one removal frees at most
MIN_SEGMENT_BYTES = 4096
SEGMENT_S = 3600.0  # a segment closes after this long (or an eighth of the retention, if shorter)
# A file's mtime comes from the kernel's coarse clock, which may lag time.time() by a tick: a line stamped just before
# its write can be newer than the mtime. Found at start-up, a segment counts as last written this much later, so a
# read "since" its newest lines does not skip it (last_at only ever lets a segment be skipped or removed).
MTIME_SLACK_S = 1.0
_READ_CHUNK = 1 << 16


@dataclass
class Segment:
    path: Path
    version: int
    first_ns: int  # when its first line was written (the file name)
    size: int
    last_at: float  # when it was last written (its mtime)
    lines: int | None  # None: not counted yet (found at start-up)

    @property
    def first_at(self) -> float:
        return self.first_ns / 1e9


@dataclass
class _Open:
    segment: Segment
    file: BinaryIO
    opened: float


def segment_bytes(max_bytes: int) -> int:
    """A model's segment size: an eighth of its cap, so removing the oldest keeps most of what it may keep."""
    return max(MIN_SEGMENT_BYTES, min(SEGMENT_BYTES, max_bytes // 8))


class SegmentStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._segments: dict[str, list[Segment]] = {}  # model -> its segments, oldest first
        self._open: dict[tuple[str, int], _Open] = {}

    def scan(self) -> None:
        """Find the segments earlier runs left (at start-up, before the first write)."""
        found: dict[str, list[Segment]] = {}
        if self.root.is_dir():
            for model_dir in self.root.iterdir():
                if model_dir.name.startswith("."):  # not a model: the exports being sent
                    continue
                for version_dir in model_dir.glob("v*"):
                    if not version_dir.name[1:].isdigit():
                        continue
                    for path in version_dir.glob("*.jsonl"):
                        if path.stem.isdigit():
                            st = path.stat()
                            found.setdefault(model_dir.name, []).append(
                                Segment(path, int(version_dir.name[1:]), int(path.stem), st.st_size,
                                        st.st_mtime + MTIME_SLACK_S, None))
        with self._lock:
            self._segments = {m: sorted(s, key=lambda s: s.first_ns) for m, s in found.items()}

    # ---- the writer ----

    def append(self, model: str, version: int, data: bytes, max_bytes: int, segment_s: float) -> None:
        """Whole lines onto the version's open segment (a new one when it is full or old enough)."""
        now = time.time()
        current = self._open.get((model, version))
        if current is not None and current.segment.size and (
                current.segment.size + len(data) > segment_bytes(max_bytes)
                or now - current.opened >= min(SEGMENT_S, segment_s)):
            self._close(model, version)
            current = None
        if current is None:
            current = self._start(model, version)
        current.file.write(data)
        current.file.flush()
        with self._lock:
            current.segment.size += len(data)
            current.segment.last_at = now
            current.segment.lines = (current.segment.lines or 0) + data.count(b"\n")

    def _start(self, model: str, version: int) -> _Open:
        folder = self.root / model / f"v{version}"
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        first_ns = time.time_ns()
        while (folder / f"{first_ns:020d}.jsonl").exists():
            first_ns += 1
        path = folder / f"{first_ns:020d}.jsonl"
        segment = Segment(path, version, first_ns, 0, first_ns / 1e9, 0)
        # 0600 like the database: the log holds what callers sent.
        file = os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")
        opened = _Open(segment, file, time.time())
        self._open[(model, version)] = opened
        with self._lock:
            self._segments.setdefault(model, []).append(segment)
        return opened

    def _close(self, model: str, version: int) -> None:
        current = self._open.pop((model, version), None)
        if current is not None:
            current.file.close()

    def close(self) -> None:
        for model, version in list(self._open):
            self._close(model, version)

    def enforce(self, model: str, retention_s: float, max_bytes: int) -> int:
        """Remove the model's segments whose newest line is past the retention, then the oldest until its files
        fit ``max_bytes``. Answers how many were removed."""
        horizon = time.time() - retention_s
        with self._lock:
            segments = self._segments.get(model, [])
            total = sum(s.size for s in segments)
            doomed = []
            for s in segments:  # oldest first
                if s.last_at < horizon or total > max_bytes:
                    doomed.append(s)
                    total -= s.size
        for s in doomed:
            self._remove(model, s)
        return len(doomed)

    def _remove(self, model: str, segment: Segment) -> None:
        current = self._open.get((model, segment.version))
        if current is not None and current.segment is segment:
            self._close(model, segment.version)
        segment.path.unlink(missing_ok=True)
        with self._lock:
            kept = self._segments.get(model, [])
            if segment in kept:
                kept.remove(segment)

    def forget(self, model: str, version: int | None = None) -> None:
        """Remove a deleted model's (or version's) files: a name or number used again starts with no log."""
        for m, v in list(self._open):
            if m == model and version in (None, v):
                self._close(m, v)
        with self._lock:
            kept = self._segments.get(model, [])
            self._segments[model] = [s for s in kept if version is not None and s.version != version]
        shutil.rmtree(self.root / model if version is None else self.root / model / f"v{version}",
                      ignore_errors=True)

    # ---- readers ----

    def models(self) -> list[str]:
        with self._lock:
            return [m for m, s in self._segments.items() if s]

    def segments(self, model: str, version: int | None = None) -> list[Segment]:
        """The model's segments (one version's), oldest first: a copy, safe to walk while the writer goes on."""
        with self._lock:
            return [s for s in self._segments.get(model, []) if version is None or s.version == version]

    def totals(self, model: str) -> tuple[int, int, int]:
        """(lines, bytes, segments) the model keeps; segments found at start-up are counted once, here."""
        segments = self.segments(model)
        for s in segments:
            if s.lines is None:
                counted = sum(chunk.count(b"\n") for chunk in _chunks(s.path))
                with self._lock:
                    s.lines = counted if s.lines is None else s.lines
        return sum(s.lines or 0 for s in segments), sum(s.size for s in segments), len(segments)


def _chunks(path: Path) -> Iterator[bytes]:
    try:
        with path.open("rb") as f:
            while chunk := f.read(_READ_CHUNK):
                yield chunk
    except FileNotFoundError:  # removed by the writer meanwhile (past its retention or the cap)
        return


def lines(segment: Segment) -> Iterator[bytes]:
    """A segment's complete lines, oldest first; a torn last line (a crash in the middle of a write, or a write
    still going on) is left out."""
    try:
        with segment.path.open("rb") as f:
            for line in f:
                if line.endswith(b"\n"):
                    yield line
    except FileNotFoundError:
        return


def private_dir(path: Path) -> None:
    """The log holds what callers sent: only the server's user may read it."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
