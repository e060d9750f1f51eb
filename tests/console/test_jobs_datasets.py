"""The Batch jobs pages in process: a dataset's Delete button asks first, then deletes or says why not; a job's
page names its dataset by file name as well as id."""

from __future__ import annotations

import re
from contextlib import closing

import pytest

from tests.helpers.jobs import csv_dataset, publish_adder, push, run_job
from tests.helpers.server_process import login_token

PASSWORD = "jobs page password 1"


def _client(app, name: str, role: str):
    app.create_user(name, PASSWORD, role)
    client = app.client()
    r = client.post("/login", data={**login_token(client), "name": name, "password": PASSWORD})
    assert r.status_code == 303, r.text
    return client


def _csrf(page_html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page_html).group(1)


@pytest.fixture(scope="module")
def api(app):
    with closing(app.client(app.create_key("jobs page admin", "admin"))) as client:
        yield client


@pytest.fixture(scope="module")
def maintainer(app):
    with closing(_client(app, "ui-jobs-maintainer", "maintainer")) as client:
        yield client


@pytest.fixture(scope="module")
def viewer(app):
    with closing(_client(app, "ui-jobs-viewer", "viewer")) as client:
        yield client


def test_delete_asks_first_then_deletes(api, maintainer, viewer):
    ds = push(api, "to-delete.csv", csv_dataset(4)).json()
    page = maintainer.get("/jobs").text
    assert f'action="/datasets/{ds["id"]}/delete"' in page and 'aria-label="Delete dataset to-delete.csv"' in page
    assert f'action="/datasets/{ds["id"]}/delete"' not in viewer.get("/jobs").text
    token = _csrf(page)

    asked = maintainer.post(f"/datasets/{ds['id']}/delete", data={"csrf_token": token})
    assert asked.status_code == 200 and "Delete dataset to-delete.csv?" in asked.text
    assert 'name="confirm" value="yes"' in asked.text and 'id="confirm-in-use"' not in asked.text
    assert api.get(f"/api/v1/datasets/{ds['id']}").status_code == 200  # asking deleted nothing

    done = maintainer.post(f"/datasets/{ds['id']}/delete", data={"csrf_token": token, "confirm": "yes"})
    assert done.status_code == 303 and done.headers["location"] == "/jobs?done=dataset_delete"
    assert "Dataset deleted" in maintainer.get(done.headers["location"]).text
    assert api.get(f"/api/v1/datasets/{ds['id']}").status_code == 404


def test_a_viewer_cannot_delete(api, viewer):
    ds = push(api, "viewers-cannot.csv", csv_dataset(2)).json()
    token = _csrf(viewer.get("/jobs").text)
    r = viewer.post(f"/datasets/{ds['id']}/delete", data={"csrf_token": token, "confirm": "yes"})
    assert r.status_code == 403
    assert api.get(f"/api/v1/datasets/{ds['id']}").status_code == 200


def test_a_dataset_in_use_is_named_on_the_confirm_page_and_kept(api, maintainer, tmp_path_factory):
    model = publish_adder(api, tmp_path_factory.mktemp("jobs-page"))
    ds = push(api, "scheduled.csv", csv_dataset(3)).json()
    schedule = api.post("/api/v1/jobs", json={"model": model, "version": "1", "dataset": ds["id"],
                                              "schedule": {"cron": "0 4 * * *"}}).json()["schedule"]
    page = maintainer.get("/jobs").text
    assert f"on scheduled.csv (<code>{ds['id']}</code>)" in page  # the schedule names the dataset's file
    token = _csrf(page)
    asked = maintainer.post(f"/datasets/{ds['id']}/delete", data={"csrf_token": token})
    assert 'id="confirm-in-use"' in asked.text and f"schedule {schedule['id']}" in asked.text
    refused = maintainer.post(f"/datasets/{ds['id']}/delete", data={"csrf_token": token, "confirm": "yes"})
    assert refused.status_code == 409 and "Not deleted" in refused.text and "in use by" in refused.text
    assert api.get(f"/api/v1/datasets/{ds['id']}").status_code == 200


def test_the_job_page_names_the_dataset_by_file_and_id(api, maintainer, tmp_path_factory):
    model = publish_adder(api, tmp_path_factory.mktemp("jobs-page"))
    ds = push(api, "named-rows.csv", csv_dataset(5)).json()
    job = run_job(api, model=model, version="1", dataset=ds["id"])
    facts = maintainer.get(f"/jobs/{job['id']}").text
    assert f"Dataset named-rows.csv (5 rows, <code>{ds['id']}</code>)" in facts
    assert api.delete(f"/api/v1/datasets/{ds['id']}").status_code == 204
    assert f"Dataset <code>{ds['id']}</code> (deleted)" in maintainer.get(f"/jobs/{job['id']}").text
