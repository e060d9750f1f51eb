"""Valid models that a warm-up of ones refused are published and answer over V2 (issue 21, items 1 and 3).

Made-up inputs come from one module (flashml.runtime.samples): sizes are tried in turn until one runs, and the
size that ran is what auto-tune and the warm-ups use. Where no guess runs, the version is published with a
warning and batching off, and real requests still answer.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from tests import real_world_models
from tests.test_e2e_upload import upload

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
    from tests.server_process import flashml

    path = real_world_models.reflect_padded_audio(tmp_path / "cli-long.onnx", pad=20000)
    done = flashml("models", "push", str(path), "--name", "cli-long-pad", "--url", server.url, "--key", admin_key)
    assert "cli-long-pad v1 is ready" in done.stdout
    assert "warning: FlashML could not run this model on made-up inputs" in done.stderr
