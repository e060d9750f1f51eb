"""Execution instances: how sessions are made for a device, and how CPU instances share the cores."""

from __future__ import annotations

import os

import numpy as np
import pytest

from flashml.runtime.devices import CPU, CUDA, TENSORRT, parse_device, providers_for, resolve_device
from flashml.runtime.executor import SessionExecutor
from flashml.runtime.runner import ModelRuntimeError
from flashml.runtime.sessions import SessionOptions, create_session, threads_per_instance
from tests.helpers import onnx_models


def test_cpu_instances_split_the_cores():
    cores = os.cpu_count() or 1
    assert threads_per_instance(0, 1, "cpu") == 0  # one instance: ONNX Runtime picks
    assert threads_per_instance(0, 2, "cpu") == max(1, cores // 2)
    assert threads_per_instance(0, 64, "cpu") == 1
    assert threads_per_instance(3, 2, "cpu") == 3  # an explicit setting wins
    assert threads_per_instance(0, 2, "cuda:0") == 0


def test_cuda_providers_suit_serving_and_tensorrt_comes_first_when_asked():
    assert providers_for("cpu") == [CPU]
    cuda = providers_for("cuda:1")
    assert cuda[0][0] == CUDA and cuda[0][1]["device_id"] == 1 and cuda[-1] == CPU
    assert cuda[0][1]["cudnn_conv_algo_search"] == "HEURISTIC"
    assert cuda[0][1]["arena_extend_strategy"] == "kSameAsRequested"
    trt = providers_for("cuda:0", tensorrt=True, tensorrt_fp16=True, trt_cache_dir="/data/cache/tensorrt")
    assert [p[0] if isinstance(p, tuple) else p for p in trt] == [TENSORRT, CUDA, CPU]
    assert trt[0][1]["trt_fp16_enable"] is True and trt[0][1]["trt_engine_cache_path"] == "/data/cache/tensorrt"


def test_without_cuda_every_device_falls_back_to_the_cpu():
    assert resolve_device("cpu") == "cpu"
    if resolve_device("auto") == "cpu":  # the CI machine: no GPU
        assert resolve_device("cuda:0") == "cpu"


def test_device_settings_are_read_strictly():
    assert [parse_device(d) for d in ("cpu", " CPU ", "auto", "cuda", "cuda:1", "CUDA:02")] == [
        "cpu", "cpu", "auto", "cuda:0", "cuda:1", "cuda:2"]
    for bad in ("cuda:x", "cuda:-1", "cudafoo", "cpu:1", "gpu", "", None, 0):
        with pytest.raises(ValueError, match="is not a device"):
            parse_device(bad)


def test_a_cpu_session_with_two_instances_uses_its_share_of_threads(tmp_path):
    path = onnx_models.add_model(tmp_path / "add.onnx")
    session = create_session(path, "cpu", SessionOptions(), instances=2)
    assert session.get_session_options().intra_op_num_threads == max(1, (os.cpu_count() or 1) // 2)
    run = SessionExecutor(session, "cpu")
    a = np.ones((2, 4), np.float32)
    np.testing.assert_array_equal(run({"a": a, "b": a}, ["sum"])["sum"], a * 2)


def test_runtime_errors_keep_the_model_message(tmp_path):
    session = create_session(onnx_models.gather_model(tmp_path / "g.onnx"), "cpu")
    run = SessionExecutor(session, "cpu")
    try:
        run({"i": np.array([99])}, ["y"])
    except ModelRuntimeError as exc:
        assert "out of data bounds" in str(exc)
    else:
        raise AssertionError("an out-of-range index must fail")
