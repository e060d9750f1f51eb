"""DELETE /api/v1/datasets/{id}: removes the record and the stored file, audited; refused while a job that will
read the dataset or a schedule uses it."""

from __future__ import annotations

from contextlib import closing

from tests.helpers.jobs import csv_dataset, push, wait


def stored_files(app, dataset_id: str) -> list:
    return [p for p in app.data_dir.rglob("*") if dataset_id in p.parts]


def test_delete_removes_the_dataset_and_its_file_and_is_audited(app, api):
    ds = push(api, "gone.csv", csv_dataset(3)).json()
    assert stored_files(app, ds["id"]) != []
    r = api.delete(f"/api/v1/datasets/{ds['id']}")
    assert r.status_code == 204, r.text
    assert api.get(f"/api/v1/datasets/{ds['id']}").status_code == 404
    assert ds["id"] not in [d["id"] for d in api.get("/api/v1/datasets").json()]
    assert stored_files(app, ds["id"]) == []
    event = next(e for e in api.get("/api/v1/audit").json() if e["action"] == "dataset.delete")
    assert event["target"] == f"dataset:{ds['id']}" and event["detail"]["name"] == "gone.csv"
    again = api.delete(f"/api/v1/datasets/{ds['id']}")
    assert again.status_code == 404 and again.json()["code"] == "dataset_not_found"


def test_a_viewer_may_not_delete(app, api):
    ds = push(api, "kept.csv", csv_dataset(2)).json()
    with closing(app.client(app.create_key("dataset viewer", "viewer"))) as viewer:
        r = viewer.delete(f"/api/v1/datasets/{ds['id']}")
    assert r.status_code == 403 and r.json()["code"] == "role_forbidden"
    assert api.get(f"/api/v1/datasets/{ds['id']}").status_code == 200


def test_a_schedule_or_an_unfinished_job_keeps_the_dataset(app, api, adder):
    ds = push(api, "busy.csv", csv_dataset(3000)).json()
    schedule = api.post("/api/v1/jobs", json={"model": adder, "version": "1", "dataset": ds["id"],
                                              "schedule": {"cron": "0 3 * * *"}}).json()["schedule"]
    refused = api.delete(f"/api/v1/datasets/{ds['id']}")
    assert refused.status_code == 409 and refused.json()["code"] == "dataset_in_use"
    assert refused.json()["details"] == {"jobs": [], "schedules": [schedule["id"]]}
    assert f"schedule {schedule['id']}" in refused.json()["error"]
    assert api.delete(f"/api/v1/schedules/{schedule['id']}").status_code == 204

    job_id = api.post("/api/v1/jobs", json={"model": adder, "version": "1", "dataset": ds["id"],
                                            "chunk_rows": 10}).json()["job"]["id"]
    assert api.post(f"/api/v1/jobs/{job_id}/pause").json()["state"] == "paused"  # it will read the rest on resume
    refused = api.delete(f"/api/v1/datasets/{ds['id']}")
    assert refused.status_code == 409 and refused.json()["details"] == {"jobs": [job_id], "schedules": []}
    assert stored_files(app, ds["id"]) != []

    assert api.post(f"/api/v1/jobs/{job_id}/cancel").json()["state"] == "cancelled"
    wait(api, job_id)
    assert api.delete(f"/api/v1/datasets/{ds['id']}").status_code == 204  # a finished job keeps only its id
    assert api.get(f"/api/v1/jobs/{job_id}").json()["dataset_id"] == ds["id"]


def test_the_openapi_document_lists_the_conflict(api):
    operation = api.get("/schema/openapi.json").json()["paths"]["/api/v1/datasets/{dataset_id}"]["delete"]
    assert {"204", "404", "409"} <= set(operation["responses"])
