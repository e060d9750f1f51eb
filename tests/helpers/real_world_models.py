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


def text_classifier(path: Path, vocab: int = 100, width: int = 8) -> Path:
    """input_ids, attention_mask, token_type_ids: INT64 [batch, sequence], as BERT exports name them; embeddings
    summed, a masked mean over the sequence, then two logits [batch, 2]."""
    rng = np.random.default_rng(5)
    ids = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "sequence"])
           for n in ("input_ids", "attention_mask", "token_type_ids")]
    logits = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2])
    inits = [numpy_helper.from_array(rng.standard_normal((vocab, width)).astype(np.float32), "words"),
             numpy_helper.from_array(rng.standard_normal((2, width)).astype(np.float32), "types"),
             numpy_helper.from_array(rng.standard_normal((width, 2)).astype(np.float32), "head"),
             numpy_helper.from_array(np.array([-1], np.int64), "last"),
             numpy_helper.from_array(np.array([1], np.int64), "seq_axis")]
    nodes = [helper.make_node("Gather", ["words", "input_ids"], ["w"]),
             helper.make_node("Gather", ["types", "token_type_ids"], ["t"]),
             helper.make_node("Add", ["w", "t"], ["e"]),
             helper.make_node("Cast", ["attention_mask"], ["m"], to=TensorProto.FLOAT),
             helper.make_node("Unsqueeze", ["m", "last"], ["m3"]),
             helper.make_node("Mul", ["e", "m3"], ["masked"]),
             helper.make_node("ReduceSum", ["masked", "seq_axis"], ["summed"], keepdims=0),
             helper.make_node("ReduceSum", ["m", "seq_axis"], ["count"], keepdims=1),
             helper.make_node("Div", ["summed", "count"], ["pooled"]),
             helper.make_node("MatMul", ["pooled", "head"], ["logits"])]
    return _save(nodes, "text", ids, [logits], inits, path)


def expand_by_shape(path: Path) -> Path:
    """x [batch, 1] expanded to the shape an INT64 input gives (an Expand driven by a shape tensor)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1])
    shape = helper.make_tensor_value_info("shape", TensorProto.INT64, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["rows", "cols"])
    return _save([helper.make_node("Expand", ["x", "shape"], ["y"])], "expand", [x, shape], [y], [], path)


def reshape_by_shape(path: Path) -> Path:
    """x [batch, 6] reshaped to what an INT64 input says: no guess of ones fits six elements a row."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 6])
    shape = helper.make_tensor_value_info("shape", TensorProto.INT64, [3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["a", "b", "c"])
    return _save([helper.make_node("Reshape", ["x", "shape"], ["y"])], "reshape", [x, shape], [y], [], path)


def half_precision(path: Path) -> Path:
    """x FP16 [batch, 4] times an FP16 matrix: y FP16 [batch, 3]."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT16, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT16, ["batch", 3])
    w = numpy_helper.from_array(np.random.default_rng(6).standard_normal((4, 3)).astype(np.float16), "w")
    return _save([helper.make_node("MatMul", ["x", "w"], ["y"])], "fp16", [x], [y], [w], path)


def qdq_int8(path: Path) -> Path:
    """A QDQ-quantized layer as quantization tools write it: x quantized to INT8 and back, times INT8 weights
    dequantized, y FP32 [batch, 3]."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])
    rng = np.random.default_rng(7)
    inits = [numpy_helper.from_array(np.array(0.05, np.float32), "x_scale"),
             numpy_helper.from_array(np.array(0, np.int8), "x_zero"),
             numpy_helper.from_array(rng.integers(-100, 100, (4, 3)).astype(np.int8), "w_q"),
             numpy_helper.from_array(np.array(0.01, np.float32), "w_scale"),
             numpy_helper.from_array(np.array(0, np.int8), "w_zero")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "x_scale", "x_zero"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "x_scale", "x_zero"], ["xd"]),
             helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zero"], ["wd"]),
             helper.make_node("MatMul", ["xd", "wd"], ["y"])]
    return _save(nodes, "qdq", [x], [y], inits, path)


def tree_ensemble(path: Path) -> Path:
    """An ``ai.onnx.ml`` TreeEnsembleRegressor (what skl2onnx writes for a decision tree): x [batch, 2] to y
    [batch, 1], one tree: x0 <= 0.5 ? (x1 <= 0 ? 1 : 2) : 3."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 1])
    node = helper.make_node(
        "TreeEnsembleRegressor", ["x"], ["y"], domain="ai.onnx.ml", n_targets=1,
        nodes_treeids=[0] * 5, nodes_nodeids=[0, 1, 2, 3, 4], nodes_featureids=[0, 1, 0, 0, 0],
        nodes_modes=["BRANCH_LEQ", "BRANCH_LEQ", "LEAF", "LEAF", "LEAF"], nodes_values=[0.5, 0.0, 0, 0, 0],
        nodes_truenodeids=[1, 2, 0, 0, 0], nodes_falsenodeids=[4, 3, 0, 0, 0],
        target_treeids=[0, 0, 0], target_nodeids=[2, 3, 4], target_ids=[0, 0, 0], target_weights=[1.0, 2.0, 3.0])
    graph = helper.make_graph([node], "trees", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET),
                                                    helper.make_opsetid("ai.onnx.ml", 3)], ir_version=IR)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def suppressed_boxes(path: Path) -> Path:
    """Non-maximum suppression in the graph: boxes [batch, 10, 4], scores [batch, 1, 10] to the kept boxes'
    indices [kept, 3] (batch, class, box): an output with no batch axis, so requests cannot be merged."""
    boxes = helper.make_tensor_value_info("boxes", TensorProto.FLOAT, ["batch", 10, 4])
    scores = helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", 1, 10])
    kept = helper.make_tensor_value_info("kept", TensorProto.INT64, ["kept", 3])
    inits = [numpy_helper.from_array(np.array([5], np.int64), "max_out"),
             numpy_helper.from_array(np.array([0.5], np.float32), "iou"),
             numpy_helper.from_array(np.array([0.0], np.float32), "score_min")]
    node = helper.make_node("NonMaxSuppression", ["boxes", "scores", "max_out", "iou", "score_min"], ["kept"])
    return _save([node], "nms", [boxes, scores], [kept], inits, path)


def optional_input(path: Path) -> Path:
    """x [batch, 3] times ``scale``, a graph input with an initializer as its default (1.5): callers may leave
    it out."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])
    scale = helper.make_tensor_value_info("scale", TensorProto.FLOAT, [])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])
    default = numpy_helper.from_array(np.array(1.5, np.float32), "scale")
    return _save([helper.make_node("Mul", ["x", "scale"], ["y"])], "optional", [x, scale], [y], [default], path)


def long_reflect_pad(path: Path, pad: int = 20000) -> Path:
    """audio [batch, samples] reflect-padded by ``pad`` (over 20000 samples needed: longer than any guess),
    energy [batch]: batchable, and only a real request shows a length that runs."""
    audio = helper.make_tensor_value_info("audio", TensorProto.FLOAT, ["batch", "samples"])
    energy = helper.make_tensor_value_info("energy", TensorProto.FLOAT, ["batch"])
    pads = numpy_helper.from_array(np.array([0, pad, 0, pad], np.int64), "pads")
    nodes = [helper.make_node("Pad", ["audio", "pads"], ["padded"], mode="reflect"),
             helper.make_node("Mul", ["padded", "padded"], ["squared"]),
             helper.make_node("ReduceMean", ["squared"], ["energy"], axes=[1], keepdims=0)]
    return _save(nodes, "long_audio", [audio], [energy], [pads], path)
