"""Names as long as the API takes them fit the database on both engines: an actor is a key's name (up to 128
characters) joined to its maker's, and a model's file name comes from the query string, both longer than their
columns. PostgreSQL refuses a longer value where SQLite keeps it, so every writer cuts it to the column first
(flashml/db/fit.py); without that, each request below was a 500 on PostgreSQL."""

from __future__ import annotations

from contextlib import closing

from tests.helpers import onnx_models
from tests.helpers.jobs import csv_dataset, push
from tests.helpers.uploads import upload


def test_a_long_named_key_makes_keys_models_aliases_datasets_and_schedules(api, app, tmp_path):
    name = "long key " + "k" * 119
    made = api.post("/api/v1/keys", json={"name": name, "role": "admin"})
    assert made.status_code == 201 and made.json()["name"] == name, made.text
    with closing(app.client(made.json()["token"])) as long_key:
        actor = f"{made.json()['created_by']}/key:{name}"  # 155 characters: the audit keeps 128, created_by 64
        second = long_key.post("/api/v1/keys", json={"name": "made by a long name", "role": "inference"})
        assert second.status_code == 201, second.text
        assert second.json()["created_by"] == actor[:64]

        filename = "f" * 300 + ".onnx"
        model = onnx_models.add_model(tmp_path / "m.onnx").read_bytes()
        r = long_key.post("/api/v1/models/longnames/versions", content=model, params={"filename": filename},
                          headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 201, r.text
        assert r.json()["source_name"] == filename[:255]
        assert upload(long_key, "longnames", tmp_path / "m.onnx").status_code == 201
        assert long_key.put("/api/v1/models/longnames/aliases/prod", json={"version": 1}).status_code == 200

        dataset = push(long_key, "rows.csv", csv_dataset(3))
        assert dataset.status_code == 201, dataset.text
        job = long_key.post("/api/v1/jobs", json={"model": "longnames", "dataset": dataset.json()["id"],
                                                  "schedule": {"interval_s": 86400}})
        assert job.status_code == 201, job.text

    events = api.get("/api/v1/audit", params={"limit": 20}).json()
    by_long_key = [e for e in events if e["actor"] == actor[:128]]
    assert {"key.create", "version.upload", "model.alias_set"} <= {e["action"] for e in by_long_key}
