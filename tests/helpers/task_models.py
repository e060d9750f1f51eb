"""Tiny task models (image classifier, YOLO-style detector, text classifier, embedder), their tokenizer and
bundles, built in code. Their weights are returned too, so tests compute the expected answers with numpy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from tests.helpers.onnx_models import _save, make_tar_gz

RNG = np.random.default_rng(6)
# Image classifier: logits = mean over pixels of each channel @ W + B.
CLS_W = RNG.normal(size=(3, 3)).astype(np.float32) * 4
CLS_B = np.array([0.1, -0.2, 0.05], np.float32)
# Detector: 6 anchors (cx, cy, w, h in input pixels), two overlapping pairs; scores = sigmoid(mean @ DET_W).
DET_BOXES = np.array([[20, 20, 16, 16], [22, 21, 16, 16], [44, 44, 20, 12], [45, 44, 20, 12], [10, 50, 8, 8],
                      [50, 12, 10, 10]], np.float32).T  # [4, anchors]
DET_W = RNG.normal(size=(3, 2 * 6)).astype(np.float32) * 3
WORDS = ["good", "bad", "movie", "great", "awful", "plot", "the", "a", "was", "very"]
EMB = RNG.normal(size=(4 + len(WORDS), 5)).astype(np.float32)
TXT_W = RNG.normal(size=(5, 2)).astype(np.float32)


def _x(layout: str, size: tuple[int, int]) -> helper.ValueInfoProto:
    shape = ["batch", 3, *size] if layout == "NCHW" else ["batch", *size, 3]
    return helper.make_tensor_value_info("images", TensorProto.FLOAT, shape)


def _channel_means(layout: str) -> list:
    axes = [2, 3] if layout == "NCHW" else [1, 2]
    return [helper.make_node("ReduceMean", ["images"], ["m"], axes=axes, keepdims=0)]


def image_classifier(path: Path, size=(32, 32), layout: str = "NCHW", labels: list[str] | None = None) -> Path:
    """logits [batch, 3] = channel means @ CLS_W + CLS_B; ``labels`` go into the ONNX metadata."""
    nodes = [*_channel_means(layout), helper.make_node("MatMul", ["m", "W"], ["mw"]),
             helper.make_node("Add", ["mw", "B"], ["logits"])]
    out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3])
    inits = [numpy_helper.from_array(CLS_W, "W"), numpy_helper.from_array(CLS_B, "B")]
    path = _save(helper.make_graph(nodes, "cls", [_x(layout, size)], [out], inits), path)
    if labels is not None:
        import onnx

        model = onnx.load(str(path))
        helper.set_model_props(model, {"names": repr(dict(enumerate(labels)))})
        onnx.save(model, str(path))
    return path


def yolo_detector(path: Path, size=(64, 64)) -> Path:
    """output0 [batch, 4 + 2, 6]: fixed anchors DET_BOXES, class scores sigmoid(channel means @ DET_W)."""
    nodes = [*_channel_means("NCHW"),
             helper.make_node("MatMul", ["m", "W"], ["mw"]),
             helper.make_node("Reshape", ["mw", "score_shape"], ["logit"]),
             helper.make_node("Sigmoid", ["logit"], ["scores"]),
             helper.make_node("ReduceMean", ["images"], ["all"], axes=[1, 2, 3], keepdims=1),
             helper.make_node("Mul", ["all", "zero"], ["z4"]),
             helper.make_node("Reshape", ["z4", "zero_shape"], ["z"]),
             helper.make_node("Add", ["z", "boxes"], ["bx"]),
             helper.make_node("Concat", ["bx", "scores"], ["output0"], axis=1)]
    inits = [numpy_helper.from_array(DET_W, "W"),
             numpy_helper.from_array(np.array([-1, 2, 6], np.int64), "score_shape"),
             numpy_helper.from_array(np.array(0, np.float32), "zero"),
             numpy_helper.from_array(np.array([-1, 1, 1], np.int64), "zero_shape"),
             numpy_helper.from_array(DET_BOXES[None], "boxes")]
    out = helper.make_tensor_value_info("output0", TensorProto.FLOAT, ["batch", 6, 6])
    return _save(helper.make_graph(nodes, "det", [_x("NCHW", size)], [out], inits), path)


BSC_BOXES = np.array([[4, 4, 30, 30], [6, 5, 31, 29], [40, 10, 60, 50]], np.float32)  # x1, y1, x2, y2
BSC_W = RNG.normal(size=(3, 3)).astype(np.float32) * 3
BSC_CLASSES = np.array([0, 0, 1], np.int64)


def bsc_detector(path: Path, size=(64, 64)) -> Path:
    """Outputs boxes [batch, 3, 4] (BSC_BOXES), scores [batch, 3] = sigmoid(channel means @ BSC_W), classes."""
    nodes = [*_channel_means("NCHW"), helper.make_node("MatMul", ["m", "W"], ["mw"]),
             helper.make_node("Sigmoid", ["mw"], ["scores"]),
             helper.make_node("ReduceMean", ["images"], ["all"], axes=[1, 2, 3], keepdims=1),
             helper.make_node("Mul", ["all", "zero"], ["z4"]),
             helper.make_node("Reshape", ["z4", "zero_shape"], ["z"]),
             helper.make_node("Add", ["z", "b"], ["boxes"]),
             helper.make_node("Cast", ["z"], ["zi"], to=TensorProto.INT64),
             helper.make_node("Reshape", ["zi", "zero_shape2"], ["zi2"]),
             helper.make_node("Add", ["zi2", "c"], ["classes"])]
    inits = [numpy_helper.from_array(BSC_W, "W"), numpy_helper.from_array(np.array(0, np.float32), "zero"),
             numpy_helper.from_array(np.array([-1, 1, 1], np.int64), "zero_shape"),
             numpy_helper.from_array(np.array([-1, 1], np.int64), "zero_shape2"),
             numpy_helper.from_array(BSC_BOXES[None], "b"), numpy_helper.from_array(BSC_CLASSES[None], "c")]
    outs = [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, ["batch", 3, 4]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", 3]),
            helper.make_tensor_value_info("classes", TensorProto.INT64, ["batch", 3])]
    return _save(helper.make_graph(nodes, "bsc", [_x("NCHW", size)], outs, inits), path)


def _token_inputs() -> list:
    return [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "tokens"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "tokens"])]


def _masked_tokens() -> list:
    """h [batch, tokens, 5] = EMB[input_ids] * attention_mask."""
    return [helper.make_node("Gather", ["E", "input_ids"], ["g"]),
            helper.make_node("Cast", ["attention_mask"], ["mf"], to=TensorProto.FLOAT),
            helper.make_node("Unsqueeze", ["mf", "ax2"], ["mu"]),
            helper.make_node("Mul", ["g", "mu"], ["h"])]


def _text_inits() -> list:
    return [numpy_helper.from_array(EMB, "E"), numpy_helper.from_array(np.array([2], np.int64), "ax2"),
            numpy_helper.from_array(np.array([1], np.int64), "ax1"), numpy_helper.from_array(TXT_W, "W")]


def text_classifier(path: Path) -> Path:
    """logits [batch, 2] = (masked mean of EMB[input_ids]) @ TXT_W."""
    nodes = [*_masked_tokens(), helper.make_node("ReduceSum", ["h", "ax1"], ["s"], keepdims=0),
             helper.make_node("ReduceSum", ["mu", "ax1"], ["n"], keepdims=0),
             helper.make_node("Div", ["s", "n"], ["mean"]), helper.make_node("MatMul", ["mean", "W"], ["logits"])]
    out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2])
    return _save(helper.make_graph(nodes, "txt", _token_inputs(), [out], _text_inits()), path)


def embedder(path: Path) -> Path:
    """last_hidden_state [batch, tokens, 5] = EMB[input_ids] * attention_mask."""
    nodes = [*_masked_tokens(), helper.make_node("Identity", ["h"], ["last_hidden_state"])]
    out = helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "tokens", 5])
    return _save(helper.make_graph(nodes, "emb", _token_inputs(), [out], _text_inits()[:2]), path)


def tokenizer_json(path: Path) -> Path:
    """A WordLevel tokenizer over WORDS: [CLS] words [SEP], ids 0-3 for [PAD] [UNK] [CLS] [SEP]."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from tokenizers.processors import TemplateProcessing

    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *WORDS])}
    tok = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = Whitespace()
    tok.post_processor = TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tok.save(str(path))
    return path


def token_ids(text: str, max_length: int | None = None) -> list[int]:
    """The ids the tokenizer above gives, written plainly (for reference answers)."""
    vocab = {t: i + 4 for i, t in enumerate(WORDS)}
    words = [vocab.get(w, 1) for w in text.split()]
    ids = [2, *words, 3]
    if max_length is not None and len(ids) > max_length:
        ids = [2, *words[:max_length - 2], 3]
    return ids


def bundle(path: Path, manifest: str, model: Path, **files: bytes | Path) -> Path:
    """A .tar.gz with flashml.toml, model.onnx and any other files."""
    return make_tar_gz(path, {"flashml.toml": manifest.encode(), "model.onnx": model, **files})
