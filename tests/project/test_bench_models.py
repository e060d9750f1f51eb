"""The benchmark's models and its report: built in code, they load and answer; the report shows the floor."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from bench import raw_ort
from bench.models import BUILDERS
from bench.run import report


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_each_model_builds_checks_and_answers_a_batch(tmp_path, name):
    build, sample = BUILDERS[name]
    path = build(tmp_path / f"{name}.onnx")
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    session = raw_ort.session(path)
    out = session.run(None, {"x": np.zeros([2, *sample], np.float32)})[0]
    assert out.shape[0] == 2
    if name == "resnet50":  # the "ResNet-50-sized" model: its weight count, with batch norm folded
        weights = sum(int(np.prod(t.dims)) for t in model.graph.initializer)
        assert 25_400_000 < weights < 25_600_000 and out.shape == (2, 1000)


def test_the_report_puts_the_floor_beside_flashml_at_one_client():
    row = {"rps": 100.0, "p50_ms": 6.0, "p99_ms": 9.0, "cpu_us_per_request": 1000.0}
    results = {"models": {"cnn": {
        "raw": {"best_samples_per_s": 200.0, "best_batch": 16, "p50_ms_single": 4.5, "p99_ms_single": 5.0},
        "naive": {"1": dict(row, rps=50.0)}, "flashml": {"1": row}, "flashml_binary": {"1": dict(row, p50_ms=5.9)},
        "floor": {"1": dict(row, p50_ms=5.5)}}}}
    text = report(results)
    assert "| cnn | 1 | floor: Granian + model in a thread | 100 | 5.50 |" in text
    assert "cnn: p50 at one client over raw single inference: FlashML (binary) +1.40 ms, the floor +1.00 ms" in text


def test_raw_best_batch_is_measured_again_and_the_report_says_both(tmp_path):
    build, sample = BUILDERS["mlp"]
    path = build(tmp_path / "mlp.onnx")
    raw = raw_ort.measure(path, sample, batch_sizes=(1, 4), seconds=0.05, confirm_seconds=0.05)
    assert raw["best_batch"] in (1, 4) and raw["sweep_best_samples_per_s"] == max(raw["samples_per_s"].values())
    assert raw["best_samples_per_s"] > 0 and raw["best_samples_per_s"] != raw["sweep_best_samples_per_s"]
    row = {"rps": 100.0, "p50_ms": 6.0, "p99_ms": 9.0, "cpu_us_per_request": 1000.0}
    results = {"models": {"cnn": {
        "raw": {"best_samples_per_s": 200.0, "sweep_best_samples_per_s": 220.0, "best_batch": 16,
                "p50_ms_single": 4.5, "p99_ms_single": 5.0},
        "naive": {"1": dict(row, rps=50.0)}, "flashml": {"1": row}, "flashml_binary": {"1": row}}}}
    text = report(results)
    assert "| cnn | - | raw ORT (batch 16, the sweep's highest 220) | 200 samples/s |" in text
    assert "| cnn | 1 | FlashML | 100 | 6.00 | 9.00 | 1000 | 2.00 | 0.50 |" in text
