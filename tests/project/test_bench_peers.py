"""The benchmark's peers (PyTriton, MLServer) as data and processes, without the peers installed: their settings,
files and command lines, the readiness wait and the stop, the choice of peers, and the comparison with FlashML."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from bench import raw_ort
from bench.models import BUILDERS
from bench.peers import compare, config, launch, ort_session
from bench.run import _available_peers, report

PORTS = config.PeerPorts(http=18300, grpc=18301, metrics=18302)


def test_peers_are_named_by_a_comma_list_and_unknown_names_fail():
    assert config.parse_peers("pytriton, mlserver") == ["pytriton", "mlserver"]
    assert config.parse_peers("none") == [] and config.parse_peers("") == []
    with pytest.raises(ValueError, match="unknown peer torchserve"):
        config.parse_peers("mlserver,torchserve")


def test_each_peer_environment_pins_its_release_and_flashmls_onnx_runtime():
    assert config.requirements("pytriton", "1.31.1") == ["nvidia-pytriton==0.7.0", "onnxruntime==1.31.1"]
    # MLServer's workers fail with uvloop 0.20 and newer.
    assert config.requirements("mlserver", "1.31.1") == ["mlserver==1.7.1", "uvloop<0.20", "onnxruntime==1.31.1"]


def test_a_missing_environment_is_one_line_naming_the_setup_command(tmp_path):
    line = config.missing("mlserver", tmp_path)
    assert "\n" not in line and "python -m bench.peers.setup --peers mlserver" in line
    python = config.venv_python("mlserver", tmp_path)
    python.parent.mkdir(parents=True)
    python.touch()
    assert config.missing("mlserver", tmp_path) is None


def test_bench_run_runs_the_peers_that_are_there_and_says_which_are_not(tmp_path, capsys):
    python = config.venv_python("pytriton", tmp_path)
    python.parent.mkdir(parents=True)
    python.touch()
    assert _available_peers("pytriton,mlserver", "cpu", tmp_path) == ["pytriton"]
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("mlserver: no environment")
    assert _available_peers("pytriton", "cuda:0", tmp_path) == []
    assert "CPU only" in capsys.readouterr().out
    assert _available_peers("none", "cpu", tmp_path) == [] and capsys.readouterr().out == ""


def test_triton_gets_max_batch_64_and_flashmls_queue_delay():
    assert config.triton_model_config(config.PeerBatching(max_queue_delay_us=725)) == {
        "max_batch_size": 64, "dynamic_batching": {"max_queue_delay_microseconds": 725}}


def test_pytriton_command_line_gives_triton_every_port_and_the_batching(tmp_path):
    command = config.pytriton_command(Path("/p/bin/python"), tmp_path / "m.onnx", "mlp", PORTS,
                                      config.PeerBatching(64, 500))
    assert command[:3] == ["/p/bin/python", "-m", "bench.peers.pytriton_server"]
    flags = dict(zip(command[3::2], command[4::2], strict=True))
    assert flags == {"--model": str(tmp_path / "m.onnx"), "--name": "mlp", "--http-port": "18300",
                     "--grpc-port": "18301", "--metrics-port": "18302", "--max-batch-size": "64",
                     "--max-queue-delay-us": "500"}


def test_pytriton_environment_puts_the_interpreters_libdir_first():
    env = config.pytriton_env({"LD_LIBRARY_PATH": "/usr/lib/x", "VIRTUAL_ENV": "/work/.venv", "PATH": "/bin"},
                              "/opt/python/lib")
    assert env["LD_LIBRARY_PATH"] == "/opt/python/lib:/usr/lib/x"
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(config.REPO_ROOT)
    assert "VIRTUAL_ENV" not in env and env["PATH"] == "/bin"
    assert config.pytriton_env({}, "/opt/python/lib")["LD_LIBRARY_PATH"] == "/opt/python/lib"


def test_mlserver_settings_use_our_ports_and_run_inference_in_the_server_process():
    settings = config.mlserver_settings(PORTS)
    assert (settings["http_port"], settings["grpc_port"], settings["metrics_port"]) == (18300, 18301, 18302)
    assert settings["parallel_workers"] == 0 and settings["host"] == "127.0.0.1"


def test_mlserver_model_settings_name_our_runtime_and_turn_adaptive_batching_on(tmp_path):
    settings = config.mlserver_model_settings("cnn", tmp_path / "cnn.onnx", config.PeerBatching(64, 2500))
    assert settings["name"] == "cnn" and settings["parameters"] == {"uri": str(tmp_path / "cnn.onnx")}
    assert (settings["max_batch_size"], settings["max_batch_time"]) == (64, 0.0025)
    module, _, cls = settings["implementation"].rpartition(".")
    source = (config.REPO_ROOT / (module.replace(".", "/") + ".py")).read_text()
    assert f"class {cls}(MLModel)" in source
    # A delay of 0 would turn MLServer's batcher off: it gets its least useful wait instead.
    zero = config.mlserver_model_settings("cnn", tmp_path / "cnn.onnx", config.PeerBatching(64, 0))
    assert zero["max_batch_time"] == config.MLSERVER_MIN_BATCH_TIME_S > 0


def test_mlserver_starts_from_its_own_environment_on_the_settings_folder(tmp_path):
    assert config.mlserver_command(tmp_path / "f", tmp_path / "peers") == [
        str(tmp_path / "peers" / "mlserver" / "bin" / "mlserver"), "start", str(tmp_path / "f")]


def test_peers_run_a_session_set_up_like_raw_onnx_runtime(tmp_path):
    build, sample = BUILDERS["mlp"]
    path = build(tmp_path / "mlp.onnx")
    ours, raw = ort_session.session(path), raw_ort.session(path)
    entry = "session.intra_op.allow_spinning"
    assert ours.get_session_options().get_session_config_entry(entry) == "0"
    assert raw.get_session_options().get_session_config_entry(entry) == "0"
    assert ours.get_providers() == raw.get_providers() == ["CPUExecutionProvider"]


def test_free_ports_are_distinct():
    ports = launch.free_ports(3)
    assert len(set(ports)) == 3


# A stand-in for a peer: V2 server readiness at once, the model's after three asks; a grandchild of its own.
FAKE_PEER = textwrap.dedent("""
    import subprocess, sys
    from http.server import BaseHTTPRequestHandler, HTTPServer
    child = subprocess.Popen(["sleep", "60"])
    open(sys.argv[2], "w").write(str(child.pid))
    asked = 0
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            global asked
            if self.path == "/v2/models/mlp/ready":
                asked += 1
            ready = self.path == "/v2/health/ready" or asked > 3
            self.send_response(200 if ready else 400)
            self.end_headers()
        def log_message(self, *args):
            pass
    HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
""")


def _fake_peer(tmp_path: Path, script: str, *args: str) -> launch.RunningPeer:
    log = tmp_path / "server.log"
    with log.open("ab") as out:
        process = subprocess.Popen([sys.executable, "-c", script, *args], stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    port = int(args[0]) if args and args[0].isdigit() else 0
    return launch.RunningPeer("fake", "mlp", process, port, log)


def test_readiness_waits_for_the_model_and_stop_ends_the_peers_whole_session(tmp_path):
    port = launch.free_ports(1)[0]
    peer = _fake_peer(tmp_path, FAKE_PEER, str(port), str(tmp_path / "child.pid"))
    try:
        launch.wait_ready(peer, timeout=30)
        # Not only the server: the model had said it was ready (a fourth ask answers 200 at once).
        assert httpx.get(f"http://127.0.0.1:{port}/v2/models/mlp/ready").status_code == 200
        assert peer.infer_url == f"http://127.0.0.1:{port}/v2/models/mlp/infer"
    finally:
        launch.stop(peer, grace=5)
    assert peer.process.returncode is not None
    child = int((tmp_path / "child.pid").read_text())
    deadline = time.monotonic() + 5
    while Path(f"/proc/{child}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # killed; its new parent reaps it
    assert not Path(f"/proc/{child}").exists()


# A stand-in that cleans up on SIGTERM, started as a shell's background job is: with SIGINT ignored.
CLEANING_PEER = textwrap.dedent("""
    import signal, sys, time
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    def clean(*_):
        open(sys.argv[1], "w").write("cleaned")
        sys.exit(0)
    signal.signal(signal.SIGTERM, clean)
    open(sys.argv[1] + ".up", "w").write("up")
    while True:
        time.sleep(0.05)
""")


def test_stop_lets_a_peer_clean_up_even_when_it_ignores_sigint(tmp_path):
    marker = tmp_path / "cleaned"
    peer = _fake_peer(tmp_path, CLEANING_PEER, str(marker))
    deadline = time.monotonic() + 10
    while not Path(f"{marker}.up").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    started = time.monotonic()
    launch.stop(peer, grace=5)
    assert marker.read_text() == "cleaned" and time.monotonic() - started < 4


def test_a_peer_that_exits_while_starting_fails_with_its_log(tmp_path):
    peer = _fake_peer(tmp_path, "import sys; print('no such model'); sys.exit(3)")
    with pytest.raises(RuntimeError, match=r"fake exited \(3\):\nno such model"):
        launch.wait_ready(peer, timeout=30)


def _row(rps: float) -> dict:
    return {"rps": rps, "p50_ms": 5.0, "p99_ms": 9.0, "cpu_us_per_request": 1000.0}


def _results(pytriton_binary_rps: float) -> dict:
    """Figures as bench.run writes them to JSON (client counts as strings)."""
    model = {"raw": {"best_samples_per_s": 200.0, "best_batch": 16, "p50_ms_single": 4.5, "p99_ms_single": 5.0},
             "naive": {"1": _row(50), "32": _row(60)}, "flashml": {"1": _row(100), "32": _row(150)},
             "flashml_binary": {"1": _row(120), "32": _row(200)},
             "pytriton": {"1": _row(80), "32": _row(100)},
             "pytriton_binary": {"1": _row(pytriton_binary_rps), "32": _row(150)},
             "mlserver": {"1": _row(50), "32": _row(75)}}
    return json.loads(json.dumps({"models": {"cnn": model}}))


def test_ratios_compare_like_bodies_at_every_client_count():
    rows = compare.ratios(_results(100)["models"])
    got = {(r["clients"], r["comparison"]): round(r["ratio"], 2) for r in rows}
    assert got == {(1, "FlashML/Triton, JSON"): 1.25, (32, "FlashML/Triton, JSON"): 1.5,
                   (1, "FlashML/Triton, binary"): 1.2, (32, "FlashML/Triton, binary"): 1.33,
                   (1, "FlashML/MLServer, JSON"): 2.0, (32, "FlashML/MLServer, JSON"): 2.0}
    assert compare.verdict(rows).startswith("Target holds")
    assert "| cnn | 32 | 1.50 | 1.33 | 2.00 |" in compare.table(rows)


def test_the_target_fails_where_flashml_is_level_or_behind_and_says_where():
    rows = compare.ratios(_results(130)["models"])
    assert compare.verdict(rows) == ("Target does not hold: FlashML is not ahead on cnn at 1 clients, "
                                     "FlashML/Triton, binary 0.92.")


def test_the_target_is_not_judged_without_every_peer():
    results = _results(100)
    del results["models"]["cnn"]["mlserver"]
    verdict = compare.verdict(compare.ratios(results["models"]))
    assert "not judged" in verdict and "FlashML/MLServer, JSON" in verdict
    assert compare.verdict([]).startswith("Target not judged")


def test_the_report_lists_the_peers_beside_flashml_and_the_ratios():
    results = _results(100)
    results["peer_ratios"] = compare.ratios(results["models"])
    results["peer_target"] = compare.verdict(results["peer_ratios"])
    text = report(results)
    assert "| cnn | 32 | PyTriton, binary tensors | 150 | 5.00 | 9.00 | 1000 | 2.50 | 0.75 |" in text
    assert "| cnn | 1 | MLServer | 50 |" in text
    assert text.rstrip().endswith(results["peer_target"])
