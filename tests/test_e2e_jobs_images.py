"""Zip-of-images datasets over real HTTP: unsafe zips refused with clear 400s, nothing kept of them."""

from __future__ import annotations

import io
import zipfile

import httpx
import pytest

from tests import onnx_models
from tests.conftest import SERVER_FLAGS
from tests.server_process import ServerProcess
from tests.test_e2e_jobs import push

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
