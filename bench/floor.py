"""The latency floor of this machine for one client: what a server that does nothing but run the model costs.

    python -m bench.floor [--seconds 5] [--rounds 3] [--models cnn,mlp]

Raw ONNX Runtime's single-sample p50 (in-process, no HTTP) against `bench/floor_app.py` served by Granian the
way FlashML is (RSGI, one worker), driven by wrk with one connection and the same binary-tensor body as
`bench.run`: answering at once (the HTTP round trip), running the model in a worker thread (what any server
that keeps its event loop free must do), and running it on the event loop. The gap between the thread
figure and raw is the part of FlashML's one-client latency that no serving code can remove here.
Results go to bench/results_floor.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from bench import raw_ort
from bench.models import BUILDERS
from bench.run import HERE, LUA, _bodies, start_floor, wrk

ROUTES = ("noop", "thread", "inline")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--models", default="cnn,mlp")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="flashml-floor-"))
    lua = work / "post.lua"
    lua.write_text(LUA)
    results: dict = {"seconds": args.seconds, "rounds": args.rounds, "models": {}}
    for name in args.models.split(","):
        build, sample = BUILDERS[name]
        model = build(work / f"{name}.onnx")
        _, body, header_length = _bodies(work, name, sample)
        server, port = start_floor(model)
        try:
            runs: dict[str, list[float]] = {"raw": [], **{r: [] for r in ROUTES}}
            for _ in range(args.rounds):
                raw = raw_ort.measure(model, sample, batch_sizes=(1,), seconds=1)
                runs["raw"].append(raw["p50_ms_single"])
                for route in ROUTES:
                    out = wrk(f"http://127.0.0.1:{port}/{route}", 1, args.seconds, body, "-", lua, header_length)
                    runs[route].append(out["p50_ms"])
        finally:
            server.terminate()
            server.wait(10)
        medians = {k: float(np.median(v)) for k, v in runs.items()}
        results["models"][name] = {"p50_ms": medians, "runs": runs}
        print(f"{name}: raw p50 {medians['raw']:.2f} ms; one client over HTTP: nothing {medians['noop']:.2f} ms, "
              f"model in a thread {medians['thread']:.2f} ms (+{medians['thread'] - medians['raw']:.2f}), "
              f"model on the loop {medians['inline']:.2f} ms (+{medians['inline'] - medians['raw']:.2f})")
    (HERE / "results_floor.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
