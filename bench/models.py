"""The benchmark models, built in code: an overhead-bound MLP, a compute-bound small CNN, and ResNet-50 (for a
GPU machine: the issue's ResNet-50-sized comparison)."""

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


def resnet50(path: Path, classes: int = 1000) -> Path:
    """ResNet-50's shape on 3x224x224 images (bottleneck blocks 3, 4, 6, 3; 25.5 million weights, about 4
    GFLOP per image), with batch normalisation folded into the convolutions' biases, as an exported model
    for inference has it. Random weights: the speed is what is measured."""
    rng = np.random.default_rng(2)
    nodes, inits = [], []

    def conv(inp: str, out: str, cin: int, cout: int, k: int, stride: int = 1, relu: bool = True) -> str:
        w = rng.standard_normal((cout, cin, k, k), dtype=np.float32) * np.float32(np.sqrt(2.0 / (cin * k * k)))
        inits.extend([_init(f"{out}_w", w), _init(f"{out}_b", np.zeros(cout))])
        nodes.append(helper.make_node("Conv", [inp, f"{out}_w", f"{out}_b"], [out], pads=[k // 2] * 4,
                                      strides=[stride, stride]))
        if not relu:
            return out
        nodes.append(helper.make_node("Relu", [out], [f"{out}_r"]))
        return f"{out}_r"

    prev = conv("x", "stem", 3, 64, 7, stride=2)
    nodes.append(helper.make_node("MaxPool", [prev], ["pool"], kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4))
    prev, cin = "pool", 64
    for stage, (blocks, width) in enumerate(((3, 64), (4, 128), (6, 256), (3, 512))):
        for block in range(blocks):
            name, stride = f"s{stage}b{block}", (2 if stage and not block else 1)
            h = conv(prev, f"{name}a", cin, width, 1)
            h = conv(h, f"{name}b", width, width, 3, stride=stride)
            h = conv(h, f"{name}c", width, width * 4, 1, relu=False)
            skip = conv(prev, f"{name}d", cin, width * 4, 1, stride=stride, relu=False) if block == 0 else prev
            nodes.append(helper.make_node("Add", [h, skip], [f"{name}_sum"]))
            nodes.append(helper.make_node("Relu", [f"{name}_sum"], [f"{name}_out"]))
            prev, cin = f"{name}_out", width * 4
    nodes.append(helper.make_node("GlobalAveragePool", [prev], ["gap"]))
    nodes.append(helper.make_node("Flatten", ["gap"], ["flat"]))
    inits += [_init("fc_w", rng.standard_normal((cin, classes), dtype=np.float32) * np.float32(0.01)),
              _init("fc_b", np.zeros(classes))]
    nodes.append(helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["y"]))
    graph = helper.make_graph(nodes, "resnet50",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 224, 224])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", classes])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR), path)
    return path


def image_io(path: Path, classes: int = 1000) -> Path:
    """ResNet-50's input and output (3x224x224 in, 1000 scores out) with almost no compute between: the cost of
    carrying image-sized tensors through a server, measurable on a CPU machine."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 224, 224])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", classes])
    w = _init("w", np.random.default_rng(0).standard_normal((classes, 3)) * 0.1)
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["gap"]), helper.make_node("Flatten", ["gap"], ["f"]),
             helper.make_node("Gemm", ["f", "w"], ["y"], transB=1)]
    graph = helper.make_graph(nodes, "image_io", [x], [y], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR), str(path))
    return path


BUILDERS = {"mlp": (mlp, [64]), "cnn": (cnn, [3, 64, 64]), "resnet50": (resnet50, [3, 224, 224]),
            "image_io": (image_io, [3, 224, 224])}
