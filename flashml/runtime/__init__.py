"""ONNX Runtime sessions and the pool of loaded model versions."""
