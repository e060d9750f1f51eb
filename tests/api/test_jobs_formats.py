"""Result and dataset formats of batch jobs in process: .npy structured results, Parquet in and out.

Every answer is checked against the same model run directly with onnxruntime in the test.
"""

from __future__ import annotations

import io
from contextlib import closing

import numpy as np
import onnxruntime as ort
import pytest

from tests.helpers import onnx_models
from tests.helpers.jobs import push, run_job
from tests.helpers.uploads import upload

MODEL = "jobtwohead"


@pytest.fixture(scope="module")
def two_head(app, admin_key, tmp_path_factory) -> tuple[str, ort.InferenceSession]:
    path = onnx_models.two_head_model(tmp_path_factory.mktemp("formats") / "two.onnx")
    with closing(app.client(admin_key)) as api:
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


def parquet_bytes(table, **kwargs) -> bytes:
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(table, buf, **kwargs)
    return buf.getvalue()


def test_parquet_dataset_with_list_columns_and_parquet_result(api, two_head):
    import pyarrow as pa
    import pyarrow.parquet as pq

    model, session = two_head
    x = rows(40)
    table = pa.table({"id": pa.array(range(40)), "x": pa.array(x.tolist(), pa.list_(pa.float32()))})
    ds = push(api, "x.parquet", parquet_bytes(table, row_group_size=7)).json()
    assert ds["format"] == "parquet" and ds["rows"] == 40
    assert {c["name"]: c["type"] for c in ds["columns"]} == {"id": "int64", "x": "list<element: float>"}
    job = run_job(api, model=model, dataset=ds["id"], chunk_rows=5, output_format="parquet")  # chunks span groups
    assert job["state"] == "succeeded" and job["rows_done"] == 40, job
    r = api.get(job["result_url"])
    assert r.headers["content-type"].startswith("application/vnd.apache.parquet")
    result = pq.ParquetFile(io.BytesIO(r.content))
    assert result.num_row_groups == 8  # one per chunk: the file was assembled chunk by chunk
    out = result.read()
    assert out.column_names == ["row_id", "scores", "top"] and out.schema.field("row_id").type == pa.int64()
    assert pa.types.is_list(out.schema.field("scores").type)
    assert out.column("row_id").to_pylist() == list(range(40))
    scores, top = session.run(None, {"x": x})
    np.testing.assert_allclose(np.array(out.column("scores").to_pylist(), np.float32), scores, rtol=1e-6)
    assert out.column("top").to_pylist() == top.tolist()


def test_parquet_fixed_size_lists_nulls_as_bad_rows_and_npy_result(api, two_head):
    import pyarrow as pa

    model, session = two_head
    x = rows(12)
    values = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), 4)
    mask = pa.array([i in (3, 8) for i in range(12)])
    column = pa.FixedSizeListArray.from_arrays(values.flatten(), 4, mask=mask)
    ds = push(api, "fixed.parquet", parquet_bytes(pa.table({"x": column}), row_group_size=5)).json()
    assert ds["columns"][0]["shape"] == [-1, 4] and ds["columns"][0]["dtype"] == "float32"
    job = run_job(api, model=model, dataset=ds["id"], chunk_rows=4, output_format="npy")
    assert job["state"] == "succeeded" and job["rows_bad"] == 2, job
    log = api.get(f"/api/v1/jobs/{job['id']}/log").json()
    assert sorted(e["row"] for e in log if e["row"] is not None) == [3, 8]
    result = np.load(io.BytesIO(api.get(job["result_url"]).content), allow_pickle=False)
    keep = [i for i in range(12) if i not in (3, 8)]
    assert result["row_id"].tolist() == keep
    np.testing.assert_allclose(result["scores"], session.run(["scores"], {"x": x[keep]})[0], rtol=1e-6)


def test_parquet_refusals_are_clear_400s(api, two_head):
    import pyarrow as pa

    model, _ = two_head
    bad = push(api, "broken.parquet", b"PAR1 this is not parquet PAR1")
    assert bad.status_code == 400 and bad.json()["code"] == "bad_dataset" and "Parquet" in bad.json()["error"]
    cut = push(api, "cut.parquet", parquet_bytes(pa.table({"x": pa.array([1.0, 2.0])}))[:-20])
    assert cut.status_code == 400 and cut.json()["code"] == "bad_dataset"
    assert api.get("/api/v1/datasets").json()  # nothing half-written: the refused ones are not listed
    assert "broken.parquet" not in [d["name"] for d in api.get("/api/v1/datasets").json()]
    words = push(api, "words.parquet", parquet_bytes(pa.table({"x": pa.array([["a"] * 4, ["b"] * 4])}))).json()
    r = api.post("/api/v1/jobs", json={"model": model, "dataset": words["id"]})
    assert r.status_code == 400 and r.json()["code"] == "mapping_mismatch" and "string" in r.json()["error"], r.text
    flat = push(api, "flat.parquet", parquet_bytes(pa.table({"x": pa.array([1.0, 2.0])}))).json()
    r = api.post("/api/v1/jobs", json={"model": model, "dataset": flat["id"]})
    assert r.status_code == 400 and r.json()["code"] == "mapping_mismatch" and "shape" in r.json()["error"]
