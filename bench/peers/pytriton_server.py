"""Triton's server core through PyTriton: Triton's HTTP front end and dynamic batcher in front of one ONNX Runtime
session, run by a Python callable with ``@batch`` (the way PyTriton's documentation serves a model).

Runs in the PyTriton environment (``bench/.peers/pytriton``), started by ``bench.peers.launch``:

    python -m bench.peers.pytriton_server --model mlp.onnx --name mlp --http-port 8300 --grpc-port 8301 \
        --metrics-port 8302 --max-batch-size 64 --max-queue-delay-us 0

It stops on SIGTERM or SIGINT, and PyTriton then stops tritonserver and removes its workspace.
"""

from __future__ import annotations

import argparse
import signal

import numpy as np
from pytriton.decorators import batch
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig

from bench.peers import ort_session
from bench.peers.config import PeerBatching, triton_model_config

DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64,
          "tensor(int32)": np.int32}


def _tensor(arg) -> Tensor:
    """A model input or output as PyTriton declares it: without the batch dimension, -1 where it is free."""
    return Tensor(name=arg.name, dtype=DTYPES[arg.type],
                  shape=tuple(d if isinstance(d, int) and d > 0 else -1 for d in arg.shape[1:]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--name", required=True)
    for port in ("--http-port", "--grpc-port", "--metrics-port"):
        ap.add_argument(port, type=int, required=True)
    ap.add_argument("--max-batch-size", type=int, default=PeerBatching.max_batch_size)
    ap.add_argument("--max-queue-delay-us", type=int, default=PeerBatching.max_queue_delay_us)
    args = ap.parse_args()

    session = ort_session.session(args.model)
    input_names = [i.name for i in session.get_inputs()]
    output_names = [o.name for o in session.get_outputs()]

    @batch
    def infer(**inputs: np.ndarray) -> dict[str, np.ndarray]:
        outs = session.run(output_names, {name: inputs[name] for name in input_names})
        return dict(zip(output_names, outs, strict=True))

    settings = triton_model_config(PeerBatching(args.max_batch_size, args.max_queue_delay_us))
    config = ModelConfig(max_batch_size=settings["max_batch_size"],
                         batcher=DynamicBatcher(**settings["dynamic_batching"]))
    triton_config = TritonConfig(http_address="127.0.0.1", http_port=args.http_port, grpc_address="127.0.0.1",
                                 grpc_port=args.grpc_port, metrics_port=args.metrics_port, log_verbose=0)
    # PyTriton stops cleanly on KeyboardInterrupt: bench.run stops it with SIGTERM, and SIGINT is restored too,
    # since a shell's background job starts with SIGINT ignored.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with Triton(config=triton_config) as triton:
        triton.bind(model_name=args.name, infer_func=infer, inputs=[_tensor(i) for i in session.get_inputs()],
                    outputs=[_tensor(o) for o in session.get_outputs()], config=config)
        triton.serve()


if __name__ == "__main__":
    main()
