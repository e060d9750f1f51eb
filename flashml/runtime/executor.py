"""Run one batch on one ONNX Runtime session: a blocking call the batcher sends to a worker thread."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from flashml.runtime.ort_io import needs_ortvalues, run_with_bf16
from flashml.runtime.runner import ModelRuntimeError


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
