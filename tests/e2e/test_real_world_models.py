"""A corpus of patterns real exports have, each built in code, uploaded to the real server and answered over V2
(tritonclient, binary tensors) as ONNX Runtime answers in-process (issue 21, item 5)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnxruntime as ort
import pytest

from tests.helpers import real_world_models as rw
from tests.helpers.uploads import upload

pytestmark = pytest.mark.server
RNG = np.random.default_rng(11)


def _text_feeds():
    ids = RNG.integers(0, 100, (2, 7)).astype(np.int64)
    mask = np.ones((2, 7), np.int64)
    mask[1, 5:] = 0
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros((2, 7), np.int64)}


CORPUS = {
    "pyramid": (rw.pyramid_detector, lambda: {"x": RNG.standard_normal([1, 3, 96, 64]).astype(np.float32)}),
    "text": (rw.text_classifier, _text_feeds),
    "expand": (rw.expand_by_shape, lambda: {"x": RNG.standard_normal([3, 1]).astype(np.float32),
                                           "shape": np.array([3, 4], np.int64)}),
    "reshape": (rw.reshape_by_shape, lambda: {"x": RNG.standard_normal([2, 6]).astype(np.float32),
                                             "shape": np.array([2, 3, 2], np.int64)}),
    "fp16": (rw.half_precision, lambda: {"x": RNG.standard_normal([3, 4]).astype(np.float16)}),
    "qdq": (rw.qdq_int8, lambda: {"x": RNG.standard_normal([3, 4]).astype(np.float32)}),
    "trees": (rw.tree_ensemble, lambda: {"x": np.array([[0.2, -1], [0.2, 1], [0.9, 0]], np.float32)}),
    "nms": (rw.suppressed_boxes, lambda: {"boxes": RNG.uniform(0, 1, [1, 10, 4]).astype(np.float32),
                                          "scores": RNG.uniform(0, 1, [1, 1, 10]).astype(np.float32)}),
    "optional": (rw.optional_input, lambda: {"x": RNG.standard_normal([2, 3]).astype(np.float32)}),
    "audio": (rw.reflect_padded_audio, lambda: {"audio": RNG.standard_normal([1, 500]).astype(np.float32),
                                                "state": RNG.standard_normal([2, 1, 8]).astype(np.float32),
                                                "gain": np.array(0.5, np.float32)}),
}


def _infer(client, key: str, model: str, feeds: dict[str, np.ndarray], outputs: list[str]) -> dict:
    import tritonclient.http as triton
    from tritonclient.utils import np_to_triton_dtype

    items = []
    for name, arr in feeds.items():
        item = triton.InferInput(name, list(arr.shape), np_to_triton_dtype(arr.dtype))
        item.set_data_from_numpy(arr, binary_data=True)
        items.append(item)
    result = client.infer(model, items, headers={"Authorization": f"Bearer {key}"})
    return {o: result.as_numpy(o) for o in outputs}


@pytest.fixture(scope="module")
def triton_client(server):
    import tritonclient.http as triton

    return triton.InferenceServerClient(server.url.removeprefix("http://"), connection_timeout=60,
                                        network_timeout=60, concurrency=4)


@pytest.mark.parametrize("kind", sorted(CORPUS))
def test_a_real_world_pattern_uploads_and_answers_as_onnx_runtime_does(kind, api, admin_key, triton_client,
                                                                         tmp_path):
    build, make_feeds = CORPUS[kind]
    path = build(tmp_path / f"{kind}.onnx")
    created = upload(api, f"rw-{kind}", path)
    assert created.status_code == 201, created.text
    version = created.json()
    assert version["state"] == "ready", version
    if kind == "reshape":  # ones cannot be reshaped into six a row: published with a warning, batching off
        assert len(version["warnings"]) == 1 and version["config"]["max_batch_size"] == 0
    else:
        assert version["warnings"] == [], version["warnings"]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    outputs = [o.name for o in session.get_outputs()]
    feeds = make_feeds()
    expected = dict(zip(outputs, session.run(outputs, feeds), strict=True))
    got = _infer(triton_client, admin_key, f"rw-{kind}", feeds, outputs)
    for name in outputs:
        assert got[name].dtype == expected[name].dtype, name
        np.testing.assert_allclose(got[name], expected[name], rtol=2e-3, atol=1e-5, err_msg=f"{kind}.{name}")


def test_an_output_without_a_batch_axis_is_served_unbatched(server, api, admin_key, tmp_path):
    """NMS results [kept, 3] cannot be split back per request: requests arriving together must not be merged."""
    import httpx

    path = rw.suppressed_boxes(tmp_path / "nms.onnx")
    created = upload(api, "rw-nms-unbatched", path).json()
    assert created["state"] == "ready" and created["signature"]["unbatched"] is True, created
    assert created["config"]["max_batch_size"] == 0
    refused = api.patch("/api/v1/models/rw-nms-unbatched/versions/1/config", json={"max_batch_size": 8})
    assert refused.status_code == 400 and "without one" in refused.json()["error"]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    requests = [{"boxes": RNG.uniform(0, 1, [1, 10, 4]).astype(np.float32),
                 "scores": RNG.uniform(0, 1, [1, 1, 10]).astype(np.float32)} for _ in range(12)]

    def call(feeds):
        body = {"inputs": [{"name": k, "datatype": "FP32", "shape": list(v.shape), "data": v.ravel().tolist()}
                           for k, v in feeds.items()]}
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {admin_key}"}) as client:
            out = client.post("/v2/models/rw-nms-unbatched/infer", json=body, timeout=60).json()["outputs"][0]
        return np.asarray(out["data"], np.int64).reshape(out["shape"])

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(call, requests))
    for feeds, answer in zip(requests, answers, strict=True):
        np.testing.assert_array_equal(answer, session.run(["kept"], feeds)[0])
