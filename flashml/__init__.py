"""FlashML: serve ONNX models from one process, with an upload button."""

__version__ = "0.1.0"
