"""The API's answers in words a person reads (issue 24, item 8): a bad image, a task named in a sentence, the caller's
identity and the audit log as typed records, never Python's internals."""

from __future__ import annotations

from contextlib import closing

import pytest

from tests.helpers.plain_text import internal_text, publish_image_classifier
from tests.helpers.tasks import png

MODEL = "plain-cls"


@pytest.fixture(scope="module")
def classifier(app, admin_key, tmp_path_factory) -> str:
    with closing(app.client(admin_key)) as api:
        return publish_image_classifier(api, tmp_path_factory.mktemp("plain"), MODEL)


@pytest.mark.parametrize("data", [b"not an image at all", b"GIF89a not really", b"\x89PNG\r\n\x1a\n" + b"\0" * 40])
def test_a_bad_image_is_refused_without_pythons_internals(api, classifier, data):
    r = api.post(f"/v1/models/{classifier}/predict", content=data, headers={"Content-Type": "image/png"})
    assert r.status_code == 415 and r.json()["code"] == "unsupported_image", r.text
    message = r.json()["error"]
    assert message.startswith("Image 0 is not a JPEG, PNG, WebP, BMP, GIF or TIFF image (")
    assert internal_text(r.text) == [] and "BytesIO" not in message, message


def test_a_damaged_image_says_so_in_words(api, classifier):
    whole = png(40, 40, 3)
    r = api.post(f"/v1/models/{classifier}/predict", content=whole[: len(whole) // 2],
                 headers={"Content-Type": "image/png"})
    assert r.status_code == 415, r.text
    assert internal_text(r.text) == [] and "0x" not in r.json()["error"], r.text


def test_the_wrong_kind_of_input_names_the_task_in_words(api, classifier):
    r = api.post(f"/v1/models/{classifier}/predict", json={"texts": ["hello"]})
    assert r.status_code == 400 and r.json()["code"] == "wrong_input_kind", r.text
    assert r.json()["error"] == f"{classifier} is an image classification model: send images, not texts."
    assert r.json()["details"] == {"task": "image-classification", "expects": "images"}  # the identifier stays


def test_me_answers_a_typed_identity(app, api):
    me = api.get("/api/v1/me").json()
    assert set(me) == {"key"} and me["key"]["role"] == "admin" and me["key"]["name"] == "api admin"
    assert set(me["key"]) == {"id", "key_id", "name", "role", "models", "user", "rate_limit_per_s", "burst",
                              "daily_quota", "weight"}
    doc = api.get("/schema/openapi.json").json()
    schema = doc["paths"]["/api/v1/me"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("/Identity")
    listed = doc["paths"]["/api/v1/audit"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert listed["items"]["$ref"].endswith("/AuditEvent")


def test_the_audit_log_is_typed_and_keeps_its_visibility_rule(app, api, classifier):
    events = api.get("/api/v1/audit", params={"limit": 1000}).json()
    assert {"key.create", "version.upload"} <= {e["action"] for e in events}
    assert all(set(e) == {"id", "at", "actor", "action", "target", "detail"} for e in events)
    assert [e["id"] for e in events] == sorted((e["id"] for e in events), reverse=True)  # newest first
    assert len(api.get("/api/v1/audit", params={"limit": 1}).json()) == 1
    viewer = app.client(app.create_key("plain viewer", "viewer"))
    with closing(viewer):
        seen = viewer.get("/api/v1/audit", params={"limit": 1}).json()
        # A viewer's newest event is the newest of the models' trail, though a key was created after it.
        assert len(seen) == 1 and seen[0]["action"].startswith(("model.", "version."))
        assert {e["action"].split(".")[0] for e in viewer.get("/api/v1/audit").json()} <= {"model", "version"}
