"""Upload housekeeping in-process, against a real database (SQLite and PostgreSQL) and the local store: what a kill
leaves is cleaned."""

from __future__ import annotations

import time

from flashml.composition import open_services
from flashml.db import uploads as db
from flashml.registry.requests import UploadStart
from flashml.settings import load_settings
from tests.helpers.in_process import run
from tests.helpers.postgres import database_settings


def test_a_restart_fails_interrupted_completions_and_removes_their_bytes(tmp_path, db_target):
    settings = load_settings({"data_dir": str(tmp_path / "data"), "device": "cpu", "autotune": False,
                              **database_settings(db_target)}, env={})

    async def scenario():
        services = await open_services(settings)
        try:
            up = (await services.uploads.create(UploadStart(model="m", filename="m.onnx", size=10),
                                                actor="alice/console", user="alice")).to_dict()
            big = (await services.uploads.create(UploadStart(model="big", filename="b.tar.gz", size=(5 << 20) + 1),
                                                 actor="alice/console", user="alice")).to_dict()
            incoming = settings.data_dir / "incoming"
            (incoming / up["id"]).write_bytes(b"0123456789")
            (incoming / f"{big['id']}.parts").mkdir()
            (incoming / f"{big['id']}.parts" / "00001").write_bytes(b"x")
            (incoming / "left-by-a-crash").write_bytes(b"x")
            await db.move(services.engine, up["id"], "pending", "completing")  # killed while completing

            await services.uploads.housekeeping(at_start=True)
            row = await db.get(services.engine, up["id"])
            assert row["state"] == "failed" and row["error"]["code"] == "interrupted"
            assert sorted(p.name for p in incoming.iterdir()) == [f"{big['id']}.parts"]  # still pending: kept
            assert await services.registry.list_models() == []  # nothing became a version

            await db.set_values(services.engine, big["id"], expires_at=time.time() - 1)
            assert await services.uploads.housekeeping() == 1
            assert (await db.get(services.engine, big["id"]))["state"] == "expired"
            assert list(incoming.iterdir()) == []

            await db.set_values(services.engine, up["id"], updated_at=time.time() - 2 * settings.upload_session_ttl_s)
            await services.uploads.housekeeping()
            assert await db.get(services.engine, up["id"]) is None  # old records go too
        finally:
            await services.close()

    run(scenario())
