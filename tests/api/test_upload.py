"""Upload in process: a model becomes a ready version, and every bad upload is refused cleanly."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from tests.helpers import onnx_models
from tests.helpers.uploads import leftovers, tar_bundle, upload, zip_bundle


def test_upload_onnx_creates_model_and_ready_version(api, app, tmp_path):
    onnx_models.add_model(tmp_path / "add.onnx")
    r = upload(api, "adder", tmp_path / "add.onnx", "add.onnx")
    assert r.status_code == 201, r.text
    v = r.json()
    assert (v["model"], v["version"], v["state"]) == ("adder", 1, "ready")
    assert r.headers["location"] == "/api/v1/models/adder/versions/1"
    assert [t["name"] for t in v["signature"]["inputs"]] == ["a", "b"]
    assert v["signature"]["inputs"][0] == {"name": "a", "datatype": "FP32", "shape": [-1, 4],
                                           "dim_names": ["batch", None]}
    assert v["loaded"] and v["source_name"] == "add.onnx" and len(v["sha256"]) == 64
    assert (app.data_dir / "models" / "adder" / "v1" / "model.onnx").is_file()
    r2 = upload(api, "adder", tmp_path / "add.onnx")
    assert r2.status_code == 201 and r2.json()["version"] == 2
    listed = api.get("/api/v1/models").json()
    adder = next(m for m in listed if m["name"] == "adder")
    assert {"version": 2, "state": "ready", "warnings": 0} in adder["versions"]  # warnings: how many it has
    assert leftovers(app.data_dir) == []


def test_bundle_with_manifest_and_external_data(api, app, tmp_path):
    d = tmp_path / "ext"
    d.mkdir()
    onnx_models.external_data_model(d)
    members = {p.name: p.read_bytes() for p in d.iterdir()}
    members["flashml.toml"] = b'task = "raw"\nlabels = ["x", "y"]\n[batching]\nmax_batch_size = 8\n'
    for kind, body in (("tar.gz", tar_bundle(members)), ("zip", zip_bundle(members))):
        r = upload(api, f"ext-{kind.replace('.', '')}", body, f"bundle.{kind}")
        assert r.status_code == 201, r.text
        v = r.json()
        assert v["manifest"]["labels"] == ["x", "y"]
        vdir = app.data_dir / "models" / f"ext-{kind.replace('.', '')}" / "v1"
        assert (vdir / "weights.bin").is_file() and (vdir / "model.onnx").is_file()


def _symlink(tar):
    info = tarfile.TarInfo("evil-link")
    info.type = tarfile.SYMTYPE
    info.linkname = "/etc/passwd"
    tar.addfile(info)


def _hardlink(tar):
    info = tarfile.TarInfo("evil-hard")
    info.type = tarfile.LNKTYPE
    info.linkname = "model.onnx"
    tar.addfile(info)


def _bad_uploads(tmp_path: Path) -> list[tuple[str, bytes, str]]:
    onnx_models.add_model(tmp_path / "ok.onnx")
    good = (tmp_path / "ok.onnx").read_bytes()
    onnx_models.custom_domain_model(tmp_path / "custom.onnx")
    ext = tmp_path / "ext"
    ext.mkdir()
    onnx_models.external_data_model(ext)
    outside = tmp_path / "outside"
    outside.mkdir()
    onnx_models.external_data_model(outside, location="../weights.bin")
    many = {f"f{i}.txt": b"x" for i in range(1100)} | {"model.onnx": good}
    return [
        ("not_onnx", b"this is plainly a text file, not a model\n" * 20, "not_onnx"),
        ("corrupt", good[: len(good) // 2], "corrupt_onnx"),
        ("dotdot", tar_bundle({"model.onnx": good, "../escape.txt": b"x"}), "unsafe_path"),
        ("absolute", tar_bundle({"model.onnx": good, "/tmp/abs.txt": b"x"}), "unsafe_path"),
        ("zip-dotdot", zip_bundle({"model.onnx": good, "../../escape.txt": b"x"}), "unsafe_path"),
        ("symlink", tar_bundle({"model.onnx": good}, _symlink), "link_in_bundle"),
        ("hardlink", tar_bundle({"model.onnx": good}, _hardlink), "link_in_bundle"),
        ("many", tar_bundle(many), "too_many_members"),
        ("bomb", zip_bundle({"model.onnx": good, "zeros.bin": b"\0" * (64 * 1024 * 1024)}), "compression_ratio"),
        ("no-model", tar_bundle({"readme.txt": b"hello"}), "missing_model"),
        ("ext-outside", (outside / "model.onnx").read_bytes(), "unsafe_external_data"),
        ("ext-missing", (ext / "model.onnx").read_bytes(), "missing_external_data"),
        ("custom-op", (tmp_path / "custom.onnx").read_bytes(), "custom_op_domain"),
        ("bad-manifest", tar_bundle({"model.onnx": good, "flashml.toml": b"task = 'juggling'\n"}), "bad_manifest"),
        ("bad-device", tar_bundle({"model.onnx": good, "flashml.toml": b"[batching]\ndevice = 'cuda:x'\n"}),
         "bad_batching_config"),
        ("bad-padding", tar_bundle({"model.onnx": good, "flashml.toml":
                                    b"[batching.padded_inputs]\nnope = {axis = 1, value = 0}\n"}),
         "bad_batching_config"),
    ]


def test_bad_uploads_are_refused_and_leave_nothing(api, app, tmp_path):
    for name, body, code in _bad_uploads(tmp_path):
        r = upload(api, f"bad-{name}", body)
        assert r.status_code == 422, (name, r.text)
        err = r.json()
        assert err["code"] == code, (name, err)
        assert err["error"] and err["details"]["version"]["state"] == "failed"
        v = api.get(f"/api/v1/models/bad-{name}/versions/1").json()
        assert v["state"] == "failed" and v["errors"][0]["code"] == code
        assert not (app.data_dir / "models" / f"bad-{name}").exists(), name
        assert leftovers(app.data_dir) == [], name
        assert not list(Path("/tmp").glob("abs.txt"))
    assert not (app.data_dir.parent / "escape.txt").exists()


@pytest.mark.parametrize("app", ["sqlite"], indirect=True)  # the probe's limits, not a query: 20 s on one engine
@pytest.mark.parametrize("builder,code", [("hang_model", "validation_timeout"),
                                          ("memory_bomb_model", "validation_memory")])
def test_model_that_hangs_or_eats_memory_is_killed_and_server_keeps_serving(api, app, tmp_path, builder,
                                                                            code):
    onnx_models.add_model(tmp_path / "ok.onnx")
    assert upload(api, "survivor", tmp_path / "ok.onnx").status_code == 201
    getattr(onnx_models, builder)(tmp_path / "bad.onnx")
    r = upload(api, f"bad-{builder}", tmp_path / "bad.onnx")
    assert r.status_code == 422, r.text
    assert r.json()["code"] == code
    infer = api.post("/v2/models/survivor/infer", json={"inputs": [
        {"name": "a", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]},
        {"name": "b", "datatype": "FP32", "shape": [1, 4], "data": [1, 1, 1, 1]}]})
    assert infer.status_code == 200 and infer.json()["outputs"][0]["data"] == [2, 3, 4, 5]
    assert leftovers(app.data_dir) == []


@pytest.mark.parametrize("name", ["../etc", "a/b", ".hidden", "x" * 200, "stats"])
def test_bad_model_names_are_400(api, name, tmp_path):
    onnx_models.add_model(tmp_path / "ok.onnx")
    r = upload(api, name, tmp_path / "ok.onnx")
    assert r.status_code in (400, 404), r.text  # a slash never reaches the handler: 404 from routing
    assert "code" in r.json()
    if name == "stats":  # /v2/models/stats is Triton's statistics route
        assert r.json()["code"] == "bad_model_name" and "statistics route" in r.json()["error"]


def test_empty_upload_is_400(api, app):
    r = upload(api, "empty", b"")
    assert r.status_code == 400 and r.json()["code"] == "empty_upload"
    assert api.get("/api/v1/models/empty").status_code == 404


def test_upload_needs_an_admin_key(app, admin_key, tmp_path):
    onnx_models.add_model(tmp_path / "ok.onnx")
    body = (tmp_path / "ok.onnx").read_bytes()
    anon = app.client().post("/api/v1/models/anon/versions", content=body)
    assert anon.status_code == 401 and anon.json()["code"] == "missing_key"
    inference = app.create_key("inf-only", "inference")
    r = app.client().post("/api/v1/models/anon/versions", content=body,
                   headers={"Authorization": f"Bearer {inference}"})
    assert r.status_code == 403 and r.json()["code"] == "role_forbidden"
