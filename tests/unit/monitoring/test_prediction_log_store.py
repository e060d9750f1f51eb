"""The prediction log's segments on a real folder: rotation by size and age, retention, the byte cap, torn lines."""

from __future__ import annotations

import os
import time

from flashml.monitoring.prediction_log_store import MIN_SEGMENT_BYTES, SegmentStore, lines, segment_bytes

LINE = b'{"at": 1.0, "pad": "' + b"x" * 1000 + b'"}\n'  # about 1 KB


def test_segments_rotate_by_size_and_by_age(tmp_path):
    store = SegmentStore(tmp_path)
    cap = 8 * MIN_SEGMENT_BYTES  # segments of 4 KiB
    for _ in range(10):
        store.append("m", 1, LINE, cap, 3600)
    sizes = [s.size for s in store.segments("m", 1)]
    assert len(sizes) == 3 and all(size <= segment_bytes(cap) for size in sizes)
    assert sum(sizes) == 10 * len(LINE)
    store.append("m", 1, LINE, cap, 0.0)  # a segment older than its age limit is closed too
    assert len(store.segments("m", 1)) == 4
    store.close()
    assert sorted(p.name for p in (tmp_path / "m" / "v1").iterdir()) == [s.path.name for s in store.segments("m")]
    assert oct((tmp_path / "m" / "v1" / store.segments("m")[0].path.name).stat().st_mode & 0o777) == "0o600"


def test_the_byte_cap_removes_the_oldest_segments_of_every_version(tmp_path):
    store = SegmentStore(tmp_path)
    cap = 8 * MIN_SEGMENT_BYTES
    for i in range(60):
        store.append("m", 1 + i % 2, LINE, cap, 3600)
        store.enforce("m", 3600, cap)
    kept = store.segments("m")
    assert sum(s.size for s in kept) <= cap
    assert {s.version for s in kept} == {1, 2}
    newest = max(s.first_ns for s in kept)
    assert all(not p.exists() for p in tmp_path.glob("m/v*/*.jsonl") if int(p.stem) > newest)
    assert len(list(tmp_path.glob("m/v*/*.jsonl"))) == len(kept)


def test_retention_removes_segments_whose_newest_line_is_too_old(tmp_path):
    store = SegmentStore(tmp_path)
    store.append("m", 1, LINE, 10**9, 0.0)
    old = store.segments("m")[0]
    store.append("m", 1, LINE, 10**9, 0.0)  # too old to take more: a second segment
    old.last_at = time.time() - 100
    assert store.enforce("m", 50, 10**9) == 1
    assert not old.path.exists() and len(store.segments("m")) == 1


def test_a_torn_last_line_is_skipped_and_a_restart_writes_a_new_segment(tmp_path):
    store = SegmentStore(tmp_path)
    store.append("m", 1, LINE + LINE, 10**9, 3600)
    store.close()
    path = store.segments("m")[0].path
    with path.open("ab") as f:  # a crash in the middle of a write
        f.write(LINE[:100])
    again = SegmentStore(tmp_path)
    again.scan()
    assert [s.path for s in again.segments("m", 1)] == [path] and again.segments("m")[0].lines is None
    assert list(lines(again.segments("m")[0])) == [LINE, LINE]
    assert again.totals("m") == (2, 2 * len(LINE) + 100, 1)
    again.append("m", 1, LINE, 10**9, 3600)
    assert len(again.segments("m", 1)) == 2  # never appended after the torn line
    assert path.read_bytes().endswith(LINE[:100])


def test_forget_removes_a_version_or_a_model(tmp_path):
    store = SegmentStore(tmp_path)
    for version in (1, 2):
        store.append("m", version, LINE, 10**9, 3600)
    store.forget("m", 1)
    assert [s.version for s in store.segments("m")] == [2] and not (tmp_path / "m" / "v1").exists()
    store.forget("m")
    assert store.segments("m") == [] and not (tmp_path / "m").exists()
    assert os.listdir(tmp_path) == []
