"""Make each peer's virtual environment under ``bench/.peers/<peer>/``, from PyPI, with the running interpreter.

    python -m bench.peers.setup                     # both peers (a few minutes, about 850 MB)
    python -m bench.peers.setup --peers mlserver    # one of them

Each peer gets an environment of its own: PyTriton and MLServer pin packages that disagree with FlashML's (and
with each other's). Both get the ONNX Runtime release FlashML runs here, so all servers run the same kernels.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import subprocess
import sys

from bench.peers import config


def installed_onnxruntime() -> str:
    """The ONNX Runtime release of this environment (the CPU wheel of the same release goes to the peers)."""
    for dist in ("onnxruntime", "onnxruntime-gpu"):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    sys.exit("ONNX Runtime is not installed here: install FlashML first (pip install '.[bench]')")


def make(peer: str, onnxruntime_version: str) -> None:
    venv = config.venv_dir(peer)
    print(f"{peer}: {venv}", flush=True)
    # The running interpreter, so the peer's Python is the one the PyTriton quirk is worked around for.
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(config.venv_python(peer)), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, *config.requirements(peer, onnxruntime_version)], check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--peers", default=",".join(config.PEERS), help=f"of {', '.join(config.PEERS)}")
    args = ap.parse_args()
    version = installed_onnxruntime()
    for peer in config.parse_peers(args.peers):
        make(peer, version)
    print("done")


if __name__ == "__main__":
    main()
