"""Run one batch on one ONNX Runtime session: a blocking call the batcher sends to a worker thread."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from flashml.runtime.ort_io import needs_ortvalues, run_with_bf16
from flashml.runtime.runner import Execute, ModelRuntimeError


class SessionExecutor:
    """One execution instance: a session, and the fastest way to feed it on its device."""

    def __init__(self, session: ort.InferenceSession, device: str) -> None:
        self.session = session
        self.device = device
        if needs_ortvalues(session):
            self._run = self._run_bf16
        elif device.startswith("cuda") and "CUDAExecutionProvider" in session.get_providers():
            self._run = self._run_bound
        else:
            self._run = self._run_plain

    def __call__(self, inputs: dict[str, np.ndarray], output_names: list[str]) -> dict[str, np.ndarray]:
        try:
            values = self._run(inputs, output_names)
        except Exception as exc:  # noqa: BLE001 - ORT raises many types; the caller gets its message
            raise ModelRuntimeError(str(exc)) from exc
        return dict(zip(output_names, values, strict=True))

    def _run_plain(self, inputs: dict[str, np.ndarray], output_names: list[str]) -> list[np.ndarray]:
        return self.session.run(output_names, inputs)

    def _run_bf16(self, inputs: dict[str, np.ndarray], output_names: list[str]) -> list[np.ndarray]:
        return run_with_bf16(self.session, inputs, output_names)

    def _run_bound(self, inputs: dict[str, np.ndarray], output_names: list[str]) -> list[np.ndarray]:
        # I/O binding: inputs are copied to the GPU once and outputs land in CPU memory ORT allocates for
        # them, instead of session.run's extra staging copies.
        binding = self.session.io_binding()
        for name, arr in inputs.items():
            if arr.dtype == object:
                binding.bind_cpu_input(name, arr)
            else:
                binding.bind_cpu_input(name, np.ascontiguousarray(arr))
        for name in output_names:
            binding.bind_output(name, "cpu")
        self.session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()


class BucketedExecutor:
    """One execution instance of fixed batch shapes (``batch_buckets``): a session per size. A batch runs on the
    smallest size that holds it, padded with zero rows, and its outputs are cut back to its own rows. Each
    session then always sees one input shape, so ONNX Runtime's CUDA convolutions never plan again."""

    def __init__(self, executors: dict[int, Execute]) -> None:
        self.sizes = sorted(executors)
        self.executors = executors
        largest = executors[self.sizes[-1]]
        # Providers, inputs and outputs are the same in all; None where the sizes are not sessions (test doubles).
        self.session: ort.InferenceSession | None = getattr(largest, "session", None)
        self.device = getattr(largest, "device", "cpu")
        self.padded_rows = 0  # zero rows added so far (what the fixed shapes cost)

    def size_for(self, rows: int) -> int:
        return next((s for s in self.sizes if s >= rows), rows)

    def __call__(self, inputs: dict[str, np.ndarray], output_names: list[str]) -> dict[str, np.ndarray]:
        rows = next(iter(inputs.values())).shape[0] if inputs else 0
        size = self.size_for(rows)
        executor = self.executors.get(size)
        if executor is None:  # larger than every size (not cut by this config): the largest session runs it
            return self.executors[self.sizes[-1]](inputs, output_names)
        if size > rows:
            self.padded_rows += size - rows
            inputs = {name: _pad_rows(arr, size) for name, arr in inputs.items()}
        outputs = executor(inputs, output_names)
        if size == rows:
            return outputs
        return {name: out[:rows] if out.ndim and out.shape[0] == size else out for name, out in outputs.items()}


def _pad_rows(arr: np.ndarray, rows: int) -> np.ndarray:
    padded = np.zeros((rows, *arr.shape[1:]), dtype=arr.dtype) if arr.dtype != object else \
        np.full((rows, *arr.shape[1:]), "", dtype=object)
    padded[: arr.shape[0]] = arr
    return padded
