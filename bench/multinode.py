"""Throughput of 1, 2 and 3 FlashML nodes on one model through HAProxy (issue 27, item 5).

    python -m bench.multinode [--seconds 5] [--rounds 3] [--clients 32] [--model mlp] [--nodes 1,2,3]

Starts the test suite's cluster (tests/helpers/cluster.py): three `flashml serve --device cpu` nodes sharing one
PostgreSQL database (a throw-away cluster of Debian's PostgreSQL) and one S3 bucket (moto), behind Debian's
HAProxy, with no per-request logging anywhere. The model is uploaded once through the balancer and loaded by every
node. Each round then drives, with wrk and the same V2 JSON body as `bench.run`:

- one node directly (no balancer), the same node as a one-box server would answer;
- HAProxy with 1, 2 and 3 nodes in its rotation (the others taken out through its admin socket: they keep
  running, idle, as a node out of rotation would), configured as packaging/cluster/haproxy.cfg ships.

Rounds interleave the variants, so a slow minute of the machine hits each of them; the report gives medians, and
the CPU time per answered request of the nodes, HAProxy and PostgreSQL (from /proc), and the rows per batch the
nodes ran. Results go to bench/results_multinode.json (--out). Needs wrk, haproxy and postgresql (Debian packages).

On a machine with two cores, all the nodes, HAProxy, PostgreSQL and wrk share the same two cores: the figures
show what the shared parts (the extra hop, the database, the change feed) cost, not how FlashML scales with nodes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.models import BUILDERS
from bench.run import LUA, _bodies, _cpu_seconds, _median, wrk
from tests.helpers.cluster import Cluster, HAProxy
from tests.helpers.postgres import PostgresCluster

HERE = Path(__file__).resolve().parent
OUT = HERE / "results_multinode.json"


def _postmaster(pg: PostgresCluster) -> int:
    return int((pg.data / "postmaster.pid").read_text().split()[0])


def _postgres_cpu_seconds(postmaster: int) -> float:
    """CPU time of PostgreSQL so far: its live processes, and the backends that exited (the postmaster collected
    them, so their time is in its children's columns of /proc/<pid>/stat)."""
    fields = Path(f"/proc/{postmaster}/stat").read_text().rsplit(")", 1)[1].split()
    return _cpu_seconds(postmaster) + (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def _rotation(lb: HAProxy, c: Cluster, count: int) -> None:
    """Keep the first ``count`` nodes in ``lb``'s rotation and take the others out (they keep running)."""
    for i, node in enumerate(c.nodes):
        lb.command(f"{'enable' if i < count else 'disable'} server nodes/{node.name}")
    for i, node in enumerate(c.nodes):
        lb.wait_state(node.name, "UP" if i < count else "MAINT")


def _batches(c: Cluster, key: str, model: str) -> tuple[int, int]:
    """Batches run and rows in them so far, over every node (each version's batcher counts its own)."""
    batches = rows = 0
    for node in c.nodes:
        stats = httpx.get(f"{node.url}/api/v1/models/{model}/versions/1", timeout=10,
                          headers={"Authorization": f"Bearer {key}"}).json()["stats"]
        batches, rows = batches + stats["batches"], rows + stats["rows"]
    return batches, rows


def _measure(url: str, args, body: Path, key: str, lua: Path, pids: dict[str, list[int]], c: Cluster) -> dict:
    """One wrk run, with the CPU time per answered request of each group of processes and the rows per batch."""
    def cpu(name: str) -> float:
        return sum((_postgres_cpu_seconds if name == "postgres" else _cpu_seconds)(p) for p in pids[name])

    before, batches_before = {name: cpu(name) for name in pids}, _batches(c, key, args.model)
    run = wrk(url, args.clients, args.seconds, body, key, lua)
    batches, rows = (after - was for after, was in zip(_batches(c, key, args.model), batches_before, strict=True))
    run["rows_per_batch"] = rows / max(1, batches)
    requests = run["rps"] * args.seconds
    for name in pids:
        used = cpu(name) - before[name]
        run[f"cpu_us_{name}"] = used * 1e6 / max(1.0, requests)
    return run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5, help="seconds per wrk run")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--model", default="mlp", choices=sorted(BUILDERS))
    ap.add_argument("--nodes", default="1,2,3", help="rotation sizes to measure through HAProxy")
    ap.add_argument("--out", type=Path, default=OUT, help="where the figures go (JSON)")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install wrk")
    counts = [int(n) for n in args.nodes.split(",")]
    work = Path(tempfile.mkdtemp(prefix="flashml-bench-multinode-"))
    lua = work / "post.lua"
    lua.write_text(LUA)
    pg = PostgresCluster().start()
    c = Cluster(work / "cluster", max(counts), pg.new_database(), "--log-level", "warning", lb_log=False)
    try:
        c.start()
        key = c.create_key("bench")
        build, sample = BUILDERS[args.model]
        path = build(work / f"{args.model}.onnx")
        with httpx.Client(base_url=c.lb_url, headers={"Authorization": f"Bearer {key}"}, timeout=600) as api:
            r = api.post(f"/api/v1/models/{args.model}/versions", content=path.read_bytes())
            r.raise_for_status()
            config = r.json()["config"]
        for node in c.nodes:  # every node loads it from the store (the change feed), before any load starts
            deadline = time.monotonic() + 60
            while not httpx.get(f"{node.url}/api/v1/models/{args.model}/versions/1", timeout=10,
                                headers={"Authorization": f"Bearer {key}"}).json().get("loaded"):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{node.name} did not load the model")
                time.sleep(0.1)
        as_json, _, _ = _bodies(work, args.model, sample)
        lb = c.lb
        assert lb is not None and lb.proc is not None
        pids = {"nodes": [n.proc.pid for n in c.nodes if n.proc is not None], "haproxy": [lb.proc.pid],
                "postgres": [_postmaster(pg)]}
        path_ = f"/v2/models/{args.model}/infer"
        runs: dict[str, list[dict]] = {"direct, 1 node": []}
        for _ in range(args.rounds):
            _rotation(lb, c, max(counts))
            runs["direct, 1 node"].append(_measure(c.nodes[0].url + path_, args, as_json, key, lua, pids, c))
            for n in counts:
                _rotation(lb, c, n)
                runs.setdefault(f"haproxy, {n} node{'s' * (n > 1)}", []).append(
                    _measure(lb.url + path_, args, as_json, key, lua, pids, c))
        connections = c.fetch("SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database()")
        result = {"model": args.model, "clients": args.clients, "seconds": args.seconds, "rounds": args.rounds,
                  "cores": os.cpu_count(), "batching": {k: config.get(k) for k in ("max_batch_size",
                                                                                   "max_queue_delay_us")},
                  "postgres_connections_after": connections[0]["n"],
                  "variants": {name: _median(r) for name, r in runs.items()},
                  "raw_rounds": runs}
        args.out.write_text(json.dumps(result, indent=2))
        print(report(result))
    finally:
        c.stop()
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)


def report(result: dict) -> str:
    """A Markdown table of the medians, each variant against one node answering directly."""
    base = result["variants"]["direct, 1 node"]["rps"]
    lines = [f"{result['model']}, {result['clients']} clients, {result['rounds']} rounds of {result['seconds']} s "
             f"({result['cores']} cores):", "",
             "| variant | req/s | vs one node direct | p50 ms | p99 ms | non-2xx | rows per batch "
             "| CPU us/req: nodes | HAProxy | PostgreSQL |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, v in result["variants"].items():
        lines.append(f"| {name} | {v['rps']:,.0f} | {v['rps'] / base:.2f} | {v['p50_ms']:.2f} | {v['p99_ms']:.2f} | "
                     f"{v['non_2xx']:.0f} | {v['rows_per_batch']:.1f} | {v['cpu_us_nodes']:.0f} | "
                     f"{v['cpu_us_haproxy']:.0f} | "
                     f"{v['cpu_us_postgres']:.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
