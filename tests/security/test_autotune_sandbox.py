"""Nothing runs an uploaded model in the server at a batch the sandbox did not run first (issue 22, item 3).

A model may behave at batch 64 as it never did at batch 1: ``If(batch >= 64)`` then Expand to 25000 x 25000
floats (2.5 GB). The upload's warm-up runs one row; auto-tune then ran batch 64 inside the server (288 -> 2,801
MB with a 1 GiB validation limit). Now the sandbox runs every batch size auto-tune may try, under the
validation limits, and auto-tune never measures past the largest it proved; the version is published with
batching capped there and a warning that says why.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from flashml.auth.principal import Principal
from flashml.composition import open_services
from flashml.settings import load_settings
from tests.helpers.in_process import run
from tests.helpers.onnx_models import add_model

GiB = 1 << 30
BOMB_SIDE = 25000  # 25000 x 25000 float32: 2.5 GB
BOMB_AT = 64


def _bomb_branch(side: int) -> onnx.GraphProto:
    """Then-branch: y plus 0 x the sum of a side x side tensor (built from the input: nothing to fold)."""
    out = helper.make_tensor_value_info("bombed", TensorProto.FLOAT, None)
    nodes = [helper.make_node("Constant", [], ["bomb_shape"],
                              value=numpy_helper.from_array(np.array([side, side], np.int64))),
             helper.make_node("Constant", [], ["zero"], value=numpy_helper.from_array(np.array(0, np.float32))),
             helper.make_node("Expand", ["seed", "bomb_shape"], ["big"]),
             helper.make_node("ReduceSum", ["big"], ["total"], keepdims=0),
             helper.make_node("Mul", ["total", "zero"], ["nothing"]),
             helper.make_node("Add", ["body", "nothing"], ["bombed"])]
    return helper.make_graph(nodes, "bomb", [], [out])


def batch_bomb(path: Path, *, at: int = BOMB_AT, side: int = BOMB_SIDE, pad: int = 0) -> Path:
    """x [batch, n] -> y: x itself (``pad`` 0), or the mean square of x reflect-padded by ``pad`` on each side
    ([batch]; samples must exceed ``pad``, so a large pad leaves no guess that runs). Below ``at`` rows the
    answer is just that; from ``at`` rows on, If's then-branch also Expands to side x side floats."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "n" if pad else 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch"] if pad else ["batch", 4])
    inits = [numpy_helper.from_array(np.array(0, np.int64), "axis0"),
             numpy_helper.from_array(np.array(at, np.int64), "at")]
    if pad:
        inits.append(numpy_helper.from_array(np.array([0, pad, 0, pad], np.int64), "pads"))
        body = [helper.make_node("Pad", ["x", "pads"], ["padded"], mode="reflect"),
                helper.make_node("Mul", ["padded", "padded"], ["squared"]),
                helper.make_node("ReduceMean", ["squared"], ["body"], axes=[1], keepdims=0)]
    else:
        body = [helper.make_node("Identity", ["x"], ["body"])]
    plain = helper.make_graph([helper.make_node("Identity", ["body"], ["plain"])], "plain", [],
                              [helper.make_tensor_value_info("plain", TensorProto.FLOAT, None)])
    nodes = [*body,
             helper.make_node("ReduceSum", ["x"], ["seed"], keepdims=0),
             helper.make_node("Shape", ["x"], ["shape"]),
             helper.make_node("Gather", ["shape", "axis0"], ["rows"]),
             helper.make_node("GreaterOrEqual", ["rows", "at"], ["big_batch"]),
             helper.make_node("If", ["big_batch"], ["y"], then_branch=_bomb_branch(side), else_branch=plain)]
    model = helper.make_model(helper.make_graph(nodes, "batch_bomb", [x], [y], inits),
                              opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    onnx.save(model, str(path))
    return path


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/self/status")


def _reset_peak() -> int:
    """Reset this process's peak RSS (VmHWM) to its RSS now (Linux), and return that RSS."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status("VmRSS")


async def _body(path: Path):
    yield path.read_bytes()


def _settings(tmp_path: Path, **overrides):
    return load_settings({"data_dir": str(tmp_path / "data"), "device": "cpu", "autotune": True,
                          "validation_memory_bytes": GiB, "validation_timeout_s": 120, "upload_wait_s": 300,
                          **overrides}, env={})


async def _upload(tmp_path: Path, paths: dict[str, Path]) -> tuple[dict[str, dict], int]:
    """Upload each model through the registry of a real service container; the versions, and how far this
    process's RSS rose above where it was before the uploads."""
    services = await open_services(_settings(tmp_path))
    try:
        before = _reset_peak()
        versions = {}
        for name, path in paths.items():
            record, done = await services.registry.upload(name, _body(path), source_name=path.name, actor="t",
                                                          content_length=None)
            assert done, record
            versions[name] = record.to_dict()
        return versions, _status("VmHWM") - before
    finally:
        await services.close()


def test_a_model_that_bombs_at_batch_64_is_capped_at_what_the_sandbox_ran_and_the_server_never_runs_it(tmp_path):
    bomb = batch_bomb(tmp_path / "bomb.onnx")
    versions, grew = run(_upload(tmp_path, {"bomb": bomb, "plain": add_model(tmp_path / "add.onnx")}))
    assert grew < 512 << 20, f"the server's RSS rose {grew >> 20} MiB while publishing"

    version = versions["bomb"]
    assert version["state"] == "ready", version
    config, proof = version["config"], version["report"]["batch_proof"]
    assert 1 <= config["max_batch_size"] <= 32
    assert proof["largest"] == 32 and proof["stopped_at"] == BOMB_AT and proof["reason"] == "memory"
    assert all(p["batch_size"] <= 32 for p in version["performance"]["points"])
    [warning] = version["warnings"]
    assert f"{BOMB_AT} rows" in warning and "validation memory limit" in warning and "32 rows" in warning
    assert "FLASHML_VALIDATION_MEMORY_BYTES" in warning

    plain = versions["plain"]  # an ordinary model: proved up to the largest size auto-tune measures, no warning
    assert plain["state"] == "ready" and plain["warnings"] == []
    assert plain["report"]["batch_proof"] == {"largest": 256}
    assert plain["performance"]["points"] and plain["config"]["max_batch_size"] >= 2


async def _learn(tmp_path: Path, path: Path) -> tuple[dict, dict, int]:
    """Publish a model no guess runs, send it one real request, wait for the learning it starts."""
    services = await open_services(_settings(tmp_path))
    try:
        registry = services.registry
        published, done = await registry.upload("learns", _body(path), source_name=path.name, actor="t",
                                                content_length=None)
        published = published.to_dict()
        assert done and published["state"] == "ready", published
        x = np.random.default_rng(4).standard_normal([2, 20001]).astype(np.float32)
        body = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 20001],
                                       "data": x.ravel().tolist()}]}).encode()
        before = _reset_peak()
        principal = Principal(1, "key-one", "k", "inference", None, "t")
        answer, _ = await services.inference.infer(principal, "learns", None, body, None)
        assert json.loads(answer)["outputs"][0]["shape"] == [2]
        await registry.wait_idle()  # the learning runs in the background
        learned = (await registry.get_version("learns", 1)).to_dict()
        assert learned["report"].get("learned_from_request_at"), learned
        return published, learned, _status("VmHWM") - before
    finally:
        await services.close()


def test_the_first_real_request_is_learned_from_in_the_sandbox_too(tmp_path):
    """No guess runs this model (it needs over 20000 samples), so its first real request shows the shapes, and
    auto-tune measured there inside the server, batch 64 included. The sandbox now runs those shapes first."""
    path = batch_bomb(tmp_path / "learn.onnx", pad=20000, side=BOMB_SIDE)
    published, learned, grew = run(_learn(tmp_path, path))
    assert published["config"]["max_batch_size"] == 0 and published["report"]["guesses_failed"]
    assert grew < 512 << 20, f"the server's RSS rose {grew >> 20} MiB while learning"
    assert learned["signature"]["sample_sizes"] == {"n": 20001}
    assert 1 <= learned["config"]["max_batch_size"] <= 32
    assert all(p["batch_size"] <= 32 for p in learned["performance"]["points"])
    proof = learned["report"]["batch_proof"]
    assert proof["largest"] == 32 and proof["stopped_at"] == BOMB_AT and proof["reason"] == "memory"
    [warning] = learned["warnings"]  # the guess warning is gone; the cap says why
    assert f"{BOMB_AT} rows" in warning and "validation memory limit" in warning


def test_the_bomb_model_really_bombs_at_64_rows(tmp_path):
    """The test model is what it claims: 63 rows run small, 64 rows go past the validation memory limit."""
    import onnxruntime as ort

    from flashml.errors import ValidationFailedError
    from flashml.registry.probe import run_probe

    path = batch_bomb(tmp_path / "small.onnx", side=200)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.run(None, {"x": np.ones([63, 4], np.float32)})[0].shape == (63, 4)
    assert session.run(None, {"x": np.ones([64, 4], np.float32)})[0].shape == (64, 4)
    result = run_probe(batch_bomb(tmp_path / "bomb.onnx"), memory_bytes=GiB, timeout_s=120)
    assert result.signature.inputs[0].shape == [-1, 4]  # batch 1 alone passes the sandbox
    with pytest.raises(ValidationFailedError) as info:
        run_probe(batch_bomb(tmp_path / "huge.onnx", at=1), memory_bytes=GiB, timeout_s=120)
    assert info.value.code == "validation_memory"
