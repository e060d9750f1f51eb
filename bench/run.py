"""One command, every server side by side on the same machine and load.

    python -m bench.run [--seconds 5] [--rounds 3] [--clients 1,8,32] [--models mlp,cnn] [--peers pytriton,mlserver]
    python -m bench.run --device cuda:0 --models resnet50 --out bench/results_gpu.json    # on a GPU machine

Builds the models, measures raw ONNX Runtime, starts the naive FastAPI server and FlashML, drives each
with wrk (one sample per request, V2 JSON bodies) and prints throughput, p50, p99 and the ratios. At one
client it also drives the floor (`bench/floor_app.py`: Granian answering with the model run in a worker
thread, nothing else), so the one-client gap to raw ONNX Runtime can be read against what any non-blocking
server pays on this machine in the same minutes. The peers a user would pick instead (``--peers``: Triton's
core through PyTriton, JSON and binary; MLServer, JSON) run from their own environments (bench/peers/) in the
same rounds. Results also go to bench/results.json. Needs `wrk` (Debian package) and the bench extra. With
``--device cuda:0`` every server and raw ONNX Runtime run the model on that GPU (raw ONNX Runtime then tries
batches up to 256); the peers run on the CPU only, so they are left out there.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from bench import loadgen, raw_ort
from bench.models import BUILDERS
from bench.peers import compare, launch
from bench.peers import config as peer_config

HERE = Path(__file__).resolve().parent
RAW_BATCHES_CPU = (1, 2, 4, 8, 16, 32, 64)
RAW_BATCHES_GPU = (*RAW_BATCHES_CPU, 128, 256)
LUA = """wrk.method = "POST"
wrk.body = io.open(os.getenv("BODY_FILE"), "rb"):read("*a")
wrk.headers["Authorization"] = "Bearer " .. os.getenv("KEY")
if os.getenv("HEADER_LENGTH") ~= "0" then
  wrk.headers["Inference-Header-Content-Length"] = os.getenv("HEADER_LENGTH")
  wrk.headers["Content-Type"] = "application/octet-stream"
else
  wrk.headers["Content-Type"] = "application/json"
end
"""


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def _ms(value: str) -> float:
    num, unit = re.match(r"([\d.]+)(us|ms|s|m)", value).groups()
    return float(num) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def _tree(pid: int) -> list[int]:
    """A process and all its descendants (FlashML's Granian worker is a child of `flashml serve`)."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                pass
    return found


def _cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process tree so far (0 when not measurable)."""
    if pid is None:
        return 0.0
    total = 0
    for p in _tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


LOADGEN = "wrk"  # or "python": bench/loadgen.py, where wrk is not installed (--loadgen)


def _thread_ticks(pid: int | None) -> dict[int, tuple[str, int]]:
    """Each thread of a process tree: its name and its user + system CPU ticks so far."""
    out: dict[int, tuple[str, int]] = {}
    for p in _tree(pid) if pid else []:
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                comm = (task / "comm").read_text().strip()
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
                label = comm if int(task.name) != p else f"{comm} (main)"
                out[int(task.name)] = (label, int(fields[11]) + int(fields[12]))
            except (OSError, IndexError, ValueError):
                pass
    return out


def _busiest_threads(before: dict[int, tuple[str, int]], after: dict[int, tuple[str, int]], requests: int,
                     top: int = 6) -> list[list]:
    """The threads that used the most CPU during a run: [name, microseconds per answered request]."""
    tick = 1e6 / os.sysconf("SC_CLK_TCK") / max(1, requests)
    used = sorted(((name, (ticks - before.get(tid, (name, 0))[1]) * tick) for tid, (name, ticks) in after.items()),
                  key=lambda t: -t[1])
    return [[name, round(us)] for name, us in used[:top] if us > 0]


def wrk(url: str, clients: int, seconds: int, body: Path, key: str, lua: Path, header_length: int = 0,
        server_pid: int | None = None) -> dict:
    """Drive one server; with ``server_pid`` also its CPU time per answered request (robust to a busy machine)."""
    if LOADGEN == "python":
        return _python_load(url, clients, seconds, body, key, header_length, server_pid)
    env = {**os.environ, "BODY_FILE": str(body), "KEY": key, "HEADER_LENGTH": str(header_length)}
    cpu_before = _cpu_seconds(server_pid)
    out = subprocess.run(["wrk", "-t1", f"-c{clients}", f"-d{seconds}s", "--latency", "-s", str(lua), url],
                         capture_output=True, text=True, env=env, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    cpu_us = (_cpu_seconds(server_pid) - cpu_before) * 1e6 / max(1, requests) if server_pid else 0.0
    return {"rps": rps, "p50_ms": p50, "p99_ms": p99, "non_2xx": int(errors.group(1)) if errors else 0,
            "cpu_us_per_request": cpu_us}


def _python_load(url: str, clients: int, seconds: int, body: Path, key: str, header_length: int,
                 server_pid: int | None) -> dict:
    """The same run as ``wrk`` with bench/loadgen.py: same body and headers, same figures."""
    headers = {"Authorization": f"Bearer {key}"}
    if header_length:
        headers.update({"Inference-Header-Content-Length": str(header_length),
                        "Content-Type": "application/octet-stream"})
    else:
        headers["Content-Type"] = "application/json"
    cpu_before, threads_before = _cpu_seconds(server_pid), _thread_ticks(server_pid)
    out = loadgen.drive(url, clients, seconds, body.read_bytes(), headers)
    requests = out.pop("requests")
    out["cpu_us_per_request"] = ((_cpu_seconds(server_pid) - cpu_before) * 1e6 / max(1, requests)
                                 if server_pid else 0.0)
    if server_pid:
        out["threads_us_per_request"] = _busiest_threads(threads_before, _thread_ticks(server_pid), requests)
    return out


def start_floor(model: Path, device: str = "cpu") -> tuple[subprocess.Popen, int]:
    """``bench/floor_app.py`` for ``model``, served by Granian as FlashML is (RSGI, one worker): the process and
    its port, once it answers."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "granian", "--interface", "rsgi", "--workers", "1", "--port", str(port),
         "--log-level", "warning", "bench.floor_app:app"],
        env={**os.environ, "FLOOR_MODEL": str(model), "FLOOR_DEVICE": device}, cwd=HERE.parent)
    try:
        _wait(f"http://127.0.0.1:{port}/noop")
    except BaseException:
        server.terminate()
        raise
    return server, port


def _bodies(work: Path, name: str, sample: list[int]) -> tuple[Path, Path, int]:
    """The same one-sample request as V2 JSON, and as Triton's binary extension (what tritonclient sends)."""
    x = np.random.default_rng(0).standard_normal([1, *sample]).astype(np.float32)
    as_json = work / f"{name}.json"
    as_json.write_text(json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, *sample],
                                               "data": x.ravel().tolist()}]}))
    head = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, *sample],
                                   "parameters": {"binary_data_size": x.nbytes}}],
                       "parameters": {"binary_data_output": True}}).encode()
    as_binary = work / f"{name}.bin"
    as_binary.write_bytes(head + x.tobytes())
    return as_json, as_binary, len(head)


def _median(runs: list[dict]) -> dict:
    """Each figure's median over the rounds (a thread breakdown: the last round's)."""
    return {k: float(np.median([r[k] for r in runs])) if not isinstance(runs[0][k], list) else runs[-1][k]
            for k in runs[0]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5, help="seconds per wrk run")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported")
    ap.add_argument("--clients", default="1,8,32")
    ap.add_argument("--models", default="mlp,cnn", help=f"of {', '.join(BUILDERS)}")
    ap.add_argument("--device", default="cpu", help="cpu, or cuda:N for every server and raw ONNX Runtime")
    ap.add_argument("--out", type=Path, default=HERE / "results.json", help="where the figures go (JSON)")
    ap.add_argument("--loadgen", choices=["auto", "wrk", "python"], default="auto",
                    help="the load generator: wrk, or bench/loadgen.py (auto: wrk where it is installed)")
    ap.add_argument("--instances", default="",
                    help="after the rounds, FlashML (binary) again at each of these instance_count values, e.g. 1,2,4")
    ap.add_argument("--peers", default=",".join(peer_config.PEERS),
                    help=f"the other servers to run beside FlashML, of {', '.join(peer_config.PEERS)} (none: no peer)")
    args = ap.parse_args()
    try:
        peers = _available_peers(args.peers, args.device)
    except ValueError as e:
        ap.error(str(e))
    global LOADGEN
    LOADGEN = args.loadgen if args.loadgen != "auto" else ("wrk" if shutil.which("wrk") else "python")
    if LOADGEN == "wrk" and not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install wrk (or --loadgen python)")
    clients = [int(c) for c in args.clients.split(",")]
    work = Path(tempfile.mkdtemp(prefix="flashml-bench-"))
    lua = work / "post.lua"
    lua.write_text(LUA)
    results: dict = {"machine": {"cores": os.cpu_count()}, "device": args.device, "seconds": args.seconds,
                     "loadgen": LOADGEN,
                     "rounds": args.rounds, "peers": peers, "models": {}}
    raw_batches = RAW_BATCHES_GPU if args.device.startswith("cuda") else RAW_BATCHES_CPU

    port = _free_port()
    data = work / "data"
    fl = subprocess.Popen([sys.executable, "-m", "flashml", "serve", "--port", str(port), "--data-dir", str(data),
                           "--device", args.device, "--log-level", "warning"], stdout=subprocess.DEVNULL,
                          stderr=open(os.environ.get("BENCH_SERVER_LOG", os.devnull), "ab"))  # noqa: SIM115
    procs, running_peers = [fl], []
    try:
        _wait(f"http://127.0.0.1:{port}/v2/health/live")
        key = subprocess.run([sys.executable, "-m", "flashml", "keys", "create", "--name", "bench", "--role",
                              "admin", "--data-dir", str(data)], capture_output=True, text=True,
                             check=True).stdout.strip()
        for name in args.models.split(","):
            build, sample = BUILDERS[name]
            path = build(work / f"{name}.onnx")
            up = httpx.post(f"http://127.0.0.1:{port}/api/v1/models/{name}/versions", content=path.read_bytes(),
                            headers={"Authorization": f"Bearer {key}"}, timeout=600)
            up.raise_for_status()
            served_on = httpx.get(f"http://127.0.0.1:{port}/api/v1/models/{name}/versions/1/config",
                                  headers={"Authorization": f"Bearer {key}"}).json().get("device")
            if served_on != args.device:  # FlashML falls back to the CPU, with a warning, where CUDA fails
                sys.exit(f"FlashML runs {name} on {served_on}, not on {args.device}: no comparison to make.")
            as_json, as_binary, head_len = _bodies(work, name, sample)
            naive_port = _free_port()
            naive = subprocess.Popen([sys.executable, "-m", "uvicorn", "bench.naive_server:app", "--port",
                                      str(naive_port), "--log-level", "warning"], cwd=HERE.parent,
                                     env={**os.environ, "MODEL": str(path), "DEVICE": args.device})
            procs.append(naive)
            _wait(f"http://127.0.0.1:{naive_port}/docs")
            floor, floor_port = start_floor(path, args.device)
            procs.append(floor)
            tuned = httpx.get(f"http://127.0.0.1:{port}/api/v1/models/{name}/versions/1/config",
                              headers={"Authorization": f"Bearer {key}"}).json()["config"]
            peer_batching = peer_config.PeerBatching(max_queue_delay_us=int(tuned.get("max_queue_delay_us") or 0))
            started = []
            for peer in peers:  # one by one, so those already up are stopped if a later one fails to start
                started.append(launch.start(peer, path, name, peer_batching, work))
                running_peers.append(started[-1])
            bodies = {"json": (as_json, 0), "binary": (as_binary, head_len)}
            naive_url = f"http://127.0.0.1:{naive_port}/v2/models/{name}/infer"
            url = f"http://127.0.0.1:{port}/v2/models/{name}/infer"
            runs: dict = {"raw": [], "naive": {c: [] for c in clients}, "flashml": {c: [] for c in clients},
                          "flashml_binary": {c: [] for c in clients}, "floor": [],
                          **{series: {c: [] for c in clients} for peer in peers for series, _ in compare.SERIES[peer]}}
            for _ in range(args.rounds):  # interleaved, so a slow minute of the machine hits every server
                runs["raw"].append(raw_ort.measure(path, sample, raw_batches, seconds=1.0, device=args.device,
                                                   confirm_seconds=2.0))
                for c in clients:
                    runs["naive"][c].append(wrk(naive_url, c, args.seconds, as_json, key, lua, server_pid=naive.pid))
                    runs["flashml"][c].append(wrk(url, c, args.seconds, as_json, key, lua, server_pid=fl.pid))
                    runs["flashml_binary"][c].append(wrk(url, c, args.seconds, as_binary, key, lua, head_len,
                                                         server_pid=fl.pid))
                    if c == 1:
                        runs["floor"].append(wrk(f"http://127.0.0.1:{floor_port}/thread", 1, args.seconds,
                                                 as_binary, key, lua, head_len, server_pid=floor.pid))
                    for peer in started:
                        for series, body in compare.SERIES[peer.peer]:
                            runs[series][c].append(wrk(peer.infer_url, c, args.seconds, bodies[body][0], key, lua,
                                                       bodies[body][1], server_pid=peer.process.pid))
            ceiling = wrk(f"http://127.0.0.1:{floor_port}/noop", max(clients), args.seconds, as_binary, key, lua,
                          head_len)  # what the load generator itself can send: a server that answers at once
            by_instances = _instance_variants(port, key, name, args, clients, url, as_binary, lua, head_len, fl.pid)
            for server in (naive, floor):
                server.terminate()
                server.wait(10)
            for peer in started:
                launch.stop(peer)
            raw = dict(runs["raw"][-1])
            raw["best_samples_per_s"] = float(np.median([r["best_samples_per_s"] for r in runs["raw"]]))
            raw["sweep_best_samples_per_s"] = float(np.median([r["sweep_best_samples_per_s"] for r in runs["raw"]]))
            raw["p50_ms_single"] = float(np.median([r["p50_ms_single"] for r in runs["raw"]]))
            raw["p99_ms_single"] = float(np.median([r["p99_ms_single"] for r in runs["raw"]]))
            raw["best_batch"] = int(np.median([r["best_batch"] for r in runs["raw"]]))
            changing = [r["alternating_shapes_samples_per_s"] for r in runs["raw"]
                        if r.get("alternating_shapes_samples_per_s")]
            raw["alternating_shapes_samples_per_s"] = float(np.median(changing)) if changing else None
            config = httpx.get(f"http://127.0.0.1:{port}/api/v1/models/{name}/versions/1/config",
                               headers={"Authorization": f"Bearer {key}"}).json()
            results["models"][name] = {
                "raw": raw, "flashml_config": config["config"], "batch_histogram": config["stats"]["histogram"],
                "batches": config["stats"]["batches"], "inline_batches": config["stats"].get("inline_batches", 0),
                "chained_batches": config["stats"].get("chained_batches", 0),
                "wide_batches": config["stats"].get("wide_batches", 0),
                "instances_measured": (config.get("performance") or {}).get("instances"),
                **{server: {c: _median(v) for c, v in runs[server].items()}
                   for server in ("naive", "flashml", "flashml_binary",
                                  *(series for peer in peers for series, _ in compare.SERIES[peer]))},
                "peer_batching": {"max_batch_size": peer_batching.max_batch_size,
                                  "max_queue_delay_us": peer_batching.max_queue_delay_us},
                "floor": {1: _median(runs["floor"])} if runs["floor"] else {},
                "loadgen_ceiling": {max(clients): ceiling}, "flashml_binary_by_instances": by_instances}
    finally:
        for peer in running_peers:
            launch.stop(peer)
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait(30)
    results["peer_ratios"] = compare.ratios(results["models"])
    results["peer_target"] = compare.verdict(results["peer_ratios"]) if peers else None
    args.out.write_text(json.dumps(results, indent=2))
    print(report(results))


def _available_peers(names: str, device: str, root: Path = peer_config.PEERS_DIR) -> list[str]:
    """The peers asked for whose environments exist; one line for each that is not run, and why."""
    asked = peer_config.parse_peers(names)
    if asked and device != "cpu":
        print(f"peers: run on the CPU only; {', '.join(asked)} skipped on {device}")
        return []
    for line in filter(None, (peer_config.missing(peer, root) for peer in asked)):
        print(line)
    return [peer for peer in asked if peer_config.missing(peer, root) is None]


def _instance_variants(port: int, key: str, name: str, args, clients: list[int], url: str, body: Path, lua: Path,
                       head_len: int, pid: int) -> dict:
    """FlashML (binary tensors) at each ``--instances`` count, set live through the config API, then put back."""
    counts = [int(n) for n in args.instances.split(",") if n.strip()]
    if not counts:
        return {}
    config_url = f"http://127.0.0.1:{port}/api/v1/models/{name}/versions/1/config"
    auth = {"Authorization": f"Bearer {key}"}
    before = httpx.get(config_url, headers=auth).json()["config"]["instance_count"]
    out: dict = {}
    for n in counts:
        httpx.patch(config_url, json={"instance_count": n}, headers=auth, timeout=300).raise_for_status()
        wrk(url, max(clients), 1, body, key, lua, head_len)  # first runs at new batch shapes, unmeasured
        out[n] = {c: wrk(url, c, args.seconds, body, key, lua, head_len, server_pid=pid) for c in clients if c > 1}
    httpx.patch(config_url, json={"instance_count": before}, headers=auth, timeout=300).raise_for_status()
    return out


def report(results: dict) -> str:
    lines = ["| model | clients | server | req/s | p50 ms | p99 ms | CPU us/req | vs naive | vs raw best batch |",
             "|---|---|---|---|---|---|---|---|---|"]
    gaps = []
    for name, row in results["models"].items():
        best = row["raw"]["best_samples_per_s"]
        floor = {int(c): r for c, r in row.get("floor", {}).items()}
        for c, naive in row["naive"].items():
            servers = [("naive", naive), ("FlashML", row["flashml"][c]),
                       ("FlashML, binary tensors", row["flashml_binary"][c])]
            if int(c) in floor:
                servers.append(("floor: Granian + model in a thread", floor[int(c)]))
            servers += [(label, row[series][c]) for series, label in compare.LABELS.items() if series in row]
            for label, r in servers:
                lines.append(f"| {name} | {c} | {label} | {r['rps']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
                             f"{r.get('cpu_us_per_request', 0):.0f} | {r['rps'] / naive['rps']:.2f} | "
                             f"{r['rps'] / best:.2f} |")
        sweep = row["raw"].get("sweep_best_samples_per_s")
        measured_again = f", the sweep's highest {sweep:.0f}" if sweep and sweep != best else ""
        lines.append(f"| {name} | - | raw ORT (batch {row['raw']['best_batch']}{measured_again}) | "
                     f"{best:.0f} samples/s | "
                     f"{row['raw']['p50_ms_single']:.3f} (1 sample) | {row['raw']['p99_ms_single']:.3f} | | | 1.00 |")
        for n, by_clients in (row.get("flashml_binary_by_instances") or {}).items():
            for c, r in by_clients.items():
                lines.append(f"| {name} | {c} | FlashML, binary, instance_count {n} | {r['rps']:.0f} | "
                             f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r.get('cpu_us_per_request', 0):.0f} | "
                             f"{r['rps'] / row['naive'][c]['rps']:.2f} | {r['rps'] / best:.2f} |")
        for c, r in (row.get("loadgen_ceiling") or {}).items():
            lines.append(f"| {name} | {c} | load generator alone (a server that answers at once) | {r['rps']:.0f} | "
                         f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | | | {r['rps'] / best:.2f} |")
        changing = row["raw"].get("alternating_shapes_samples_per_s")
        if changing:
            lines.append(f"| {name} | - | raw ORT, batches of {row['raw']['best_batch']} and one less in turn | "
                         f"{changing:.0f} samples/s | | | | | {changing / best:.2f} |")
        one = {int(c): r for c, r in row["flashml_binary"].items()}.get(1)
        if one is not None and 1 in floor:
            raw_p50 = row["raw"]["p50_ms_single"]
            gaps.append(f"{name}: p50 at one client over raw single inference: FlashML (binary) "
                        f"{one['p50_ms'] - raw_p50:+.2f} ms, the floor {floor[1]['p50_ms'] - raw_p50:+.2f} ms")
    peer_rows = results.get("peer_ratios") or []
    versus = ["", "FlashML's req/s over each peer's:", "", compare.table(peer_rows), "",
              results["peer_target"]] if peer_rows else []
    return "\n".join(lines + ([""] + gaps if gaps else []) + versus)


if __name__ == "__main__":
    main()
