"""V2 inference in process: answers, version choice, keys, and every bad request."""

from __future__ import annotations

from contextlib import closing

import numpy as np
import pytest
from onnx import TensorProto

from tests.helpers import onnx_models
from tests.helpers.uploads import upload

A = {"name": "a", "datatype": "FP32", "shape": [2, 4], "data": [[1, 2, 3, 4], [5, 6, 7, 8]]}
B = {"name": "b", "datatype": "FP32", "shape": [2, 4], "data": [1, 1, 1, 1, 1, 1, 1, 1]}


@pytest.fixture(scope="module")
def adder(app, admin_key, tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "add.onnx"
    onnx_models.add_model(path)
    with closing(app.client(admin_key)) as c:
        assert upload(c, "sum2", path).status_code == 201
    return "sum2"


def test_health_and_server_metadata(app):
    assert app.client().get("/v2/health/live").json() == {"live": True}
    assert app.client().get("/v2/health/ready").status_code == 200
    meta = app.client().get("/v2").json()
    assert meta["name"] == "flashml" and "binary_tensor_data" in meta["extensions"]


def test_infer_json_nested_and_flat(api, adder):
    r = api.post(f"/v2/models/{adder}/infer", json={"id": "r1", "inputs": [A, B]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == "r1" and body["model_name"] == adder and body["model_version"] == "1"
    assert body["outputs"] == [{"name": "sum", "datatype": "FP32", "shape": [2, 4],
                                "data": [2, 3, 4, 5, 6, 7, 8, 9]}]
    assert r.headers["flashml-model-version"] == "1"


def test_model_metadata_and_ready(api, adder):
    meta = api.get(f"/v2/models/{adder}").json()
    assert meta["platform"] == "onnxruntime_onnx" and "1" in meta["versions"]
    assert meta["inputs"][0] == {"name": "a", "datatype": "FP32", "shape": [-1, 4]}
    assert api.get(f"/v2/models/{adder}/versions/1").status_code == 200
    assert api.get(f"/v2/models/{adder}/ready").json()["ready"] is True
    assert api.get(f"/v2/models/{adder}/versions/1/ready").status_code == 200


def test_newest_ready_version_answers_without_a_version(api, tmp_path):
    onnx_models.add_model(tmp_path / "a.onnx")
    onnx_models.add_model(tmp_path / "b.onnx")
    assert upload(api, "twover", tmp_path / "a.onnx").status_code == 201
    assert upload(api, "twover", tmp_path / "b.onnx").status_code == 201
    r = api.post("/v2/models/twover/infer", json={"inputs": [A, B]})
    assert r.json()["model_version"] == "2"
    r1 = api.post("/v2/models/twover/versions/1/infer", json={"inputs": [A, B]})
    assert r1.json()["model_version"] == "1"


@pytest.mark.parametrize("elem", [TensorProto.BOOL, TensorProto.UINT8, TensorProto.INT8, TensorProto.INT16,
                                  TensorProto.INT32, TensorProto.INT64, TensorProto.UINT16, TensorProto.UINT32,
                                  TensorProto.UINT64, TensorProto.FLOAT16, TensorProto.DOUBLE,
                                  TensorProto.BFLOAT16, TensorProto.STRING])
def test_every_datatype_round_trips_as_json(api, tmp_path, elem):
    from flashml.datatypes import BY_ONNX

    dt = BY_ONNX[elem]
    name = f"ident-{dt.v2.lower()}"
    onnx_models.identity_model(tmp_path / "m.onnx", elem)
    assert upload(api, name, tmp_path / "m.onnx").status_code == 201
    inp = api.get(f"/v2/models/{name}").json()["inputs"][0]
    data = {"BOOL": [True, False, True], "BYTES": ["a", "hé", ""], "FP16": [0.5, 1.5, -2.0],
            "FP64": [0.25, 1e300, -3.5]}.get(dt.v2, [0, 1, 7])
    r = api.post(f"/v2/models/{name}/infer", json={"inputs": [
        {"name": inp["name"], "datatype": dt.v2, "shape": [1, 3], "data": data}]})
    assert r.status_code == 200, r.text
    out = r.json()["outputs"][0]
    assert out["datatype"] == dt.v2 and out["shape"] == [1, 3] and out["data"] == data


def _post(app, key, path, **kw):
    return app.client().post(f"{path}", headers={"Authorization": f"Bearer {key}"} if key else {}, **kw)


def test_keys_401_and_403(app, admin_key, adder):
    body = {"inputs": [A, B]}
    r = _post(app, None, f"/v2/models/{adder}/infer", json=body)
    assert r.status_code == 401 and r.json()["error"]
    r = _post(app, "fml_0123456789ab_" + "x" * 43, f"/v2/models/{adder}/infer", json=body)
    assert r.status_code == 401 and r.json()["code"] == "invalid_key"
    other = app.create_key("only-other", "inference", ("some-other-model",))
    r = _post(app, other, f"/v2/models/{adder}/infer", json=body)
    assert r.status_code == 403 and r.json()["code"] == "model_not_allowed"
    mine = app.create_key("only-adder", "inference", (adder,))
    assert _post(app, mine, f"/v2/models/{adder}/infer", json=body).status_code == 200
    assert app.client().get("/api/v1/keys", headers={"Authorization": f"Bearer {mine}"}).status_code == 403


def test_revoked_key_stops_at_once(app, api, adder):
    created = api.post("/api/v1/keys", json={"name": "short-lived", "role": "inference"})
    assert created.status_code == 201
    token, ident = created.json()["token"], created.json()["id"]
    assert _post(app, token, f"/v2/models/{adder}/infer", json={"inputs": [A, B]}).status_code == 200
    revoked = api.delete(f"/api/v1/keys/{ident}")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    r = _post(app, token, f"/v2/models/{adder}/infer", json={"inputs": [A, B]})
    assert r.status_code == 401 and r.json()["code"] == "revoked_key"
    listed = {k["id"]: k for k in api.get("/api/v1/keys").json()}
    assert listed[ident]["last_used_at"] is not None or listed[ident]["revoked_at"]
    assert "token" not in listed[ident] and "secret_hash" not in listed[ident]


@pytest.mark.parametrize("path,status,code", [
    ("/v2/models/nope/infer", 404, "model_not_found"),
    ("/v2/models/sum2/versions/9/infer", 404, "version_not_found"),
    ("/v2/models/sum2/versions/latest/infer", 404, "version_not_found"),
])
def test_unknown_model_or_version_is_404(api, adder, path, status, code):
    r = api.post(path, json={"inputs": [A, B]})
    assert r.status_code == status and r.json()["code"] == code and r.json()["error"]


@pytest.mark.parametrize("body,code,mentions", [
    (b"{not json", "malformed_request", ""),
    ({"inputs": [A, {**B, "name": "c"}]}, "unknown_input", "c"),
    ({"inputs": [A]}, "missing_input", "b"),
    ({"inputs": [A, {**B, "datatype": "INT32"}]}, "tensor_datatype", "FP32"),
    ({"inputs": [A, {**B, "shape": [2, 5], "data": list(range(10))}]}, "tensor_shape", "b"),
    ({"inputs": [A, {**B, "shape": [2, 4], "data": [1, 2, 3]}]}, "tensor_element_count", "b"),
    ({"inputs": [A, B], "outputs": [{"name": "nope"}]}, "unknown_output", "nope"),
])
def test_bad_tensors_are_400_naming_the_tensor(api, adder, body, code, mentions):
    if isinstance(body, bytes):
        r = api.post(f"/v2/models/{adder}/infer", content=body, headers={"Content-Type": "application/json"})
    else:
        r = api.post(f"/v2/models/{adder}/infer", json=body)
    assert r.status_code == 400, r.text
    err = r.json()
    assert err["code"] == code and mentions in err["error"]


def test_management_reads(api, adder):
    model = api.get(f"/api/v1/models/{adder}").json()
    assert model["name"] == adder and model["versions"][0]["state"] == "ready"
    assert api.get(f"/api/v1/models/{adder}/versions").json()[0]["version"] == 1
    me = api.get("/api/v1/me").json()
    assert me["key"]["role"] == "admin"
    actions = [e["action"] for e in api.get("/api/v1/audit").json()]
    assert "version.upload" in actions and "key.create" in actions


def test_numbers_match_numpy(api, adder):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal((3, 4)).astype(np.float32)
    r = api.post(f"/v2/models/{adder}/infer", json={"inputs": [
        {"name": "a", "datatype": "FP32", "shape": [3, 4], "data": a.ravel().tolist()},
        {"name": "b", "datatype": "FP32", "shape": [3, 4], "data": b.ravel().tolist()}]})
    np.testing.assert_allclose(np.array(r.json()["outputs"][0]["data"]).reshape(3, 4), a + b, rtol=1e-6)
