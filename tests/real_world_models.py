"""Models built in code with the patterns real exports have, which a warm-up of ones refuses: each is valid,
and ONNX Runtime runs it at the right shapes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET, IR = 17, 9


def _save(nodes, name, inputs, outputs, inits, path: Path) -> Path:
    graph = helper.make_graph(nodes, name, inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def pyramid_detector(path: Path) -> Path:
    """x [batch, 3, height, width] down to 1/16 and 1/32, the coarse map upsampled and concatenated with the
    finer one (a feature pyramid): height and width must be multiples of 32. y [batch, 6]."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, "height", "width"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 6])
    nodes, prev = [], "x"
    for i in range(5):
        nodes.append(helper.make_node("MaxPool", [prev], [f"p{i + 1}"], kernel_shape=[2, 2], strides=[2, 2]))
        prev = f"p{i + 1}"
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    nodes += [helper.make_node("Resize", ["p5", "", "scales"], ["up"], mode="nearest"),
              helper.make_node("Concat", ["p4", "up"], ["cat"], axis=1),
              helper.make_node("GlobalAveragePool", ["cat"], ["gap"]),
              helper.make_node("Flatten", ["gap"], ["y"])]
    return _save(nodes, "pyramid", [x], [y], [scales], path)


def reflect_padded_audio(path: Path, pad: int = 100) -> Path:
    """audio [batch, samples] reflect-padded by ``pad`` on each side (samples must exceed ``pad``), a recurrent
    state [2, batch, 8] whose batch axis is the second, and a scalar gain. energy [batch], next_state like state."""
    audio = helper.make_tensor_value_info("audio", TensorProto.FLOAT, ["batch", "samples"])
    state = helper.make_tensor_value_info("state", TensorProto.FLOAT, [2, "batch", 8])
    gain = helper.make_tensor_value_info("gain", TensorProto.FLOAT, [])
    energy = helper.make_tensor_value_info("energy", TensorProto.FLOAT, ["batch"])
    next_state = helper.make_tensor_value_info("next_state", TensorProto.FLOAT, [2, "batch", 8])
    pads = numpy_helper.from_array(np.array([0, pad, 0, pad], np.int64), "pads")
    nodes = [helper.make_node("Pad", ["audio", "pads"], ["padded"], mode="reflect"),
             helper.make_node("Mul", ["padded", "padded"], ["squared"]),
             helper.make_node("ReduceMean", ["squared"], ["mean"], axes=[1], keepdims=0),
             helper.make_node("Mul", ["mean", "gain"], ["energy"]),
             helper.make_node("Mul", ["state", "gain"], ["next_state"])]
    return _save(nodes, "audio", [audio, state, gain], [energy, next_state], [pads], path)
