"""Zip-of-images datasets over real HTTP: unsafe zips refused with clear 400s (nothing kept of them), and jobs
that score each image with an image task model exactly as the predict endpoint answers it."""

from __future__ import annotations

import csv
import io
import json
import zipfile

import httpx
import pytest

from tests.helpers import onnx_models
from tests.helpers.jobs import push
from tests.helpers.server_process import SERVER_FLAGS, ServerProcess

pytestmark = pytest.mark.server
MAX_FILES, MAX_BYTES = 5, 4_000_000


@pytest.fixture(scope="module")
def small_limits(tmp_path_factory):
    srv = ServerProcess(tmp_path_factory.mktemp("zips") / "data", *SERVER_FLAGS, "--dataset-zip-max-files",
                        str(MAX_FILES), "--dataset-zip-max-bytes", str(MAX_BYTES)).start()
    key = srv.create_key("zips", "admin")
    with httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {key}"}, timeout=120) as api:
        yield api
    srv.stop()


def zip_of(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return buf.getvalue()


def refused(api: httpx.Client, name: str, data: bytes, code: str) -> dict:
    r = push(api, name, data)
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["code"] == code, body
    assert name not in [d["name"] for d in api.get("/api/v1/datasets").json()]
    return body


def test_unsafe_zips_are_refused_with_clear_400s(small_limits, tmp_path):
    api = small_limits
    assert "../" in refused(api, "out.zip", zip_of({"a.png": b"x", "../../etc/evil.png": b"x"}),
                            "unsafe_zip_member")["details"]["member"]
    refused(api, "abs.zip", zip_of({"/etc/evil.png": b"x"}), "unsafe_zip_member")
    refused(api, "back.zip", zip_of({"..\\evil.png": b"x"}), "unsafe_zip_member")
    link = onnx_models.zip_with_symlink(tmp_path / "link.zip", "cat.png").read_bytes()
    refused(api, "link.zip", link, "unsafe_zip_member")
    many = refused(api, "many.zip", zip_of({f"{i}.png": b"x" for i in range(MAX_FILES + 1)}), "too_many_files")
    assert "dataset_zip_max_files" in many["error"]
    bomb = onnx_models.zip_bomb(tmp_path / "bomb.zip", 8 << 20).read_bytes()
    assert len(bomb) < 100_000
    big = refused(api, "bomb.zip", bomb, "zip_too_large")
    assert "dataset_zip_max_bytes" in big["error"] and "zip bomb" in big["error"]
    refused(api, "dup.zip", zip_of({"a.png": b"x", "./a.png": b"y"}), "duplicate_zip_member")
    refused(api, "none.zip", zip_of({"folder/": b"", "__MACOSX/._a.png": b"x"}), "bad_dataset")
    refused(api, "fake.zip", b"PK\x03\x04 not really a zip", "bad_dataset")


def test_a_safe_zip_is_a_dataset_of_one_row_per_image(small_limits):
    api = small_limits
    r = push(api, "pics.zip", zip_of({"a/cat.png": b"1", "dog.png": b"2", "a/": b"", ".DS_Store": b"x"}))
    assert r.status_code == 201, r.text
    ds = r.json()
    assert ds["format"] == "images" and ds["rows"] == 2 and ds["columns"] == [{"name": "image", "kind": "images"}]


# ---- scoring zips of images with image task models (issue 6's task models) ---------------------------

def image_models(api: httpx.Client, folder) -> None:
    from tests.helpers import task_models as tm
    from tests.helpers.tasks import BSC_TOML, CLS_TOML
    from tests.helpers.uploads import upload

    for name, path in {
        "zcls": tm.bundle(folder / "cls.tar.gz", CLS_TOML, tm.image_classifier(folder / "c.onnx",
                                                                                labels=["red", "green", "blue"])),
        "zbsc": tm.bundle(folder / "bsc.tar.gz", BSC_TOML, tm.bsc_detector(folder / "b.onnx")),
    }.items():
        r = upload(api, name, path, filename="bundle.tar.gz")
        assert r.status_code == 201, r.text


def test_zip_of_pngs_scored_per_image_like_predict(small_limits, tmp_path):
    from tests.helpers.jobs import run_job
    from tests.helpers.tasks import png, ref_classify

    api = small_limits
    image_models(api, tmp_path)
    images = {"cats/one.png": png(40, 30, 1), "two.png": png(17, 50, 2), "broken.png": b"not a png",
              "cats/three.png": png(64, 64, 3)}
    ds = push(api, "pics.zip", zip_of(images)).json()
    assert ds["rows"] == 4
    job = run_job(api, model="zcls", dataset=ds["id"], chunk_rows=2, output_format="jsonl")
    assert job["state"] == "succeeded" and job["rows_done"] == 4 and job["rows_bad"] == 1, job
    out = [json.loads(line) for line in api.get(job["result_url"]).text.splitlines()]
    assert [o["row_id"] for o in out] == ["cats/one.png", "two.png", "cats/three.png"]
    log = [e for e in api.get(f"/api/v1/jobs/{job['id']}/log").json() if e["row"] is not None]
    assert [e["row"] for e in log] == [2] and "broken.png" in log[0]["message"]
    for o in out:
        want = ref_classify(images[o["row_id"]])
        assert [p["label"] for p in o["prediction"]] == [["red", "green", "blue"][i] for i, _ in want]
        assert [p["score"] for p in o["prediction"]] == pytest.approx([s for _, s in want], abs=1e-5)
        online = api.post("/v1/models/zcls/predict", content=images[o["row_id"]],
                          headers={"Content-Type": "image/png"}).json()["predictions"][0]
        assert o["prediction"] == online  # the predict endpoint's own processing, not a copy

    job = run_job(api, model="zbsc", dataset=ds["id"], chunk_rows=3, output_format="csv")
    assert job["state"] == "succeeded" and job["rows_bad"] == 1, job
    rows = list(csv.DictReader(io.StringIO(api.get(job["result_url"]).text)))
    assert [r["row_id"] for r in rows] == ["cats/one.png", "two.png", "cats/three.png"]
    for r in rows:
        online = api.post("/v1/models/zbsc/predict", content=images[r["row_id"]],
                          headers={"Content-Type": "image/png"}).json()["predictions"][0]
        assert json.loads(r["prediction"]) == online and all("box" in d for d in online)


def test_zip_jobs_refused_for_models_and_formats_that_do_not_fit(small_limits, tmp_path):
    from tests.helpers.tasks import png
    from tests.helpers.uploads import upload

    api = small_limits
    if api.get("/api/v1/models/zcls").status_code != 200:
        image_models(api, tmp_path)
    assert upload(api, "zadd", onnx_models.add_model(tmp_path / "add.onnx")).status_code == 201
    ds = push(api, "one.zip", zip_of({"a.png": png(8, 8, 0)})).json()
    r = api.post("/api/v1/jobs", json={"model": "zadd", "dataset": ds["id"]})
    assert r.status_code == 400 and r.json()["code"] == "not_an_image_model" and "raw" in r.json()["error"]
    r = api.post("/api/v1/jobs", json={"model": "zcls", "dataset": ds["id"], "output_format": "parquet"})
    assert r.status_code == 400 and r.json()["code"] == "bad_output_format"
    r = api.post("/api/v1/jobs", json={"model": "zcls", "dataset": ds["id"], "mapping": {"images": "image"}})
    assert r.status_code == 400 and r.json()["code"] == "bad_mapping"
