"""What the pool and the API need from whatever executes a version's requests.

``flashml.runtime.batching.Batcher`` is the one implementation: every version is served through a scheduler.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np


class Runner(Protocol):
    async def run(self, inputs: dict[str, np.ndarray], output_names: list[str], **scheduling: Any
                  ) -> dict[str, np.ndarray]: ...

    async def close(self) -> None: ...


class Execute(Protocol):
    """One execution instance: runs a batch (blocking) and answers the outputs asked for, by name."""

    def __call__(self, inputs: dict[str, np.ndarray], output_names: list[str], /) -> dict[str, np.ndarray]: ...


class ModelRuntimeError(Exception):
    """ONNX Runtime failed while running a request (the model's own message is kept)."""
