"""The two benchmark models, built in code: an overhead-bound MLP and a compute-bound small CNN."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET, IR = 17, 9


def _init(name: str, arr: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(arr.astype(np.float32), name)


def mlp(path: Path, sizes=(64, 256, 256, 10)) -> Path:
    """MLP 64-256-256-10 with ReLU: tiny compute, so serving overhead dominates."""
    rng = np.random.default_rng(0)
    nodes, inits, prev = [], [], "x"
    for i, (a, b) in enumerate(zip(sizes, sizes[1:], strict=False)):
        inits += [_init(f"w{i}", rng.standard_normal((a, b)) * 0.05), _init(f"b{i}", np.zeros(b))]
        nodes += [helper.make_node("Gemm", [prev, f"w{i}", f"b{i}"], [f"h{i}"])]
        prev = f"h{i}"
        if i < len(sizes) - 2:
            nodes.append(helper.make_node("Relu", [prev], [f"r{i}"]))
            prev = f"r{i}"
    nodes.append(helper.make_node("Identity", [prev], ["y"]))
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 10])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR), path)
    return path


def cnn(path: Path, width: int = 64, blocks: int = 4) -> Path:
    """A small ResNet-like CNN on 3x64x64 images (9 convolutions of 64 channels at 32x32): compute-bound."""
    rng = np.random.default_rng(1)
    nodes, inits = [], []

    def conv(inp: str, out: str, cin: int, cout: int, k: int = 3, stride: int = 1) -> None:
        w = rng.standard_normal((cout, cin, k, k)) * np.sqrt(2.0 / (cin * k * k))
        inits.extend([_init(f"{out}_w", w), _init(f"{out}_b", np.zeros(cout))])
        nodes.append(helper.make_node("Conv", [inp, f"{out}_w", f"{out}_b"], [out], pads=[k // 2] * 4,
                                      strides=[stride, stride]))

    conv("x", "stem", 3, width, stride=2)
    nodes.append(helper.make_node("Relu", ["stem"], ["s0"]))
    prev = "s0"
    for i in range(blocks):
        conv(prev, f"c{i}a", width, width)
        nodes.append(helper.make_node("Relu", [f"c{i}a"], [f"r{i}a"]))
        conv(f"r{i}a", f"c{i}b", width, width)
        nodes.append(helper.make_node("Add", [f"c{i}b", prev], [f"add{i}"]))
        nodes.append(helper.make_node("Relu", [f"add{i}"], [f"s{i + 1}"]))
        prev = f"s{i + 1}"
    nodes.append(helper.make_node("GlobalAveragePool", [prev], ["gap"]))
    nodes.append(helper.make_node("Flatten", ["gap"], ["flat"]))
    inits += [_init("fc_w", rng.standard_normal((width, 10)) * 0.1), _init("fc_b", np.zeros(10))]
    nodes.append(helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["y"]))
    graph = helper.make_graph(nodes, "cnn",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 64, 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 10])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR), path)
    return path


BUILDERS = {"mlp": (mlp, [64]), "cnn": (cnn, [3, 64, 64])}
