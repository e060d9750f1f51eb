"""Warm-up in a watched child process: signatures, and the kills for hanging, greedy and broken models."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import pytest
from onnx import TensorProto

from flashml.errors import ValidationFailedError
from flashml.registry import probe as probe_module
from flashml.registry.probe import ProbeResult, run_probe
from flashml.signature import Signature, TensorSpec
from tests.helpers.onnx_models import add_model, bad_session_model, hang_model, identity_model, memory_bomb_model


def refused(model: Path, code: str, **kw) -> ValidationFailedError:
    with pytest.raises(ValidationFailedError) as info:
        run_probe(model, **kw)
    assert info.value.code == code, info.value.message
    assert info.value.status == 422
    return info.value


@pytest.fixture()
def spawned(monkeypatch: pytest.MonkeyPatch) -> list[subprocess.Popen]:
    """The child processes run_probe starts, to check none is left running."""
    procs: list[subprocess.Popen] = []
    real = subprocess.Popen

    def recording(*args, **kwargs):
        proc = real(*args, **kwargs)
        procs.append(proc)
        return proc

    monkeypatch.setattr(probe_module.subprocess, "Popen", recording)
    return procs


def test_add_model_signature(tmp_path: Path) -> None:
    result = run_probe(add_model(tmp_path / "model.onnx"))
    assert isinstance(result, ProbeResult)
    assert result.providers == ["CPUExecutionProvider"]
    assert result.warmup_ms >= 0
    assert result.signature.inputs == [TensorSpec("a", "FP32", [-1, 4], ["batch", None]),
                                       TensorSpec("b", "FP32", [-1, 4], ["batch", None])]
    assert result.signature.outputs == [TensorSpec("sum", "FP32", [-1, 4], ["batch", None])]


@pytest.mark.parametrize("elem_type,v2", [(TensorProto.BFLOAT16, "BF16"), (TensorProto.STRING, "BYTES"),
                                          (TensorProto.BOOL, "BOOL"), (TensorProto.FLOAT16, "FP16")])
def test_dummy_inputs_for_awkward_types(tmp_path: Path, elem_type: int, v2: str) -> None:
    model = identity_model(tmp_path / "model.onnx", elem_type, shape=(2, "n"))
    sig = run_probe(model).signature
    assert sig.inputs == [TensorSpec("x", v2, [2, -1], [None, "n"])]
    assert sig.outputs[0].datatype == v2


def test_unsupported_type(tmp_path: Path) -> None:
    # float8 is valid ONNX (opset 19+) that onnxruntime runs but V2 has no datatype for.
    model = identity_model(tmp_path / "model.onnx", TensorProto.FLOAT8E4M3FN, opset=21, ir_version=10)
    err = refused(model, "unsupported_type")
    assert "float8e4m3fn" in err.message


def test_session_creation_failure(tmp_path: Path) -> None:
    err = refused(bad_session_model(tmp_path / "model.onnx"), "session_failed")
    assert "onnxruntime could not load the model" in err.message


def test_garbage_file(tmp_path: Path) -> None:
    (tmp_path / "model.onnx").write_bytes(b"not a model at all")
    refused(tmp_path / "model.onnx", "session_failed")


def test_timeout_kills_the_child(tmp_path: Path, spawned: list[subprocess.Popen]) -> None:
    refused(hang_model(tmp_path / "model.onnx"), "validation_timeout", timeout_s=3)
    assert spawned and all(p.poll() is not None for p in spawned)


def test_memory_limit_kills_the_child(tmp_path: Path, spawned: list[subprocess.Popen]) -> None:
    err = refused(memory_bomb_model(tmp_path / "model.onnx"), "validation_memory", memory_bytes=300 << 20,
                  timeout_s=60)
    assert err.details["rss_bytes"] > 300 << 20
    assert spawned and all(p.poll() is not None for p in spawned)


def test_crash_by_signal_is_reported() -> None:
    with pytest.raises(ValidationFailedError) as info:
        probe_module._result(-11, "", "Segmentation fault")
    assert info.value.code == "validation_crashed"
    assert "SIGSEGV" in info.value.message


def test_non_zero_exit_without_json_reports_stderr() -> None:
    with pytest.raises(ValidationFailedError) as info:
        probe_module._result(1, "", "x" * 5000 + "Traceback: boom")
    assert info.value.code == "session_failed"
    assert info.value.message.endswith("boom") and len(info.value.message) < 2200


def test_callable_from_a_worker_thread(tmp_path: Path) -> None:
    model = add_model(tmp_path / "model.onnx")
    results: list[ProbeResult] = []
    worker = threading.Thread(target=lambda: results.append(run_probe(model)))
    worker.start()
    worker.join(60)
    assert results and results[0].signature.inputs[0].name == "a"


# ---- the batches run after the warm-up (issue 22: nothing runs a batch in the server the sandbox did not) ----

def _fails_from(path: Path, rows: int, then: str = "reshape") -> Path:
    """y = x [batch, 4] below ``rows`` rows; from ``rows`` on, a Reshape that cannot be (``then`` "reshape") or
    a Loop of 2**62 iterations (``then`` "hang")."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    from tests.helpers.onnx_models import _counting_loop_body

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, None)
    if then == "reshape":
        nodes = [helper.make_node("Constant", [], ["bad"], value=numpy_helper.from_array(np.array([3, 7], np.int64))),
                 helper.make_node("Reshape", ["x", "bad"], ["out"])]
    else:
        nodes = [helper.make_node("Constant", [], ["trips"], value=numpy_helper.from_array(np.array(2**62, np.int64))),
                 helper.make_node("Constant", [], ["go"], value=numpy_helper.from_array(np.array(True))),
                 helper.make_node("Loop", ["trips", "go", "x"], ["out"], body=_counting_loop_body())]
    plain = helper.make_graph([helper.make_node("Identity", ["x"], ["out"])], "plain", [], [out])
    graph = helper.make_graph(
        [helper.make_node("Shape", ["x"], ["shape"]), helper.make_node("Gather", ["shape", "axis0"], ["n"]),
         helper.make_node("GreaterOrEqual", ["n", "rows"], ["big"]),
         helper.make_node("If", ["big"], ["y"], then_branch=helper.make_graph(nodes, "then", [], [out]),
                          else_branch=plain)],
        "fails_from", [x], [y], [numpy_helper.from_array(np.array(0, np.int64), "axis0"),
                                 numpy_helper.from_array(np.array(rows, np.int64), "rows")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9), str(path))
    return path


def test_the_batches_run_after_the_warm_up_and_the_largest_is_reported(tmp_path: Path) -> None:
    result = run_probe(add_model(tmp_path / "model.onnx"), batch_sizes=[1, 2, 4, 8])
    assert result.batch_proof == {"largest": 8}
    assert run_probe(add_model(tmp_path / "plain.onnx")).batch_proof is None  # no plan, no batches


def test_a_batch_the_model_refuses_stops_the_batches_at_the_one_before(tmp_path: Path) -> None:
    result = run_probe(_fails_from(tmp_path / "model.onnx", 4), batch_sizes=[1, 2, 4, 8])
    proof = result.batch_proof
    assert proof["largest"] == 2 and proof["stopped_at"] == 4 and proof["reason"] == "error"
    assert "Reshape" in proof["error"]
    assert result.warmup_error is None and result.signature.inputs[0].shape == [-1, 4]


def test_a_batch_that_hangs_is_killed_and_the_warm_up_still_counts(tmp_path: Path,
                                                                     spawned: list[subprocess.Popen]) -> None:
    result = run_probe(_fails_from(tmp_path / "model.onnx", 4, then="hang"), batch_sizes=[1, 2, 4, 8], timeout_s=5)
    assert result.batch_proof == {"largest": 2, "stopped_at": 4, "reason": "timeout", "timeout_s": 5}
    assert spawned and all(p.poll() is not None for p in spawned)


def test_the_model_s_own_sizes_replace_the_guesses(tmp_path: Path) -> None:
    """A real request's sizes (the first-request learning): run there, and nowhere else."""
    from tests.helpers import real_world_models

    path = real_world_models.long_reflect_pad(tmp_path / "pad.onnx", pad=300)
    result = run_probe(path, sizes={"samples": 301}, batch_sizes=[1, 2])
    assert result.signature.sample_sizes == {"samples": 301} and result.batch_proof == {"largest": 2}
    failed = run_probe(path, sizes={"samples": 200}, batch_sizes=[1, 2])  # too short to reflect-pad by 300
    assert failed.warmup_error and failed.warmup_tries == 1 and failed.batch_proof is None


def test_a_kill_or_crash_while_batches_run_keeps_the_answer_and_what_ran() -> None:
    answer = json.dumps({"signature": {"inputs": [], "outputs": []}, "providers": ["CPUExecutionProvider"],
                         "warmup_ms": 1.0})
    ran = "\n".join([answer, '{"batch_start": 1}', '{"batch_ok": 1}', '{"batch_start": 2}'])
    killed = ValidationFailedError("too much", code="validation_memory",
                                   details={"rss_bytes": 9, "memory_bytes": 8})
    result = probe_module._result(-9, ran, "", killed, planned=True)
    assert result.warmup_ms == 1.0
    assert result.batch_proof == {"largest": 1, "stopped_at": 2, "reason": "memory", "rss_bytes": 9,
                                  "memory_bytes": 8}
    crashed = probe_module._result(-11, ran, "Segmentation fault", planned=True)
    assert crashed.batch_proof == {"largest": 1, "stopped_at": 2, "reason": "crashed", "signal": "SIGSEGV"}
    with pytest.raises(ValidationFailedError) as info:  # killed before the warm-up answered: refused as before
        probe_module._result(-9, "", "", killed, planned=True)
    assert info.value.code == "validation_memory"


def test_batches_stop_before_one_that_would_not_finish_in_time_or_past_the_latency_budget() -> None:
    import time

    from flashml.registry.probe import BatchPlan, _prove

    sig = Signature([TensorSpec("x", "FP32", [-1, 4])], [TensorSpec("y", "FP32", [-1, 4])])
    said: list[dict] = []

    def run(feed):
        time.sleep(0.02 * len(feed["x"]))

    proof = _prove(run, sig, BatchPlan([1, 2, 4, 8, 16, 32, 64], deadline=time.monotonic() + 1.0), said.append)
    assert proof["reason"] == "timeout" and proof["stopped_at"] == 2 * proof["largest"] >= 8
    assert {"batch_start": proof["stopped_at"]} not in said  # judged from the last run: never started
    proof = _prove(run, sig, BatchPlan([1, 2, 4, 8], budget_ms=50), said.append)
    assert proof == {"largest": 4, "reason": "latency_budget"}  # 80 ms: auto-tune stops there too
    unbatched = Signature(sig.inputs, sig.outputs, {}, True)
    assert _prove(run, unbatched, BatchPlan([1, 2, 4]), said.append) == {"largest": 1}
