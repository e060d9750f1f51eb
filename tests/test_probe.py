"""Warm-up in a watched child process: signatures, and the kills for hanging, greedy and broken models."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest
from onnx import TensorProto

from flashml.errors import ValidationFailedError
from flashml.registry import probe as probe_module
from flashml.registry.probe import ProbeResult, run_probe
from flashml.signature import TensorSpec
from tests.onnx_models import add_model, bad_session_model, hang_model, identity_model, memory_bomb_model


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
