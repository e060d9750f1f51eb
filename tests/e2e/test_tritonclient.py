"""NVIDIA's own client, unchanged, against FlashML: JSON and binary tensors."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from onnx import TensorProto
from tritonclient.utils import InferenceServerException

from tests.helpers import onnx_models
from tests.helpers.uploads import upload

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def models(server, admin_key, tmp_path_factory):
    d = tmp_path_factory.mktemp("tc")
    onnx_models.add_model(d / "add.onnx")
    onnx_models.identity_model(d / "text.onnx", TensorProto.STRING)
    onnx_models.identity_model(d / "half.onnx", TensorProto.FLOAT16)
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=60) as c:
        for name, f in (("tc-add", "add.onnx"), ("tc-text", "text.onnx"), ("tc-half", "half.onnx")):
            assert upload(c, name, d / f).status_code == 201


@pytest.fixture()
def client(server):
    c = triton.InferenceServerClient(url=server.url.removeprefix("http://"))
    yield c
    c.close()


def _inputs(binary: bool):
    a = np.arange(8, dtype=np.float32).reshape(2, 4)
    b = np.full((2, 4), 0.5, dtype=np.float32)
    ins = [triton.InferInput("a", [2, 4], "FP32"), triton.InferInput("b", [2, 4], "FP32")]
    ins[0].set_data_from_numpy(a, binary_data=binary)
    ins[1].set_data_from_numpy(b, binary_data=binary)
    return ins, a + b


@pytest.mark.parametrize("binary", [True, False])
def test_tritonclient_infer(client, models, admin_key, binary):
    headers = {"Authorization": f"Bearer {admin_key}"}
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("tc-add", headers=headers)
    meta = client.get_model_metadata("tc-add", headers=headers)
    assert meta["inputs"][0]["name"] == "a"
    ins, expected = _inputs(binary)
    outs = [triton.InferRequestedOutput("sum", binary_data=binary)]
    result = client.infer("tc-add", ins, outputs=outs, headers=headers, request_id="42")
    np.testing.assert_array_equal(result.as_numpy("sum"), expected)
    assert result.get_response()["model_version"] == "1"


@pytest.mark.parametrize("binary", [True, False])
def test_tritonclient_bytes_and_fp16(client, models, admin_key, binary):
    headers = {"Authorization": f"Bearer {admin_key}"}
    text = np.array([[b"alpha", b"\xce\xb2eta", b""]], dtype=object)
    inp = triton.InferInput("x", [1, 3], "BYTES")
    inp.set_data_from_numpy(text, binary_data=binary)
    out = client.infer("tc-text", [inp], headers=headers,
                       outputs=[triton.InferRequestedOutput("y", binary_data=binary)]).as_numpy("y")
    # Binary BYTES come back as bytes; JSON has only text, so tritonclient gives str (as with Triton itself).
    expected = text if binary else np.vectorize(lambda b: b.decode())(text)
    assert out.tolist() == expected.tolist()
    half = np.array([[0.5, -1.25, 3.0]], dtype=np.float16)
    inp = triton.InferInput("x", [1, 3], "FP16")
    inp.set_data_from_numpy(half, binary_data=binary)
    out = client.infer("tc-half", [inp], headers=headers,
                       outputs=[triton.InferRequestedOutput("y", binary_data=binary)]).as_numpy("y")
    np.testing.assert_array_equal(out, half)


def test_tritonclient_sees_errors(client, models, admin_key):
    ins, _ = _inputs(True)
    with pytest.raises(InferenceServerException) as err:
        client.infer("tc-add", ins)  # no key
    assert "API key" in str(err.value)
    with pytest.raises(InferenceServerException) as err:
        client.infer("no-such-model", ins, headers={"Authorization": f"Bearer {admin_key}"})
    assert "no-such-model" in str(err.value)


def test_tritonclient_reads_the_model_config(server, client, models, admin_key):
    headers = {"Authorization": f"Bearer {admin_key}"}
    assert "model_configuration" in client.get_server_metadata()["extensions"]
    httpx.patch(f"{server.url}/api/v1/models/tc-add/versions/1/config", headers=headers,
                json={"max_batch_size": 8, "preferred_batch_sizes": [4], "max_queue_delay_us": 100}).raise_for_status()
    config = client.get_model_config("tc-add", headers=headers)
    assert config["name"] == "tc-add" and config["platform"] == "onnxruntime_onnx" and config["max_batch_size"] == 8
    assert [(t["name"], t["data_type"], t["dims"]) for t in config["input"]] == [("a", "TYPE_FP32", [4]),
                                                                                ("b", "TYPE_FP32", [4])]
    assert config["dynamic_batching"]["preferred_batch_size"] == [4]
    assert config["dynamic_batching"]["max_queue_delay_microseconds"] == 100
    assert client.get_model_config("tc-add", model_version="1", headers=headers) == config
    assert client.get_model_config("tc-text", headers=headers)["input"][0]["data_type"] == "TYPE_STRING"
    with pytest.raises(InferenceServerException):
        client.get_model_config("tc-add")  # no key
    with pytest.raises(InferenceServerException) as err:
        client.get_model_config("no-such-model", headers=headers)
    assert "no-such-model" in str(err.value)


def test_tritonclient_reads_inference_statistics(server, client, models, admin_key):
    headers = {"Authorization": f"Bearer {admin_key}"}
    assert "statistics" in client.get_server_metadata()["extensions"]
    before = client.get_inference_statistics("tc-add", headers=headers)["model_stats"][0]
    ins, _ = _inputs(True)
    for _ in range(3):
        client.infer("tc-add", ins, headers=headers)
    stats = client.get_inference_statistics("tc-add", headers=headers)["model_stats"]
    assert [(s["name"], s["version"]) for s in stats] == [("tc-add", "1")]
    after = stats[0]
    success, queue, infer = (after["inference_stats"][k] for k in ("success", "queue", "compute_infer"))
    assert success["count"] == before["inference_stats"]["success"]["count"] + 3
    assert after["inference_count"] == before["inference_count"] + 6  # 2 rows per request
    assert queue["count"] == infer["count"] == success["count"] and success["ns"] >= infer["ns"] > 0
    assert sum(b["compute_infer"]["count"] for b in after["batch_stats"]) == after["execution_count"]
    assert after["last_inference"] > 0
    assert client.get_inference_statistics("tc-add", "1", headers=headers)["model_stats"][0]["version"] == "1"
    every = {s["name"] for s in client.get_inference_statistics(headers=headers)["model_stats"]}
    assert {"tc-add", "tc-text", "tc-half"} <= every
    with pytest.raises(InferenceServerException):
        client.get_inference_statistics("tc-add")  # no key
    with pytest.raises(InferenceServerException) as err:
        client.get_inference_statistics("no-such-model", headers=headers)
    assert "no-such-model" in str(err.value)
    # A key limited to one model sees only that model's statistics.
    only = httpx.post(f"{server.url}/api/v1/keys", headers={"Authorization": f"Bearer {admin_key}"},
                      json={"name": "tc-stats", "role": "inference", "models": ["tc-text"]}).json()["token"]
    seen = client.get_inference_statistics(headers={"Authorization": f"Bearer {only}"})["model_stats"]
    assert {s["name"] for s in seen} == {"tc-text"}
