"""The console in words a person reads (issue 24, item 8): every validation step has a label, the audit log's
details are "key: value" lines, and a task is named in a sentence with its article."""

from __future__ import annotations

import json
import re
from contextlib import closing

import pytest

from tests.helpers.console import sign_in
from tests.helpers.plain_text import publish_image_classifier, readable

MODEL = "plain-console-cls"


@pytest.fixture(scope="module")
def classifier(app, tmp_path_factory) -> str:
    with closing(app.client(app.create_key("plain console admin", "admin"))) as api:
        return publish_image_classifier(api, tmp_path_factory.mktemp("plain-console"), MODEL)


@pytest.fixture()
def admin(app):
    client = app.client()
    sign_in(client, app.app, "plain-admin", "admin")
    with closing(client):
        yield client


def test_every_validation_step_has_a_label(app, admin, classifier):
    """The steps a task model's upload records (the task check among them) all read as words on the Upload page."""
    version = admin.get(f"/api/v1/models/{classifier}/versions/1").json()
    recorded = [s["step"] for s in version["report"]["steps"]]
    assert "task" in recorded and "warmup" in recorded
    page = admin.get("/upload")
    config = json.loads(re.search(r'<script type="application/json" id="upload-config">(.*?)</script>', page.text,
                                  re.S).group(1))
    labels = {s["step"]: s["label"] for s in config["steps"]}
    assert set(recorded) <= set(labels), f"steps without a label: {set(recorded) - set(labels)}"
    assert all(label != step and " " in label for step, label in labels.items())
    optional = {s["step"] for s in config["steps"] if s["optional"]}
    assert optional == {"task", "autotune"}  # listed as "to come" only for the models that run them


def test_audit_details_read_as_key_value_lines(app, admin, classifier):
    r = admin.put(f"/api/v1/models/{classifier}/aliases/production", json={"version": 1},
                  headers={"X-CSRF-Token": admin.get("/api/v1/me").json()["csrf_token"]})
    assert r.status_code == 200, r.text
    page = admin.get("/audit")
    assert page.status_code == 200
    rows = re.findall(r"<tr><td class=\"nowrap\">.*?</tr>", page.text, re.S)
    alias_row = next(row for row in rows if "model.alias_set" in row)
    assert 'versions: 1 = 100<br>previous: none' in alias_row
    upload_row = next(row for row in rows if "version.upload" in row)
    assert "source: bundle.tar.gz<br>bytes: " in upload_row
    details = re.findall(r'<td class="audit-detail">(.*?)</td>', page.text, re.S)
    assert details and not any("{" in d or "&#34;" in d or '"' in d for d in details), details


def test_the_playground_names_the_task_in_words(app, admin, classifier):
    page = admin.get(f"/models/{classifier}/playground")
    assert page.status_code == 200
    summary = readable(re.search(r'<p id="task-summary">(.*?)</p>', page.text, re.S).group(1))
    assert summary.startswith("Version 1 is an image classification model (image-classification in its flashml.toml)")
