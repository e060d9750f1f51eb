"""What observability costs on the request path: FlashML before issue 25 against FlashML now, in one run.

    python -m bench.observability [--baseline REV] [--seconds 5] [--rounds 3] [--clients 1,32] [--model mlp]

Four servers on the same model, each started once and driven in interleaved rounds (so a slow minute of the
machine hits every one), with Triton's binary tensors:

- **before**: the commit ``--baseline`` (default: the last one before issue 25), checked out in a temporary git
  worktree and run from it: no /metrics, no request ids, no access log.
- **quiet**: FlashML now with ``access_log`` off and nobody scraping; request ids and the counters stay on.
- **observed**: FlashML now as installed: the access log on (written to a file), and /metrics scraped every
  second for the whole run, as a Prometheus would.
- **logged**: as observed, plus prediction logging of every request (``sample_rate`` 1, full inputs and
  outputs), the heaviest setting a user can choose.

Prints throughput and p50/p99 per server and client count, and each one's ratio to *before*; writes
``bench/results_observability.json``. Needs ``wrk`` (Debian package) or falls back to bench/loadgen.py.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import httpx

from bench import run as bench_run
from bench.models import BUILDERS
from bench.run import LUA, _bodies, _free_port, _median, _wait, wrk

HERE = Path(__file__).resolve().parent
BASELINE = "be10f41"  # main just before issue 25's first commit
SERVERS = ("before", "quiet", "observed", "logged")


class Server:
    """One `flashml serve` process with its data folder, admin key and uploaded model."""

    def __init__(self, name: str, work: Path, source: Path | None, extra: list[str], log: Path | None) -> None:
        self.name, self.port = name, _free_port()
        self.data = work / f"data-{name}"
        env = {**os.environ}
        if source is not None:  # run the baseline's code: its folder first on the import path
            env["PYTHONPATH"] = str(source)
        self.env = env
        stderr = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            [sys.executable, "-m", "flashml", "serve", "--port", str(self.port), "--data-dir", str(self.data),
             "--device", "cpu", "--log-level", "info" if log else "warning", *extra],
            stdout=subprocess.DEVNULL, stderr=stderr, env=env)
        _wait(f"http://127.0.0.1:{self.port}/v2/health/live")
        self.key = subprocess.run([sys.executable, "-m", "flashml", "keys", "create", "--name", "bench", "--role",
                                   "admin", "--data-dir", str(self.data)], capture_output=True, text=True,
                                  check=True, env=env).stdout.strip()
        self.api = httpx.Client(base_url=f"http://127.0.0.1:{self.port}",
                                headers={"Authorization": f"Bearer {self.key}"}, timeout=600)

    def upload(self, name: str, path: Path) -> None:
        self.api.post(f"/api/v1/models/{name}/versions", content=path.read_bytes()).raise_for_status()

    def stop(self) -> None:
        self.api.close()
        self.process.terminate()
        self.process.wait(30)


class Scraper:
    """Reads /metrics every ``interval`` seconds in a thread while it runs, as a Prometheus would."""

    def __init__(self, url: str, interval: float = 1.0) -> None:
        self.url, self.interval, self.scrapes = url, interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.wait(self.interval):
                client.get(self.url).raise_for_status()
                self.scrapes += 1

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(15)
        return self.scrapes


def _worktree(rev: str, work: Path) -> Path:
    path = work / "baseline"
    subprocess.run(["git", "worktree", "add", "--detach", "--quiet", str(path), rev], cwd=HERE.parent, check=True)
    return path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--baseline", default=BASELINE, help="git revision to compare with (before issue 25)")
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clients", default="1,32")
    ap.add_argument("--model", default="mlp", choices=sorted(BUILDERS))
    ap.add_argument("--out", type=Path, default=HERE / "results_observability.json")
    args = ap.parse_args()
    bench_run.LOADGEN = "wrk" if subprocess.run(["which", "wrk"], capture_output=True).returncode == 0 else "python"
    clients = [int(c) for c in args.clients.split(",")]
    work = Path(tempfile.mkdtemp(prefix="flashml-bench-obs-"))
    lua = work / "post.lua"
    lua.write_text(LUA)
    build, sample = BUILDERS[args.model]
    model = build(work / f"{args.model}.onnx")
    _, as_binary, head_len = _bodies(work, args.model, sample)
    baseline = _worktree(args.baseline, work)
    servers: dict[str, Server] = {}
    scrapers: list[Scraper] = []
    try:
        servers["before"] = Server("before", work, baseline, [], None)
        servers["quiet"] = Server("quiet", work, None, ["--no-access-log"], None)
        servers["observed"] = Server("observed", work, None, [], work / "observed.log")
        servers["logged"] = Server("logged", work, None, [], work / "logged.log")
        for server in servers.values():
            server.upload(args.model, model)
        servers["logged"].api.patch(f"/api/v1/models/{args.model}", json={"prediction_log": {
            "enabled": True, "sample_rate": 1.0, "mode": "full"}}).raise_for_status()
        scrapers = [Scraper(f"http://127.0.0.1:{servers[n].port}/metrics") for n in ("observed", "logged")]
        runs = {n: {c: [] for c in clients} for n in SERVERS}
        for _ in range(args.rounds):
            for c in clients:
                for name, server in servers.items():
                    url = f"http://127.0.0.1:{server.port}/v2/models/{args.model}/infer"
                    runs[name][c].append(wrk(url, c, args.seconds, as_binary, server.key, lua, head_len,
                                             server_pid=server.process.pid))
        scrapes = [s.stop() for s in scrapers]
        logged = servers["logged"].api.get(f"/api/v1/models/{args.model}").json().get("prediction_log")
    finally:
        for scraper in scrapers:
            scraper.stop()
        for server in servers.values():
            server.stop()
        subprocess.run(["git", "worktree", "remove", "--force", str(baseline)], cwd=HERE.parent, check=False)
    medians = {n: {c: _median(v) for c, v in runs[n].items()} for n in SERVERS}
    results = {"machine": {"cores": os.cpu_count()}, "model": args.model, "seconds": args.seconds,
               "rounds": args.rounds, "loadgen": bench_run.LOADGEN, "baseline": args.baseline,
               "scrapes": scrapes, "prediction_log": logged, "servers": medians,
               "ratios_to_before": {n: {c: round(medians[n][c]["rps"] / medians["before"][c]["rps"], 3)
                                        for c in clients} for n in SERVERS}}
    args.out.write_text(json.dumps(results, indent=2))
    print(report(results))


def report(results: dict) -> str:
    lines = ["| server | clients | req/s | p50 ms | p99 ms | CPU us/req | vs before |", "|---|---|---|---|---|---|---|"]
    for name, by_clients in results["servers"].items():
        for c, m in by_clients.items():
            lines.append(f"| {name} | {c} | {m['rps']:.0f} | {m['p50_ms']:.2f} | {m['p99_ms']:.2f} | "
                         f"{m['cpu_us_per_request']:.0f} | {results['ratios_to_before'][name][c]:.2f}x |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
