"""A minimal custom MLServer runtime: one ONNX Runtime session, V2 tensors in and out through MLServer's
``NumpyCodec`` (the way MLServer's own docs write a custom runtime). MLServer's adaptive batcher merges the
requests before ``predict`` and splits the answer after it (``max_batch_size``, ``max_batch_time`` in
model-settings.json, written by ``bench.peers.config.mlserver_model_settings``).

Runs in the MLServer environment (``bench/.peers/mlserver``), named in model-settings.json as
``bench.peers.mlserver_model.OnnxRuntimeModel``.
"""

from __future__ import annotations

from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse

from bench.peers import ort_session


class OnnxRuntimeModel(MLModel):
    async def load(self) -> bool:
        self._session = ort_session.session(self.settings.parameters.uri)
        self._outputs = [o.name for o in self._session.get_outputs()]
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        feeds = {tensor.name: NumpyCodec.decode_input(tensor) for tensor in payload.inputs}
        outs = self._session.run(self._outputs, feeds)
        return InferenceResponse(model_name=self.name, model_version=self.version,
                                 outputs=[NumpyCodec.encode_output(name, out)
                                          for name, out in zip(self._outputs, outs, strict=True)])
