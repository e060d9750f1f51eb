"""Online latency with and without a batch job running on the same server and the same model.

    python -m bench.jobs [--seconds 5] [--rounds 3] [--clients 8] [--model mlp] [--rows 200000]

Starts `flashml serve --device cpu`, uploads the model and a NumPy dataset for it, then alternates: wrk
with CLIENTS connections alone, and wrk while batch jobs score the dataset through the same batcher at
the batch priority. Prints online p50/p99 both ways, their ratio (target: p99 within 20 %) and the rows/s
the job scored meanwhile. Results go to bench/results_jobs.json. Needs `wrk` (Debian package).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from bench.models import BUILDERS
from bench.run import LUA, _bodies, _free_port, _median, _wait, wrk

HERE = Path(__file__).resolve().parent
QUEUED_JOBS = 4  # jobs run one at a time: a few queued keep one running for the whole wrk run


def _start_jobs(api: httpx.Client, model: str, dataset: str, chunk_rows: int) -> list[int]:
    ids = []
    for _ in range(QUEUED_JOBS):
        r = api.post("/api/v1/jobs", json={"model": model, "dataset": dataset, "chunk_rows": chunk_rows,
                                           "output_format": "npz"})
        r.raise_for_status()
        ids.append(r.json()["job"]["id"])
    deadline = time.monotonic() + 30
    while api.get(f"/api/v1/jobs/{ids[0]}").json()["state"] == "queued" and time.monotonic() < deadline:
        time.sleep(0.05)
    return ids


def _rows_done(api: httpx.Client, ids: list[int]) -> int:
    return sum(api.get(f"/api/v1/jobs/{i}").json()["rows_done"] for i in ids)


def _stop_jobs(api: httpx.Client, ids: list[int]) -> bool:
    """Cancel what is left; True when a job was still running (so the run was measured under load)."""
    busy = False
    for i in ids:
        state = api.get(f"/api/v1/jobs/{i}").json()["state"]
        busy = busy or state == "running"
        if state in ("queued", "running", "paused"):
            api.post(f"/api/v1/jobs/{i}/cancel")
    deadline = time.monotonic() + 30
    while any(api.get(f"/api/v1/jobs/{i}").json()["state"] == "running" for i in ids):
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    return busy


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5, help="seconds per wrk run")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds; medians are reported")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--model", default="mlp", choices=sorted(BUILDERS))
    ap.add_argument("--rows", type=int, default=200_000, help="rows in the job's dataset")
    ap.add_argument("--chunk-rows", type=int, default=5000)
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install wrk")
    work = Path(tempfile.mkdtemp(prefix="flashml-bench-jobs-"))
    lua = work / "post.lua"
    lua.write_text(LUA)
    port = _free_port()
    data = work / "data"
    server = subprocess.Popen([sys.executable, "-m", "flashml", "serve", "--port", str(port), "--data-dir",
                               str(data), "--device", "cpu", "--log-level", "warning"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait(f"{base}/v2/health/live")
        key = subprocess.run([sys.executable, "-m", "flashml", "keys", "create", "--name", "bench", "--role",
                              "admin", "--data-dir", str(data)], capture_output=True, text=True,
                             check=True).stdout.strip()
        api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=600)
        build, sample = BUILDERS[args.model]
        path = build(work / f"{args.model}.onnx")
        api.post(f"/api/v1/models/{args.model}/versions", content=path.read_bytes()).raise_for_status()
        buf = io.BytesIO()
        np.save(buf, np.random.default_rng(1).standard_normal([args.rows, *sample]).astype(np.float32))
        dataset = api.post("/api/v1/datasets", params={"filename": "x.npy"}, content=buf.getvalue())
        dataset.raise_for_status()
        as_json, _, _ = _bodies(work, args.model, sample)
        url = f"{base}/v2/models/{args.model}/infer"
        alone, loaded, job_rates = [], [], []
        for _ in range(args.rounds):
            alone.append(wrk(url, args.clients, args.seconds, as_json, key, lua))
            ids = _start_jobs(api, args.model, dataset.json()["id"], args.chunk_rows)
            before, started = _rows_done(api, ids), time.monotonic()
            loaded.append(wrk(url, args.clients, args.seconds, as_json, key, lua))
            rate = (_rows_done(api, ids) - before) / (time.monotonic() - started)
            if not _stop_jobs(api, ids):
                print("warning: the jobs finished before wrk did; use more --rows", file=sys.stderr)
            job_rates.append(rate)
        result = {"model": args.model, "clients": args.clients, "seconds": args.seconds, "rounds": args.rounds,
                  "cores": os.cpu_count(), "alone": _median(alone), "with_job": _median(loaded),
                  "job_rows_per_s": float(np.median(job_rates))}
        result["p99_ratio"] = result["with_job"]["p99_ms"] / result["alone"]["p99_ms"]
        (HERE / "results_jobs.json").write_text(json.dumps(result, indent=2))
        print(report(result))
    finally:
        server.terminate()
        server.wait(30)
        shutil.rmtree(work, ignore_errors=True)


def report(r: dict) -> str:
    a, w = r["alone"], r["with_job"]
    return "\n".join([
        f"| {r['model']}, {r['clients']} clients | req/s | p50 ms | p99 ms |", "|---|---|---|---|",
        f"| online alone | {a['rps']:.0f} | {a['p50_ms']:.2f} | {a['p99_ms']:.2f} |",
        f"| online + batch job | {w['rps']:.0f} | {w['p50_ms']:.2f} | {w['p99_ms']:.2f} |",
        "", f"p99 with a job / alone: {r['p99_ratio']:.2f} (target: at most 1.20); the job scored "
            f"{r['job_rows_per_s']:.0f} rows/s meanwhile."])


if __name__ == "__main__":
    main()
