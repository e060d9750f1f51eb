"""`flashml models config` against the real server: show a version's serving config, change it live."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.helpers import onnx_models
from tests.helpers.server_process import flashml
from tests.helpers.uploads import upload

pytestmark = pytest.mark.server

MODEL = "cli-config"


@pytest.fixture(scope="module")
def cli_model(server, admin_key, tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("config-cli")
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=120) as api:
        assert upload(api, MODEL, onnx_models.offset_add_model(folder / "m.onnx", 0)).status_code == 201
    return MODEL


def test_show_then_change_live(server, api, admin_key, cli_model):
    conn = ("--url", server.url, "--key", admin_key)
    shown = flashml("models", "config", cli_model, "1", *conn).stdout
    assert shown.splitlines()[0] == f"{cli_model} v1 on the server's device (cpu), instance_count 1"
    assert shown.splitlines()[1].startswith("batching: max_batch_size ")
    assert "live: " in shown
    out = flashml("models", "config", cli_model, "1", "--max-batch-size", "8", "--max-queue-delay-us", "500",
                  "--preferred-batch-sizes", "2, 4", "--max-queue-size", "64", *conn).stdout
    assert ("max_batch_size 8, max_queue_delay_us 500, preferred_batch_sizes 2,4, max_queue_size 64"
            in out.splitlines()[1])
    config = api.get(f"/api/v1/models/{cli_model}/versions/1/config").json()
    assert config["config"]["max_batch_size"] == 8 and config["config"]["preferred_batch_sizes"] == [2, 4]
    # Live: the loaded version's batcher has the new queue bound already (no restart, no reload).
    body = {"inputs": [{"name": "a", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]},
                       {"name": "b", "datatype": "FP32", "shape": [1, 4], "data": [1, 1, 1, 1]}]}
    assert api.post(f"/v2/models/{cli_model}/infer", json=body).status_code == 200
    as_json = json.loads(flashml("models", "config", cli_model, "1", "--preferred-batch-sizes", "", "--json",
                                 *conn).stdout)
    assert as_json["config"]["preferred_batch_sizes"] == [] and as_json["stats"]["requests"] >= 1


@pytest.mark.parametrize("args,message", [
    (("--max-batch-size", "-1"), "bad_batching_config"),
    (("--preferred-batch-sizes", "4,x"), "whole numbers separated by commas"),
    (("--device", "tpu"), "must be cpu, auto, cuda or cuda:N"),
    (("--device", "cuda:x"), "must be cpu, auto, cuda or cuda:N"),
    (("--device", "cuda:-1"), "must be cpu, auto, cuda or cuda:N"),
    (("--device", "cudafoo"), "must be cpu, auto, cuda or cuda:N"),
    (("--instance-count", "0"), "bad_batching_config"),
    (("--batch-buckets", "1,x"), "batch_buckets must be whole numbers"),
    (("--batch-buckets", "1,999999"), "the largest being max_batch_size"),
])
def test_bad_values_are_refused_and_change_nothing(server, api, admin_key, cli_model, args, message):
    before = api.get(f"/api/v1/models/{cli_model}/versions/1/config").json()["config"]
    proc = flashml("models", "config", cli_model, "1", *args, "--url", server.url, "--key", admin_key, check=False)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr
    assert api.get(f"/api/v1/models/{cli_model}/versions/1/config").json()["config"] == before


def test_unknown_version_and_viewer_key(server, api, admin_key, cli_model):
    proc = flashml("models", "config", cli_model, "9", "--url", server.url, "--key", admin_key, check=False)
    assert proc.returncode != 0 and "version_not_found" in proc.stderr
    viewer = api.post("/api/v1/keys", json={"name": "config cli viewer", "role": "viewer"}).json()["token"]
    assert flashml("models", "config", cli_model, "1", "--url", server.url, "--key", viewer).stdout.startswith(
        f"{cli_model} v1 on ")
    proc = flashml("models", "config", cli_model, "1", "--max-batch-size", "4", "--url", server.url, "--key",
                   viewer, check=False)
    assert proc.returncode != 0 and "role_forbidden" in proc.stderr


def test_a_device_that_cannot_run_is_shown_with_its_warning(server, api, admin_key, cli_model):
    # No machine has a 100th GPU: the version falls back to the CPU, and both the API and the CLI say so.
    conn = ("--url", server.url, "--key", admin_key)
    try:
        shown = flashml("models", "config", cli_model, "1", "--device", "cuda:99", *conn).stdout.splitlines()
        assert shown[0] == f"{cli_model} v1 on cpu (cuda:99 was asked for), instance_count 1"
        assert shown[1].startswith("warning: cuda:99 was asked for but CUDA") and "runs on the CPU" in shown[1]
        config = api.get(f"/api/v1/models/{cli_model}/versions/1/config").json()
        assert config["device"] == "cpu" and config["providers"] == ["CPUExecutionProvider"]
        assert config["warnings"] and "cuda:99" in config["warnings"][0]
    finally:
        flashml("models", "config", cli_model, "1", "--device", "server", *conn)
    shown = flashml("models", "config", cli_model, "1", *conn).stdout.splitlines()
    assert shown[0] == f"{cli_model} v1 on the server's device (cpu), instance_count 1"
    assert not shown[1].startswith("warning")


def test_fixed_batch_shapes_are_set_live_and_serve(server, api, admin_key, cli_model):
    """batch_buckets reloads the version with a session per size; a request still answers, then they go."""
    conn = ("--url", server.url, "--key", admin_key)
    out = flashml("models", "config", cli_model, "1", "--max-batch-size", "8", "--preferred-batch-sizes", "",
                  "--batch-buckets", "1, 4, 8", *conn).stdout
    assert "fixed batch shapes: 1, 4, 8 (a session per size" in out
    assert api.get(f"/api/v1/models/{cli_model}/versions/1/config").json()["config"]["batch_buckets"] == [1, 4, 8]
    body = {"inputs": [{"name": "a", "datatype": "FP32", "shape": [3, 4], "data": list(range(12))},
                       {"name": "b", "datatype": "FP32", "shape": [3, 4], "data": [1] * 12}]}
    answer = api.post(f"/v2/models/{cli_model}/infer", json=body)
    assert answer.status_code == 200 and answer.json()["outputs"][0]["shape"] == [3, 4]  # padded to 4, cut to 3
    assert answer.json()["outputs"][0]["data"] == [v + 1.0 for v in range(12)]
    out = flashml("models", "config", cli_model, "1", "--batch-buckets", "", *conn).stdout
    assert "fixed batch shapes" not in out
