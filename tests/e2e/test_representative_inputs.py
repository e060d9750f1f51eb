"""Valid models that a warm-up of ones refused are published and answer over V2 (issue 21, items 1 and 3).

Made-up inputs come from one module (flashml.runtime.samples): sizes are tried in turn until one runs, and the
size that ran is what auto-tune and the warm-ups use. Where no guess runs, the version is published with a
warning and batching off, and real requests still answer.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from tests.helpers import real_world_models
from tests.helpers.uploads import upload

pytestmark = pytest.mark.server


def _infer(api, model: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    body = {"inputs": [{"name": k, "datatype": "FP32", "shape": list(v.shape), "data": v.ravel().tolist()}
                       for k, v in feeds.items()]}
    answer = api.post(f"/v2/models/{model}/infer", json=body)
    assert answer.status_code == 200, answer.text
    return {o["name"]: np.asarray(o["data"], np.float32).reshape(o["shape"]) for o in answer.json()["outputs"]}


def test_a_pyramid_detector_needing_multiples_of_32_is_published_and_tuned_at_a_shape_that_runs(api, tmp_path):
    path = real_world_models.pyramid_detector(tmp_path / "det.onnx")
    created = upload(api, "pyramid", path)
    assert created.status_code == 201, created.text
    version = created.json()
    assert version["state"] == "ready" and version["warnings"] == []
    assert version["signature"]["sample_sizes"] == {"height": 32, "width": 32}
    points = version["performance"]["points"]
    assert points and version["config"]["max_batch_size"] >= 1  # auto-tune measured at 32 x 32
    x = np.random.default_rng(1).standard_normal([2, 3, 64, 128]).astype(np.float32)
    expected = ort.InferenceSession(str(path)).run(None, {"x": x})[0]
    np.testing.assert_allclose(_infer(api, "pyramid", {"x": x})["y"], expected, rtol=1e-5, atol=1e-6)


def test_reflect_padded_audio_with_a_state_and_a_scalar_is_published(api, tmp_path):
    path = real_world_models.reflect_padded_audio(tmp_path / "audio.onnx", pad=100)
    created = upload(api, "audio-pad", path)
    assert created.status_code == 201, created.text
    version = created.json()
    assert version["state"] == "ready" and version["warnings"] == []
    assert version["signature"]["sample_sizes"] == {"batch": 224, "samples": 224}
    rng = np.random.default_rng(2)
    feeds = {"audio": rng.standard_normal([2, 1000]).astype(np.float32),
             "state": rng.standard_normal([2, 2, 8]).astype(np.float32), "gain": np.array(0.5, np.float32)}
    expected = dict(zip(["energy", "next_state"], ort.InferenceSession(str(path)).run(None, feeds), strict=True))
    got = _infer(api, "audio-pad", feeds)
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-5, atol=1e-6)


def test_a_model_no_guess_runs_is_published_with_a_warning_and_batching_off(api, tmp_path):
    path = real_world_models.reflect_padded_audio(tmp_path / "long.onnx", pad=20000)  # needs > 20000 samples
    created = upload(api, "long-pad", path)
    assert created.status_code == 201, created.text
    version = created.json()
    assert version["state"] == "ready"
    [warning] = version["warnings"]
    assert "could not run this model on made-up inputs" in warning and "Pad" in warning
    assert "real request" in warning and "Batching stays off" in warning
    assert "[warmup.<input>]" in warning  # how to declare inputs that run it
    assert "the Pad node: Pad reflect" in warning and "ONNXRuntimeError" not in warning  # no internal codes
    assert version["config"]["max_batch_size"] == 0 and version["performance"] is None
    assert "sample_sizes" not in version["signature"]
    listed = api.get("/api/v1/models/long-pad/versions/1").json()
    assert listed["warnings"] == [warning]  # the record keeps saying it
    rng = np.random.default_rng(3)
    feeds = {"audio": rng.standard_normal([1, 20001]).astype(np.float32),
             "state": rng.standard_normal([2, 1, 8]).astype(np.float32), "gain": np.array(2.0, np.float32)}
    expected = ort.InferenceSession(str(path)).run(None, feeds)
    got = _infer(api, "long-pad", feeds)
    np.testing.assert_allclose(got["energy"], expected[0], rtol=1e-5)


def test_the_cli_says_what_only_warned(server, admin_key, tmp_path):
    from tests.helpers.server_process import flashml

    path = real_world_models.reflect_padded_audio(tmp_path / "cli-long.onnx", pad=20000)
    done = flashml("models", "push", str(path), "--name", "cli-long-pad", "--url", server.url, "--key", admin_key)
    assert "cli-long-pad v1 is ready" in done.stdout
    assert "warning: FlashML could not run this model on made-up inputs" in done.stderr
    conn = ("--url", server.url, "--key", admin_key)
    listed = flashml("models", "list", *conn).stdout
    assert ["cli-long-pad", "v1", "v1:ready", "(warning:", "see", "models", "config)"] in [
        line.split() for line in listed.splitlines()]  # a table: model, serving, versions
    shown = flashml("models", "config", "cli-long-pad", "1", *conn).stdout
    assert "warning: FlashML could not run this model on made-up inputs" in shown


def _npy(arr, allow_pickle: bool = False) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


def _bundle(model_path, manifest: str, **files: bytes) -> bytes:
    from tests.helpers.uploads import tar_bundle

    return tar_bundle({"model.onnx": model_path.read_bytes(), "flashml.toml": manifest.encode(), **files})


WARMUP = """
[warmup.x]
shape = [2, 6]
fill = "random"
range = [-1, 1]

[warmup.shape]
file = "samples/shape.npy"
"""


def test_declared_warm_up_samples_run_a_model_no_guess_can(server, api, tmp_path):
    path = real_world_models.reshape_by_shape(tmp_path / "reshape.onnx")
    body = _bundle(path, WARMUP, **{"samples/shape.npy": _npy(np.array([2, 3, 2], np.int64))})
    created = upload(api, "declared", body, filename="declared.tar.gz")
    assert created.status_code == 201, created.text
    version = created.json()
    assert version["state"] == "ready" and version["warnings"] == []
    x = np.arange(12, dtype=np.float32).reshape(2, 6)
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 6], "data": x.ravel().tolist()},
                       {"name": "shape", "datatype": "INT64", "shape": [3], "data": [3, 2, 2]}]}
    out = api.post("/v2/models/declared/infer", json=body).json()["outputs"][0]
    assert out["shape"] == [3, 2, 2] and out["data"] == x.ravel().tolist()


@pytest.mark.parametrize("manifest,files,code,words", [
    (WARMUP, {"samples/shape.npy": _npy(np.array([5, 5, 5], np.int64))}, "warmup_failed",
     "declares failed"),  # the user's samples do not run: refused with what ONNX Runtime said
    ("[warmup.nope]\nshape = [1, 6]\n", {}, "bad_warmup", "names no input of the model (its inputs: x, shape)"),
    ("[warmup.x]\nshape = [1, 5]\n", {}, "bad_warmup", "has shape [1, 5]; the input takes [-1, 6]"),
    ("[warmup.shape]\nfile = \"s.npy\"\n", {"s.npy": _npy(np.array([{"a": 1}], dtype=object), True)},
     "bad_warmup", "not a plain .npy array"),  # pickled objects are never loaded
    ("[warmup.x]\nshape = [1, 6]\nfill = \"noise\"\n", {}, "bad_manifest", "must be one of zeros, ones, random"),
    ("[warmup.x]\nfile = \"../x.npy\"\n", {}, "bad_manifest", "must not leave the bundle"),
])
def test_bad_warm_up_declarations_are_refused_with_a_reason(server, api, tmp_path, manifest, files, code, words):
    from tests.helpers.uploads import leftovers

    path = real_world_models.reshape_by_shape(tmp_path / "reshape.onnx")
    answer = upload(api, "declared-bad", _bundle(path, manifest, **files), filename="bad.tar.gz")
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == code and words in answer.json()["error"], answer.json()
    assert leftovers(server.data_dir) == []


def test_where_auto_tune_cannot_run_made_up_values_the_version_still_publishes(server, api, tmp_path):
    """Declared samples ran, but auto-tune's made-up values (index 0 + 5, past a 3-row table) do not: published
    with a warning and batching off, instead of failed."""
    from onnx import TensorProto, helper, numpy_helper

    idx = helper.make_tensor_value_info("idx", TensorProto.INT64, ["batch"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2])
    graph = helper.make_graph(
        [helper.make_node("Add", ["idx", "five"], ["shifted"]),
         helper.make_node("Gather", ["table", "shifted"], ["y"])],
        "offset_gather", [idx], [y],
        [numpy_helper.from_array(np.array(5, np.int64), "five"),
         numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(3, 2), "table")])
    path = tmp_path / "gather.onnx"
    import onnx

    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9), str(path))
    manifest = "[warmup.idx]\nshape = [1]\nfill = \"random\"\nrange = [-5, -4]\n"
    created = upload(api, "tune-fails", _bundle(path, manifest), filename="tune.tar.gz")
    assert created.status_code == 201, created.text
    version = created.json()
    assert version["state"] == "ready" and version["config"]["max_batch_size"] == 0
    assert len(version["warnings"]) == 1 and "Auto-tune could not measure" in version["warnings"][0]
    answer = api.post("/v2/models/tune-fails/infer", json={
        "inputs": [{"name": "idx", "datatype": "INT64", "shape": [2], "data": [-5, -3]}]}).json()
    assert answer["outputs"][0]["data"] == [0.0, 1.0, 4.0, 5.0]


def test_an_image_task_warms_up_and_tunes_at_its_own_image_size(server, api, tmp_path):
    """[preprocess] size = [320, 320]: the warm-up and auto-tune run at 320 x 320, not at a guess."""
    path = real_world_models.pyramid_detector(tmp_path / "det.onnx")
    manifest = 'task = "image-classification"\n[preprocess]\nsize = [320, 320]\n'
    created = upload(api, "sized", _bundle(path, manifest), filename="sized.tar.gz")
    assert created.status_code == 201, created.text
    assert created.json()["signature"]["sample_sizes"] == {"height": 320, "width": 320}


def test_the_first_real_request_shows_the_shapes_and_auto_tune_measures_there(server, api, tmp_path):
    """Published with batching off (no guess ran it); its first real request runs, and in the background the
    version is measured at that request's shapes: batching on, the warning gone, the shapes recorded."""
    import time

    path = real_world_models.long_reflect_pad(tmp_path / "learn.onnx")
    version = upload(api, "learns", path).json()
    assert version["config"]["max_batch_size"] == 0 and version["warnings"]
    x = np.random.default_rng(4).standard_normal([2, 20001]).astype(np.float32)
    answer = api.post("/v2/models/learns/infer", json={
        "inputs": [{"name": "audio", "datatype": "FP32", "shape": [2, 20001], "data": x.ravel().tolist()}]})
    assert answer.status_code == 200
    np.testing.assert_allclose(answer.json()["outputs"][0]["data"],
                               ort.InferenceSession(str(path)).run(None, {"audio": x})[0], rtol=1e-5)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        record = api.get("/api/v1/models/learns/versions/1").json()
        if record["signature"].get("sample_sizes"):
            break
        time.sleep(0.2)
    assert record["signature"]["sample_sizes"] == {"samples": 20001}
    assert record["config"]["max_batch_size"] > 0 and record["performance"]["points"]
    assert record["warnings"] == [] and not record["signature"].get("unbatched")
