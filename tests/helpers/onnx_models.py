"""Builders for the tiny ONNX models and (sometimes hostile) bundles the tests upload.

Plain functions, not fixtures: each writes what it builds to the path it is given and returns that path.
"""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 9  # onnxruntime 1.31 loads IR 9 with opset 17


def _save(graph: onnx.GraphProto, path: Path, *, opset: int = OPSET, ir_version: int = IR_VERSION,
          extra_opsets: dict[str, int] | None = None, functions: list[onnx.FunctionProto] | None = None) -> Path:
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in (extra_opsets or {}).items()]
    model = helper.make_model(graph, opset_imports=opsets, ir_version=ir_version, producer_name="flashml-tests",
                              functions=functions or [])
    onnx.save(model, str(path))
    return path


def add_model(path: Path) -> Path:
    """sum = a + b, FP32 [batch, 4]."""
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, ["batch", 4])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, ["batch", 4])
    out = helper.make_tensor_value_info("sum", TensorProto.FLOAT, ["batch", 4])
    return _save(helper.make_graph([helper.make_node("Add", ["a", "b"], ["sum"])], "add", [a, b], [out]), path)


def conv_model(path: Path, size: int = 64, channels: int = 32) -> Path:
    """x FP32 [batch, 3, size, size] through three 3x3 convolutions (ReLU between) to y [batch, channels], the
    mean of each channel: compute-bound, about a millisecond per image on two cores at the defaults."""
    rng = np.random.default_rng(3)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, size, size])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", channels])
    inits, nodes, prev = [], [], "x"
    for i, cin in enumerate((3, channels, channels)):
        inits.append(numpy_helper.from_array((rng.standard_normal((channels, cin, 3, 3)) * 0.1).astype(np.float32),
                                             f"w{i}"))
        nodes += [helper.make_node("Conv", [prev, f"w{i}"], [f"c{i}"], pads=[1, 1, 1, 1]),
                  helper.make_node("Relu", [f"c{i}"], [f"r{i}"])]
        prev = f"r{i}"
    nodes += [helper.make_node("GlobalAveragePool", [prev], ["gap"]), helper.make_node("Flatten", ["gap"], ["y"])]
    return _save(helper.make_graph(nodes, "conv", [x], [y], inits), path)


def offset_add_model(path: Path, offset: float) -> Path:
    """sum = a + b + offset, FP32 [batch, 4]: add_model's signature, with answers that tell versions apart."""
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, ["batch", 4])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, ["batch", 4])
    out = helper.make_tensor_value_info("sum", TensorProto.FLOAT, ["batch", 4])
    const = numpy_helper.from_array(np.array(offset, dtype=np.float32), "offset")
    nodes = [helper.make_node("Add", ["a", "b"], ["ab"]), helper.make_node("Add", ["ab", "offset"], ["sum"])]
    return _save(helper.make_graph(nodes, "offset_add", [a, b], [out], initializer=[const]), path)


# A linear classifier's weights: features 0, 1 and 3 decide between three classes; feature 2 has no say at all.
CLASSIFIER_WEIGHTS = np.array([[2.0, -1.0, -1.0], [-1.0, 2.0, -1.0], [0.0, 0.0, 0.0], [-1.0, -1.0, 2.0]],
                              dtype=np.float32)


def tabular_classifier_model(path: Path) -> Path:
    """probabilities = softmax(features @ CLASSIFIER_WEIGHTS): a tabular classifier, FP32 [batch, 4] -> [batch, 3],
    whose answer ignores feature 2 (shift that one and only the input drifts, not the predictions)."""
    features = helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 4])
    out = helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 3])
    weights = numpy_helper.from_array(CLASSIFIER_WEIGHTS, "weights")
    nodes = [helper.make_node("MatMul", ["features", "weights"], ["logits"]),
             helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1)]
    return _save(helper.make_graph(nodes, "tabular_classifier", [features], [out], initializer=[weights]), path)


def identity_model(path: Path, elem_type: int, shape: tuple[int | str, ...] = ("batch", 3), *,
                   opset: int = OPSET, ir_version: int = IR_VERSION) -> Path:
    """y = Identity(x) for any element type (onnxruntime's CPU Identity lacks complex, int4 and friends)."""
    x = helper.make_tensor_value_info("x", elem_type, list(shape))
    y = helper.make_tensor_value_info("y", elem_type, list(shape))
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "identity", [x], [y])
    return _save(graph, path, opset=opset, ir_version=ir_version)


def external_data_model(directory: Path, *, location: str = "weights.bin") -> Path:
    """y = x @ W with W [4, 2] stored as external data in ``directory/location`` (which may be hostile, like
    ``../weights.bin``); returns model.onnx's path."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2])
    w = numpy_helper.from_array(np.arange(8, dtype=np.float32).reshape(4, 2), "W")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"])], "matmul", [x], [y], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION)
    path = directory / "model.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights.bin", size_threshold=0)
    if location != "weights.bin":
        # onnx refuses to save hostile locations ("../x"), so write a safe one and rewrite it afterwards.
        if not os.path.isabs(location):
            target = Path(os.path.normpath(directory / location))
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(directory / "weights.bin", target)
        set_external_data(path, location=location)
    return path


def set_external_data(model_path: Path, **entries: str) -> Path:
    """Rewrite the external-data entries (location, offset, length) of every external tensor, in place."""
    model = onnx.load(str(model_path), load_external_data=False)
    for tensor in model.graph.initializer:
        if tensor.data_location == TensorProto.EXTERNAL:
            current = {e.key: e.value for e in tensor.external_data} | entries
            del tensor.external_data[:]
            for key, value in current.items():
                tensor.external_data.add(key=key, value=value)
    onnx.save(model, str(model_path))
    return model_path


def custom_domain_model(path: Path, domain: str = "my.custom.ops") -> Path:
    """A node in a domain only a custom-op library could provide."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])
    node = helper.make_node("Frobnicate", ["x"], ["y"], name="frob", domain=domain)
    return _save(helper.make_graph([node], "custom", [x], [y]), path, extra_opsets={domain: 1})


def local_function_model(path: Path, domain: str = "my.functions") -> Path:
    """A node that calls a model-local function: its domain is not a custom-op library."""
    fn = helper.make_function(domain, "Double", ["i"], ["o"], [helper.make_node("Add", ["i", "i"], ["o"])],
                              [helper.make_opsetid("", OPSET)])
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])
    node = helper.make_node("Double", ["x"], ["y"], domain=domain)
    return _save(helper.make_graph([node], "fn", [x], [y]), path, extra_opsets={domain: 1}, functions=[fn])


def _counting_loop_body() -> onnx.GraphProto:
    """A Loop body that adds 1 to a float each iteration and never stops on its own."""
    return helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Add", ["v_in", "one"], ["v_out"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_in", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_out", TensorProto.FLOAT, [1])],
        [numpy_helper.from_array(np.ones(1, np.float32), "one")])


def hang_model(path: Path) -> Path:
    """A Loop with 2**62 iterations: warm-up never finishes in practice."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    body = _counting_loop_body()
    inits = [numpy_helper.from_array(np.array(2**62, np.int64), "trips"),
             numpy_helper.from_array(np.array(True), "cond")]
    loop = helper.make_node("Loop", ["trips", "cond", "x"], ["y"], body=body)
    return _save(helper.make_graph([loop], "hang", [x], [y], inits), path)


def memory_bomb_model(path: Path, gigabytes: int = 4) -> Path:
    """Expand a [1] input to ``gigabytes`` GB of floats during warm-up (not foldable: it depends on the input)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [])
    shape = numpy_helper.from_array(np.array([gigabytes << 28], np.int64), "shape")  # 2**28 floats = 1 GiB
    nodes = [helper.make_node("Expand", ["x", "shape"], ["big"]),
             helper.make_node("ReduceSum", ["big"], ["y"], keepdims=0)]
    return _save(helper.make_graph(nodes, "bomb", [x], [y], [shape]), path)


def bad_session_model(path: Path) -> Path:
    """Passes the ONNX checker (no type inference) but onnxruntime refuses it: float + int64."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    k = numpy_helper.from_array(np.ones(2, np.int64), "k")
    return _save(helper.make_graph([helper.make_node("Add", ["x", "k"], ["y"])], "bad", [x], [y], [k]), path)


# ---- bundles ------------------------------------------------------------------------------------

def make_tar_gz(path: Path, members: dict[str, bytes | Path]) -> Path:
    """A .tar.gz holding ``name -> bytes`` (or the contents of a file)."""
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            raw = data.read_bytes() if isinstance(data, Path) else data
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            tf.addfile(info, io.BytesIO(raw))
    return path


def make_zip(path: Path, members: dict[str, bytes | Path]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data.read_bytes() if isinstance(data, Path) else data)
    return path


def tar_with_special(path: Path, name: str, kind: bytes, linkname: str = "") -> Path:
    """A .tar.gz with one ``model.onnx`` placeholder and a special member (tarfile.SYMTYPE, LNKTYPE, FIFOTYPE...)."""
    with tarfile.open(path, "w:gz") as tf:
        info = tarfile.TarInfo("model.onnx")
        info.size = 4
        tf.addfile(info, io.BytesIO(b"onnx"))
        special = tarfile.TarInfo(name)
        special.type = kind
        special.linkname = linkname
        tf.addfile(special)
    return path


def zip_with_symlink(path: Path, name: str = "link", target: str = "/etc/passwd") -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        info = zipfile.ZipInfo(name)
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, target)
    return path


def many_members_tar(path: Path, count: int) -> Path:
    return make_tar_gz(path, {f"f{i}.txt": b"x" for i in range(count)})


def zip_bomb(path: Path, size: int = 32 << 20) -> Path:
    """A zip of one member of ``size`` zero bytes: it compresses about 1000 to 1."""
    chunk = bytes(1 << 20)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("zeros.bin", "w", force_zip64=True) as f:
        for _ in range(size // len(chunk)):
            f.write(chunk)
    return path


def tar_gz_bomb(path: Path, size: int = 32 << 20) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        info = tarfile.TarInfo("zeros.bin")
        info.size = size
        tf.addfile(info, _Zeros(size))
    return path


class _Zeros(io.RawIOBase):
    """A readable stream of ``size`` zero bytes, so bombs are built without holding them in memory."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buf: memoryview) -> int:  # type: ignore[override]
        n = min(len(buf), self.left)
        buf[:n] = bytes(n)
        self.left -= n
        return n


def slow_model(path: Path) -> Path:
    """y = x, after a Loop of max(x) iterations: as slow as the caller asks (x = 0, the warm-up, is instant)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 1])
    body = _counting_loop_body()
    inits = [numpy_helper.from_array(np.array(True), "cond"), numpy_helper.from_array(np.zeros(1, np.float32), "v0"),
             numpy_helper.from_array(np.zeros(1, np.float32), "zero")]
    nodes = [helper.make_node("ReduceMax", ["x"], ["m"], keepdims=0),
             helper.make_node("Cast", ["m"], ["trips"], to=TensorProto.INT64),
             helper.make_node("Loop", ["trips", "cond", "v0"], ["v"], body=body),
             helper.make_node("Mul", ["v", "zero"], ["nothing"]),
             helper.make_node("Add", ["x", "nothing"], ["y"])]
    return _save(helper.make_graph(nodes, "slow", [x], [y], inits), path)


def gather_model(path: Path) -> Path:
    """y = table[i] with a table of 10: an index past 9 makes ONNX Runtime fail at run time, not at warm-up."""
    i = helper.make_tensor_value_info("i", TensorProto.INT64, ["batch"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch"])
    table = numpy_helper.from_array(np.arange(10, dtype=np.float32) * 10, "table")
    return _save(helper.make_graph([helper.make_node("Gather", ["table", "i"], ["y"])], "gather", [i], [y],
                                   [table]), path)


def sequence_model(path: Path) -> Path:
    """Token model: doubled = ids * 2 * mask, INT64 [batch, seq] in and out (a padded sequence axis)."""
    ids = helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "seq"])
    mask = helper.make_tensor_value_info("mask", TensorProto.INT64, ["batch", "seq"])
    out = helper.make_tensor_value_info("doubled", TensorProto.INT64, ["batch", "seq"])
    two = numpy_helper.from_array(np.array(2, np.int64), "two")
    nodes = [helper.make_node("Mul", ["ids", "two"], ["d"]), helper.make_node("Mul", ["d", "mask"], ["doubled"])]
    return _save(helper.make_graph(nodes, "seq", [ids, mask], [out], [two]), path)


def two_head_model(path: Path) -> Path:
    """x FP32 [batch, 4] -> scores = x @ W (FP32 [batch, 10]) and top = ArgMax(scores) (INT64 [batch]):
    a vector output and a scalar one, for result formats that keep each output apart."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    scores = helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", 10])
    top = helper.make_tensor_value_info("top", TensorProto.INT64, ["batch"])
    w = numpy_helper.from_array(np.linspace(-1, 1, 40, dtype=np.float32).reshape(4, 10) ** 3, "W")
    nodes = [helper.make_node("MatMul", ["x", "W"], ["scores"]),
             helper.make_node("ArgMax", ["scores"], ["top"], axis=1, keepdims=0)]
    return _save(helper.make_graph(nodes, "two_head", [x], [scores, top], initializer=[w]), path)


# ---- hostile tar headers ------------------------------------------------------------------------

def _tar_block_pad(size: int) -> bytes:
    return bytes(-size % tarfile.BLOCKSIZE)


def _write_repeated(out, byte: bytes, count: int) -> None:
    chunk = byte * (1 << 20)
    while count > 0:
        out.write(chunk[:count])
        count -= len(chunk)


def tar_header_bomb(path: Path, kind: str = "pax", size: int = 400 << 20, model: bytes = b"onnx") -> Path:
    """A .tar.gz whose first header is a ``kind`` ("pax" record or "gnu" long name) of ``size`` bytes, then
    a small ``model.onnx``. Written as it goes and gzip-compressed: 400 MB of header is about 400 KB."""
    with gzip.open(path, "wb", compresslevel=9) as out:
        if kind == "pax":
            head = tarfile.TarInfo("././@PaxHeader")
            head.type = tarfile.XHDTYPE
            key = b" comment="  # a record tarfile accepts and ignores
            filler = size - len(str(size)) - len(key) - 1
            out.write(_sized(head, size) + str(size).encode() + key)
            _write_repeated(out, b"a", filler)
            out.write(b"\n")
        else:
            head = tarfile.TarInfo("././@LongLink")
            head.type = tarfile.GNUTYPE_LONGNAME
            out.write(_sized(head, size, tarfile.GNU_FORMAT))
            _write_repeated(out, b"a", size - 1)
            out.write(b"\0")
        out.write(_tar_block_pad(size))
        out.write(_sized(tarfile.TarInfo("model.onnx"), len(model)) + model + _tar_block_pad(len(model)))
        out.write(bytes(2 * tarfile.BLOCKSIZE))
    return path


def _sized(info: tarfile.TarInfo, size: int, fmt: int = tarfile.USTAR_FORMAT) -> bytes:
    info.size = size
    return info.tobuf(fmt)


def _pax_record(key: str, value: str) -> bytes:
    body = f" {key}={value}\n".encode()
    n = len(body) + 1
    while len(str(n)) + len(body) != n:
        n += 1
    return str(n).encode() + body


def tar_header_chain(path: Path, count: int) -> Path:
    """A .tar.gz whose one member follows ``count`` small PAX headers (tarfile reads them recursively)."""
    record = _pax_record("comment", "x")
    with gzip.open(path, "wb") as out:
        for _ in range(count):
            head = tarfile.TarInfo("././@PaxHeader")
            head.type = tarfile.XHDTYPE
            out.write(_sized(head, len(record)) + record + _tar_block_pad(len(record)))
        out.write(_sized(tarfile.TarInfo("model.onnx"), 4) + b"onnx" + _tar_block_pad(4) + bytes(1024))
    return path


def tar_pax_sparse_map_bomb(path: Path, size: int = 2 << 20) -> Path:
    """A member in GNU's PAX sparse format 1.0 whose map (read line by line from its data) never ends a line."""
    records = b"".join(_pax_record(k, v) for k, v in (("GNU.sparse.major", "1"), ("GNU.sparse.minor", "0"),
                                                      ("GNU.sparse.name", "model.onnx"),
                                                      ("GNU.sparse.realsize", "4")))
    with gzip.open(path, "wb") as out:
        head = tarfile.TarInfo("././@PaxHeader")
        head.type = tarfile.XHDTYPE
        out.write(_sized(head, len(records)) + records + _tar_block_pad(len(records)))
        out.write(_sized(tarfile.TarInfo("GNUSparseFile.0/model.onnx"), size) + b"99999999\n")
        _write_repeated(out, b"7", size - 9)
        out.write(_tar_block_pad(size) + bytes(1024))
    return path


def tar_gnu_sparse(path: Path) -> Path:
    """A .tar.gz holding one old-style GNU sparse member (type 'S')."""
    info = tarfile.TarInfo("model.onnx")
    info.type = tarfile.GNUTYPE_SPARSE
    with gzip.open(path, "wb") as out:
        out.write(_sized(info, 4, tarfile.GNU_FORMAT) + b"onnx" + _tar_block_pad(4) + bytes(1024))
    return path


def long_node_name_model(path: Path, length: int = 1 << 20) -> Path:
    """bad_session_model whose node has a ``length``-character name, which ONNX Runtime's refusal quotes whole."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    k = numpy_helper.from_array(np.ones(2, np.int64), "k")
    node = helper.make_node("Add", ["x", "k"], ["y"], name="n" * length)
    return _save(helper.make_graph([node], "bad", [x], [y], [k]), path)


def training_info_external_model(path: Path, location: str = "/etc/passwd") -> Path:
    """add_model plus training info whose initialization graph keeps a tensor's data at ``location``
    (ONNX Runtime never reads it, so only FlashML's own walk can refuse it)."""
    model = onnx.load(str(add_model(path)))
    w = numpy_helper.from_array(np.zeros(2, np.float32), "w")
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    w.external_data.add(key="location", value=location)
    out = helper.make_tensor_value_info("c", TensorProto.FLOAT, [2])
    info = onnx.TrainingInfoProto()
    info.initialization.CopyFrom(helper.make_graph([helper.make_node("Identity", ["w"], ["c"])], "init", [], [out],
                                                   [w]))
    model.training_info.append(info)
    onnx.save(model, str(path))
    return path
