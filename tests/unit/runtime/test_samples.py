"""Representative inputs (flashml.runtime.samples): the one module that makes up data to run a model on."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from flashml.registry.probe import probe
from flashml.runtime.samples import CANDIDATE_SIZES, candidate_sizes, sample_inputs
from flashml.signature import Signature, TensorSpec
from tests.helpers import real_world_models


def _spec(name, datatype, shape, names=None):
    return TensorSpec(name, datatype, shape, names or [None] * len(shape))


TEXT = Signature([_spec("input_ids", "INT64", [-1, -1], ["batch", "sequence"]),
                  _spec("attention_mask", "INT64", [-1, -1], ["batch", "sequence"]),
                  _spec("token_type_ids", "INT64", [-1, -1], ["batch", "sequence"])],
                 [_spec("logits", "FP32", [-1, 2], ["batch", None])])


def test_inputs_that_share_a_dimension_name_share_its_size_and_masks_are_ones():
    feeds = sample_inputs(TEXT, 3, {"sequence": 7})
    assert {k: v.shape for k, v in feeds.items()} == {k: (3, 7) for k in feeds}
    assert (feeds["attention_mask"] == 1).all() and (feeds["input_ids"] == 0).all()  # ids in every vocabulary
    assert [sizes for sizes in candidate_sizes(TEXT)] == [{"sequence": n} for n in CANDIDATE_SIZES]


def test_unnamed_dimensions_fixed_shape_vectors_and_scalars():
    sig = Signature([_spec("x", "FP32", [-1, 3, -1, -1]), _spec("shape", "INT64", [3]),
                     _spec("gain", "FP16", []), _spec("flag", "BOOL", [-1])], [])
    sizes = next(s for s in candidate_sizes(sig) if s["x:2"] == 32)
    # Not every input has a dynamic first axis, so there is no batch axis: x's first axis is guessed too.
    assert sizes == {"x:0": 32, "x:2": 32, "x:3": 32, "flag:0": 32}
    feeds = sample_inputs(sig, 2, sizes)
    assert feeds["x"].shape == (32, 3, 32, 32) and feeds["x"].dtype == np.float32 and feeds["x"].std() > 0
    assert feeds["shape"].tolist() == [1, 1, 1]  # an Expand's shape input: ones broadcast to anything
    assert feeds["gain"].shape == () and feeds["gain"].dtype == np.float16
    assert feeds["flag"].shape == (32,) and feeds["flag"].all()
    # 16000 x 16000 images are not tried: a guess must not be what blows the validation's memory limit.
    assert all(s["x:2"] <= 224 for s in candidate_sizes(sig))


def test_the_probe_tries_sizes_until_one_runs_and_records_it(tmp_path):
    path = real_world_models.pyramid_detector(tmp_path / "det.onnx")
    result = probe(str(path), "cpu")
    sig = Signature.from_dict(result["signature"])
    assert "warmup_error" not in result and sig.sample_sizes == {"height": 32, "width": 32}
    x = sample_inputs(sig, 2)["x"]
    assert x.shape == (2, 3, 32, 32)
    assert ort.InferenceSession(str(path)).run(None, {"x": x})[0].shape == (2, 6)


def test_where_no_guess_runs_the_probe_says_so_instead_of_refusing(tmp_path):
    path = real_world_models.reflect_padded_audio(tmp_path / "audio.onnx", pad=20000)  # more than any guess
    result = probe(str(path), "cpu")
    # batch and samples share the guess (state's batch axis is its second: no batch axis to set apart); at 16000
    # they would make 256 million samples, past the cap, so 4 guesses were tried.
    assert result["warmup_ms"] is None and result["warmup_tries"] == len(CANDIDATE_SIZES) - 1
    assert "Pad" in result["warmup_error"] or "pad" in result["warmup_error"]
    assert "sample_sizes" not in result["signature"]


def test_the_documented_warm_up_example_parses(tmp_path):
    import re
    import tomllib
    from pathlib import Path

    from flashml.registry.manifest import parse_manifest

    page = (Path(__file__).resolve().parents[3] / "docs" / "models-and-uploads.md").read_text()
    block = next(b for b in re.findall(r"```toml\n(.*?)```", page, re.S) if "[warmup." in b)
    (tmp_path / "samples").mkdir()
    np.save(tmp_path / "samples" / "shape.npy", np.array([1, 2], np.int64))
    manifest = parse_manifest(tomllib.loads("\n".join(line.strip() for line in block.splitlines())), tmp_path)
    assert manifest.warmup["images"] == {"shape": [1, 3, 320, 320], "fill": "random", "range": [0.0, 1.0]}
    assert manifest.warmup["shape"] == {"file": str(tmp_path / "samples" / "shape.npy")}


def test_task_settings_size_an_image_and_a_token_sequence():
    from flashml.runtime.samples import task_sizes

    image = Signature([_spec("images", "FP32", [-1, -1, -1, 3], ["batch", "h", "w", None])], [])
    assert task_sizes(image, {"image": {"size": [240, 320], "layout": "NHWC", "input": None}}) == {"h": 240, "w": 320}
    assert next(candidate_sizes(image, {"image": {"size": [240, 320], "layout": "NHWC"}})) == {"h": 240, "w": 320}
    assert task_sizes(TEXT, {"sequence": 128}) == {"sequence": 128}
    assert task_sizes(TEXT, None) == {}
