"""Result and dataset formats of batch jobs over real HTTP: .npy structured results, Parquet in and out.

Every answer is checked against the same model run directly with onnxruntime in the test.
"""

from __future__ import annotations

import io

import httpx
import numpy as np
import onnxruntime as ort
import pytest

from tests import onnx_models
from tests.test_e2e_jobs import push, run_job
from tests.test_e2e_upload import upload

pytestmark = pytest.mark.server
MODEL = "jobtwohead"


@pytest.fixture(scope="module")
def two_head(server, admin_key, tmp_path_factory) -> tuple[str, ort.InferenceSession]:
    path = onnx_models.two_head_model(tmp_path_factory.mktemp("formats") / "two.onnx")
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=120) as api:
        assert upload(api, MODEL, path).status_code == 201
    return MODEL, ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def rows(n: int) -> np.ndarray:
    return (np.arange(n * 4, dtype=np.float32).reshape(n, 4) % 7) - 3


def test_npy_result_is_one_structured_array_with_every_row_once(api, two_head):
    model, session = two_head
    x = rows(23)
    buf = io.BytesIO()
    np.save(buf, x)
    ds = push(api, "x.npy", buf.getvalue()).json()
    job = run_job(api, model=model, dataset=ds["id"], chunk_rows=5, output_format="npy")
    assert job["state"] == "succeeded", job
    r = api.get(job["result_url"])
    assert r.status_code == 200 and r.headers["content-disposition"].endswith('.npy"')
    result = np.load(io.BytesIO(r.content), allow_pickle=False)
    assert result.dtype.names == ("row_id", "scores", "top")
    assert result.dtype["row_id"] == np.int64 and result.dtype["scores"].shape == (10,)
    assert result.shape == (23,) and result["row_id"].tolist() == list(range(23))
    scores, top = session.run(["scores", "top"], {"x": x})
    np.testing.assert_allclose(result["scores"], scores, rtol=1e-6)
    assert result["top"].tolist() == top.tolist()


def test_npy_result_skips_bad_rows_and_keeps_the_rest(api, two_head):
    model, session = two_head
    lines = [f'{{"x": {rows(1)[0].tolist()}}}' if i not in (2, 3, 4, 9) else '{"x": "no"}' for i in range(12)]
    ds = push(api, "x.jsonl", ("\n".join(lines) + "\n").encode()).json()
    job = run_job(api, model=model, dataset=ds["id"], chunk_rows=3, output_format="npy")  # chunk 1 is all bad
    assert job["state"] == "succeeded" and job["rows_bad"] == 4, job
    result = np.load(io.BytesIO(api.get(job["result_url"]).content), allow_pickle=False)
    assert result["row_id"].tolist() == [0, 1, 5, 6, 7, 8, 10, 11]
    scores, _ = session.run(None, {"x": np.repeat(rows(1), 8, axis=0)})
    np.testing.assert_allclose(result["scores"], scores, rtol=1e-6)


def test_string_outputs_refused_for_npy_with_a_clear_400(api, tmp_path):
    path = onnx_models.identity_model(tmp_path / "s.onnx", onnx_models.TensorProto.STRING, ("batch",))
    assert upload(api, "jobstrings", path).status_code == 201
    ds = push(api, "x.jsonl", b'{"x": "a"}\n{"x": "b"}\n').json()
    r = api.post("/api/v1/jobs", json={"model": "jobstrings", "dataset": ds["id"], "output_format": "npy"})
    assert r.status_code == 400 and r.json()["code"] == "bad_output_format" and "'y'" in r.json()["error"]
