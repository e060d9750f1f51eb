"""The JSON API's request bodies are typed records (flashml/registry/requests.py, flashml/jobs/requests.py),
decoded strictly in one place, with the OpenAPI document generated from the same records: in-process, through
Litestar's TestClient (a real socket adds nothing to decoding a body)."""

from __future__ import annotations

import msgspec
import pytest

from flashml.auth.requests import KeyLimits, NewKey
from flashml.jobs.requests import JobRequest
from flashml.registry.requests import AliasUpdate, ConfigChange, ModelChange, PinChange, UploadStart
from tests.helpers.in_process import InProcessApp, publish_offset_versions

TYPED = {("put", "/api/v1/models/{model}/aliases/{alias}"): AliasUpdate,
         ("patch", "/api/v1/models/{model}/versions/{version}/config"): ConfigChange,
         ("patch", "/api/v1/models/{model}/versions/{version}"): PinChange,
         ("patch", "/api/v1/models/{model}"): ModelChange,
         ("post", "/api/v1/uploads"): UploadStart,
         ("post", "/api/v1/jobs"): JobRequest,
         ("post", "/api/v1/keys"): NewKey,
         ("patch", "/api/v1/keys/{key_id}"): KeyLimits}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bodies")
    with InProcessApp(folder / "data") as running:
        running.call(publish_offset_versions, running.services.registry, folder)
        yield running


@pytest.fixture(scope="module")
def api(app):
    return app.client(app.create_key())


@pytest.fixture(scope="module")
def document(api):
    return api.get("/schema/openapi.json").json()


@pytest.mark.parametrize(("method", "path"), sorted(TYPED))
def test_each_body_in_the_document_is_generated_from_its_record(document, method, path):
    kind = TYPED[(method, path)]
    body = document["paths"][path][method]["requestBody"]
    assert body["required"] is True
    assert body["content"]["application/json"]["schema"] == {"$ref": f"#/components/schemas/{kind.__name__}"}
    _, components = msgspec.json.schema_components([kind], ref_template="#/components/schemas/{name}")
    for name, schema in components.items():  # the record and those it nests, exactly as msgspec writes them
        assert document["components"]["schemas"][name] == schema
    assert set(document["components"]["schemas"][kind.__name__]["properties"]) == set(kind.__struct_fields__)
    # a body the handler decodes can be malformed or too large: both answers are listed
    assert {"400", "413"} <= set(document["paths"][path][method]["responses"])


def test_the_document_carries_the_records_rules(document):
    schemas = document["components"]["schemas"]
    weight = schemas["AliasUpdate"]["properties"]["versions"]["additionalProperties"]
    assert weight["minimum"] == 1 and weight["maximum"] == 100
    assert set(schemas["JobRequest"]["properties"]["on_bad_row"]["enum"]) == {"skip", "fail"}
    assert schemas["AliasUpdate"]["additionalProperties"] is False  # unknown fields are refused


@pytest.mark.parametrize(("path", "body", "code", "field", "words"), [
    # a number sent as a string is refused, never converted (Litestar's own `data` would take "1" as 1)
    ("/api/v1/models/m/aliases/production", {"version": "1"}, "bad_alias_body", "version",
     "version must be a whole number, not a string."),
    ("/api/v1/models/m/aliases/production", {"versions": {"1": "50", "2": 50}}, "bad_alias_weights", "versions",
     "The weight of each version is a whole number from 1 to 100."),
    ("/api/v1/models/m/aliases/production", {"version": 1, "guard": {"window_s": "60"}}, "bad_alias_guard",
     "guard.window_s", "window_s is from 1 to 3600 seconds."),
    ("/api/v1/models/m/aliases/production", {"versions": {"x": 100}}, "bad_alias_body", "versions",
     "each key of versions must be"),
    ("/api/v1/models/m/aliases/production", {"version": 1, "colour": "red"}, "bad_alias_body", "colour",
     "Unknown field(s): colour."),
    ("/api/v1/models/m/versions/1/config", {"max_batch_size": "8"}, "bad_batching_config", "max_batch_size",
     "max_batch_size must be a whole number, not a string."),
    ("/api/v1/models/m/versions/1/config", {"padded_inputs": {"x": {"axis": -1}}}, "bad_batching_config",
     "padded_inputs[].axis", "padded_inputs.<name>.axis must be a whole number >= 0."),
    ("/api/v1/models/m/versions/1", {"pinned": 1}, "bad_version_patch", "pinned", 'Send {"pinned": true}'),
    ("/api/v1/models/m", {"response_cache": {"enabled": True, "max_entries": "9"}}, "bad_response_cache",
     "response_cache.max_entries", '"max_entries" is a whole number'),
    ("/api/v1/uploads", {"model": "m", "filename": "m.onnx", "size": "10"}, "bad_size", "size",
     "size is the file's size in bytes"),
    ("/api/v1/uploads", {"filename": "m.onnx", "size": 10}, "bad_model_name", "model", "model names the model"),
    ("/api/v1/jobs", {"model": "m", "dataset": "d", "chunk_rows": 0}, "bad_chunk_rows", "chunk_rows",
     "chunk_rows is a whole number from 1 to 1000000."),
    ("/api/v1/jobs", {"model": "m", "dataset": "d", "schedule": {"every": 60}}, "bad_schedule", "schedule.every",
     'schedule is {"cron": "0 2 * * *"}'),
    ("/api/v1/keys", {"name": "k", "burst": "5"}, "invalid_request", "burst",
     "burst must be a whole number, not a string."),
    ("/api/v1/keys", {"name": "k", "role": "root"}, "invalid_request", "role",
     "role is admin, maintainer, viewer or inference."),
    ("/api/v1/keys/1", {"weight": 2.5}, "invalid_request", "weight", "weight must be a whole number, not a number."),
])
def test_a_wrong_field_is_a_400_that_names_it(api, path, body, code, field, words):
    method = {"/api/v1/models/m/aliases/production": api.put, "/api/v1/uploads": api.post,
              "/api/v1/jobs": api.post, "/api/v1/keys": api.post}.get(path, api.patch)
    r = method(path, json=body)
    assert r.status_code == 400, r.text
    answer = r.json()
    assert answer["code"] == code and answer["details"] == {"field": field}, answer
    assert answer["error"].startswith(words), answer
    assert "`" not in answer["error"] and "$." not in answer["error"]  # msgspec's own wording is not shown


@pytest.mark.parametrize("raw", [b"", b"{", b"[1, 2]", b"null", b"[" * 100_000])
def test_a_body_that_is_not_a_json_object_is_malformed(api, raw):
    r = api.patch("/api/v1/models/m/versions/1/config", content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["code"] in ("malformed_request", "bad_batching_config")
    assert "JSON" in r.json()["error"]


def test_a_good_body_changes_what_it_says(api, app):
    r = api.put("/api/v1/models/m/aliases/canary", json={"versions": {"1": 90, "2": 10},
                                                        "guard": {"max_error_rate": 0.5}})
    assert r.status_code == 200, r.text
    assert r.json()["versions"] == {"1": 90, "2": 10} and r.json()["guard"]["max_error_rate"] == 0.5
    r = api.patch("/api/v1/models/m/versions/2/config", json={"max_queue_delay_us": 250})
    assert r.status_code == 200 and r.json()["config"]["max_queue_delay_us"] == 250, r.text
    r = api.patch("/api/v1/models/m", json={"response_cache": {"enabled": True}})
    assert r.status_code == 200 and r.json()["enabled"] is True and r.json()["max_entries"] >= 1, r.text
