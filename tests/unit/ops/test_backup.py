"""Backup and restore on a real SQLite database and a real local store: what a snapshot names, what it leaves out,
objects deleted while a backup runs, and every refusal."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sqlite3
from contextlib import closing
from pathlib import Path

import msgspec
import pytest

from flashml.db.engine import open_database
from flashml.ops.backup import TRIES, BackupError, backup
from flashml.ops.backup_manifest import ManifestError, read_manifest
from flashml.ops.restore import RestoreError, restore
from flashml.settings import Settings
from flashml.storage.local import LocalArtifactStore
from tests.helpers.s3 import Moto, make_s3

ROWS = """
INSERT INTO models (id, name, created_by, created_at) VALUES (1, 'm', 't', 0);
INSERT INTO versions (model_id, version, state, created_by, created_at, updated_at, source_name, size_bytes, report)
VALUES
  (1, 1, 'ready', 't', 0, 0, 'm.onnx', 9, '{"bundle_key": "uploads/t/m-v1.onnx"}'),
  (1, 2, 'validating', 't', 0, 0, 'm.onnx', 9, NULL),
  (1, 3, 'failed', 't', 0, 0, 'm.onnx', 9, NULL),
  (1, 4, 'archived', 't', 0, 0, 'm.onnx', 9, '{"bundle_key": "uploads/t/m-v4.onnx"}');
INSERT INTO datasets (id, name, format, size_bytes, rows, columns, object_key, created_by, created_at) VALUES
  ('d1', 'rows.csv', 'csv', 3, 1, '[]', 'datasets/d1/data.csv', 't', 0);
INSERT INTO jobs (id, model, dataset_id, output_format, chunk_rows, on_bad_row, mapping, state, rows_total,
                  rows_done, rows_bad, run_rows_base, result_key, created_by, created_at, updated_at) VALUES
  (1, 'm', 'd1', 'csv', 10, 'skip', '{}', 'succeeded', 1, 1, 0, 0, 'jobs/1/result.csv', 't', 0, 0),
  (2, 'm', 'd1', 'csv', 10, 'skip', '{}', 'running', 20, 10, 0, 0, NULL, 't', 0, 0),
  (3, 'm', 'd1', 'csv', 10, 'skip', '{}', 'failed', 20, 10, 0, 0, NULL, 't', 0, 0);
INSERT INTO job_chunks (job_id, chunk, rows, rows_bad, object_key, done_at) VALUES
  (2, 0, 10, 0, 'jobs/2/chunks/00000000.csv', 0), (3, 0, 10, 0, 'jobs/3/chunks/00000000.csv', 0);
INSERT INTO upload_sessions (id, token_hash, model, filename, size_bytes, user, actor, object_key, multipart_id,
                             state, created_at, expires_at, updated_at) VALUES
  ('u1', 'h', 'm', 'a.onnx', 9, 't', 't', 'incoming/u1', 'mp', 'pending', 0, 9e9, 0),
  ('u2', 'h', 'm', 'b.onnx', 9, 't', 't', 'incoming/u2', NULL, 'completing', 0, 9e9, 0),
  ('u3', 'h', 'm', 'c.onnx', 9, 't', 't', 'incoming/u3', NULL, 'done', 0, 9e9, 0);
"""

NAMED = ["datasets/d1/data.csv", "jobs/1/result.csv", "jobs/2/chunks/00000000.csv", "models/m/v1/checksums.json",
         "models/m/v1/model.onnx", "models/m/v4/checksums.json", "models/m/v4/model.onnx", "uploads/t/m-v1.onnx",
         "uploads/t/m-v4.onnx"]
UNNAMED = ["incoming/u1", "jobs/3/chunks/00000000.csv", "models/m/v2/model.onnx"]  # not in any snapshot


def make_data_dir(root: Path) -> Settings:
    settings = Settings(data_dir=root / "data")

    async def create() -> None:
        engine = await open_database(settings.db_path)
        await engine.dispose()

    asyncio.run(create())
    with closing(sqlite3.connect(settings.db_path)) as conn, conn:
        conn.executescript(ROWS)
    store = LocalArtifactStore(settings.data_dir)
    store.prepare()
    for key in NAMED + UNNAMED:
        path = settings.data_dir / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"bytes of {key}".encode())
    segment = settings.data_dir / "predictions" / "m" / "v1" / "00000000000000000001.jsonl"
    segment.parent.mkdir(parents=True)
    segment.write_bytes(b'{"n": 1}\n{"n": 2}\n{"n": 3, "torn')  # a line being written
    (settings.data_dir / "predictions" / "gone" / "v1").mkdir(parents=True)  # a model deleted meanwhile
    (settings.data_dir / "predictions" / "gone" / "v1" / "00000000000000000002.jsonl").write_bytes(b"{}\n")
    return settings


def query(db: Path, sql: str) -> list[tuple]:
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute(sql).fetchall()


def test_backup_holds_what_the_snapshot_names_and_leaves_half_done_work_out(tmp_path):
    settings = make_data_dir(tmp_path)
    said: list[str] = []
    manifest = backup(settings, tmp_path / "bk", said.append)
    assert [o.key for o in manifest.objects] == NAMED
    for key in NAMED:
        assert (tmp_path / "bk" / "objects" / key).read_bytes() == f"bytes of {key}".encode()
    assert not (tmp_path / "bk" / "objects" / "incoming").exists()
    assert [f.path for f in manifest.files] == ["predictions/m/v1/00000000000000000001.jsonl"]
    assert (tmp_path / "bk" / manifest.files[0].path).read_bytes() == b'{"n": 1}\n{"n": 2}\n'
    assert manifest.counts["versions"] == 4 and manifest.counts["jobs"] == 3 and manifest.objects_copied
    assert read_manifest(tmp_path / "bk") == manifest
    assert any("1 version(s) being validated, 2 direct upload(s)" in s for s in said)

    db = tmp_path / "bk" / "flashml.db"
    states = query(db, "SELECT version, state, errors FROM versions ORDER BY version")
    assert [(v, s) for v, s, _ in states] == [(1, "ready"), (2, "failed"), (3, "failed"), (4, "archived")]
    assert json.loads(states[1][2])[0]["code"] == "interrupted"
    uploads = query(db, "SELECT id, state, error, multipart_id FROM upload_sessions ORDER BY id")
    assert [(i, s, m) for i, s, _, m in uploads] == [("u1", "failed", None), ("u2", "failed", None),
                                                    ("u3", "done", None)]
    assert json.loads(uploads[0][2])["code"] == "interrupted"
    # the live database is untouched
    assert query(settings.db_path, "SELECT state FROM versions WHERE version = 2") == [("validating",)]
    assert query(db, "PRAGMA journal_mode") == [("delete",)]
    assert not list(tmp_path.glob(".bk.partial-*"))


def test_restore_brings_it_back_into_an_empty_data_directory(tmp_path):
    settings = make_data_dir(tmp_path)
    backup(settings, tmp_path / "bk")
    target = dataclasses.replace(settings, data_dir=tmp_path / "new")
    (tmp_path / "new").mkdir()  # empty: fine
    done = restore(tmp_path / "bk", target)
    assert done.objects == len(NAMED)
    for key in NAMED:
        assert (tmp_path / "new" / key).read_bytes() == f"bytes of {key}".encode()
    for key in UNNAMED:
        assert not (tmp_path / "new" / key).exists()
    assert (tmp_path / "new" / "predictions" / "m" / "v1" / "00000000000000000001.jsonl").is_file()
    db = tmp_path / "new" / "flashml.db"
    assert (tmp_path / "new").stat().st_mode & 0o777 == 0o700 and db.stat().st_mode & 0o777 == 0o600
    assert query(db, "SELECT actor, action FROM audit") == [("cli", "backup.restore")]
    assert query(db, "SELECT count(*) FROM job_chunks") == [(2,)]
    assert not list(tmp_path.glob(".new.restoring-*"))


def test_an_object_deleted_after_the_snapshot_starts_the_backup_again(tmp_path):
    settings = make_data_dir(tmp_path)
    said: list[str] = []

    def delete_the_dataset(message: str) -> None:
        """What the server does on DELETE /api/v1/datasets/d1, right after the snapshot was taken."""
        said.append(message)
        if message.startswith("Copying") and "object(s)" in message and len(said) < 5:
            with closing(sqlite3.connect(settings.db_path)) as conn, conn:
                conn.execute("DELETE FROM datasets WHERE id = 'd1'")
            (settings.data_dir / "datasets" / "d1" / "data.csv").unlink()

    manifest = backup(settings, tmp_path / "bk", delete_the_dataset)
    assert any("datasets/d1/data.csv was deleted after the snapshot" in s for s in said)
    assert [o.key for o in manifest.objects] == [k for k in NAMED if not k.startswith("datasets/")]
    assert query(tmp_path / "bk" / "flashml.db", "SELECT count(*) FROM datasets") == [(0,)]


def test_a_store_that_keeps_losing_objects_fails_the_backup_and_leaves_nothing(tmp_path):
    settings = make_data_dir(tmp_path)
    tries = []

    def lose_a_file(message: str) -> None:
        if message.startswith("Copying") and "object(s)" in message:
            tries.append(message)
            (settings.data_dir / "jobs" / "1" / "result.csv").unlink(missing_ok=True)

    with pytest.raises(BackupError, match="jobs/1/result.csv was deleted while the backup read it"):
        backup(settings, tmp_path / "bk", lose_a_file)
    assert len(tries) == TRIES
    assert not (tmp_path / "bk").exists() and not list(tmp_path.glob(".bk.partial-*"))


def test_backup_refusals(tmp_path):
    settings = make_data_dir(tmp_path)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(BackupError, match="already exists"):
        backup(settings, tmp_path / "full")
    with pytest.raises(BackupError, match="inside the data directory"):
        backup(settings, settings.data_dir / "bk")
    with pytest.raises(BackupError, match="holds no FlashML database"):
        backup(dataclasses.replace(settings, data_dir=tmp_path / "nothing"), tmp_path / "bk")


def test_restore_refusals(tmp_path):
    settings = make_data_dir(tmp_path)
    backup(settings, tmp_path / "bk")
    with pytest.raises(RestoreError, match="is not empty"):
        restore(tmp_path / "bk", settings)
    with pytest.raises(ManifestError, match="has no manifest.json"):
        restore(tmp_path, dataclasses.replace(settings, data_dir=tmp_path / "new"))

    manifest = json.loads((tmp_path / "bk" / "manifest.json").read_text())
    newer = tmp_path / "newer"
    newer.mkdir()
    (newer / "manifest.json").write_text(json.dumps({**manifest, "format": 99}))
    with pytest.raises(ManifestError, match="backup of format 99"):
        restore(newer, dataclasses.replace(settings, data_dir=tmp_path / "new"))
    (newer / "manifest.json").write_text("{not json")
    with pytest.raises(ManifestError, match="not valid JSON"):
        restore(newer, dataclasses.replace(settings, data_dir=tmp_path / "new"))
    (newer / "manifest.json").write_text(json.dumps({**manifest, "objects_copied": False, "storage": "s3"}))
    with pytest.raises(RestoreError, match="restore it with storage = s3"):
        restore(newer, dataclasses.replace(settings, data_dir=tmp_path / "new"))

    with open(tmp_path / "bk" / "flashml.db", "ab") as f:  # damaged after it was written
        f.write(b"\0")
    (tmp_path / "bk" / "predictions" / "m" / "v1" / "00000000000000000001.jsonl").unlink()
    with pytest.raises(RestoreError) as err:
        restore(tmp_path / "bk", dataclasses.replace(settings, data_dir=tmp_path / "new"))
    assert "flashml.db: changed in the backup" in str(err.value)
    assert "predictions/m/v1/00000000000000000001.jsonl: missing from the backup" in str(err.value)
    assert not (tmp_path / "new").exists()


def test_manifest_round_trips_as_json(tmp_path):
    settings = make_data_dir(tmp_path)
    manifest = backup(settings, tmp_path / "bk")
    raw = json.loads((tmp_path / "bk" / "manifest.json").read_text())
    assert raw["format"] == 1 and raw["database"]["path"] == "flashml.db" and len(raw["database"]["sha256"]) == 64
    assert msgspec.convert(raw, type(manifest)) == manifest


def test_a_local_backup_restores_into_an_s3_store(tmp_path):
    settings = make_data_dir(tmp_path)
    backup(settings, tmp_path / "bk")
    moto = Moto().start()
    try:
        store = make_s3(moto.endpoint, prefix="site-b")
        target = dataclasses.replace(settings, data_dir=tmp_path / "new", storage="s3")
        done = restore(tmp_path / "bk", target, store=store)
        assert done.objects == len(NAMED)
        for key in NAMED:
            info = store.stat(key)
            assert info is not None and info.size == len(f"bytes of {key}")
            store.get_file(key, tmp_path / "got")
            assert (tmp_path / "got").read_bytes() == f"bytes of {key}".encode()
        for key in UNNAMED:
            assert store.stat(key) is None
        assert (tmp_path / "new" / "flashml.db").is_file() and not (tmp_path / "new" / "models").exists()
    finally:
        moto.stop()
