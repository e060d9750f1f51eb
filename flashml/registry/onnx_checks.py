"""Static checks on an uploaded ONNX model, done before onnxruntime ever sees it.

The model file is parsed without its external data; every external-data reference is checked to stay
inside the bundle, and every operator domain must be one onnxruntime ships (custom-op libraries are
never loaded, so a foreign domain could only fail later, or worse).
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError
from onnx import AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto

from flashml.errors import ValidationFailedError
from flashml.registry.archive import MAX_NAME_BYTES, shown

DEFAULT_ALLOWED_DOMAINS = ("", "ai.onnx", "ai.onnx.ml", "com.microsoft")
KNOWN_FILES = ("flashml.toml", "checksums.json")
MAX_SAID_CHARS = 1000  # of a parser's or checker's own message, which may quote names from the model


@dataclass
class ModelCheckReport:
    opset_imports: dict[str, int]
    producer: str
    ir_version: int
    external_data_files: list[str]
    node_count: int
    extra_files: list[str] = field(default_factory=list)  # bundle files no check knows about
    warnings: list[str] = field(default_factory=list)


def _fail(code: str, message: str, **details: object) -> ValidationFailedError:
    return ValidationFailedError(message, code=code, details=dict(details))


def _graph_nodes(graph: GraphProto) -> Iterator[NodeProto]:
    """Every node of a graph, subgraphs (If/Loop/Scan bodies) included."""
    return _nodes_of(graph.node)


def _nodes_of(nodes: Iterable[NodeProto]) -> Iterator[NodeProto]:
    for node in nodes:
        yield node
        for attr in node.attribute:
            for sub in _attr_graphs(attr):
                yield from _graph_nodes(sub)


def _attr_graphs(attr: AttributeProto) -> list[GraphProto]:
    return ([attr.g] if attr.HasField("g") else []) + list(attr.graphs)


def _graph_tensors(graph: GraphProto) -> Iterator[TensorProto]:
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield from (sparse.values, sparse.indices)
    yield from _node_tensors(graph.node)


def _node_tensors(nodes: Iterable[NodeProto]) -> Iterator[TensorProto]:
    for node in nodes:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("sparse_tensor"):
                yield from (attr.sparse_tensor.values, attr.sparse_tensor.indices)
            for sparse in attr.sparse_tensors:
                yield from (sparse.values, sparse.indices)
            for sub in _attr_graphs(attr):
                yield from _graph_tensors(sub)


def all_tensors(model: ModelProto) -> Iterator[TensorProto]:
    """Every tensor stored in the model: initializers, Constant attributes, subgraphs, local functions, and
    training info (its initialization and algorithm graphs), wherever onnx's format lets one sit."""
    yield from _graph_tensors(model.graph)
    for fn in model.functions:
        yield from _node_tensors(fn.node)
    for info in model.training_info:
        yield from _graph_tensors(info.initialization)
        yield from _graph_tensors(info.algorithm)


def _check_external(bundle_dir: Path, model_rel: str, tensor: TensorProto) -> str:
    """Check one external-data reference; return the data file's path relative to the bundle."""
    info = {e.key: e.value for e in tensor.external_data}
    loc = info.get("location", "")
    name, quoted = shown(tensor.name or "<unnamed>"), shown(loc)  # names in a hostile model can be megabytes

    def unsafe(why: str) -> ValidationFailedError:
        return _fail("unsafe_external_data", f"Tensor {name!r} has external data location {quoted!r} that {why}; "
                     "keep external data files beside model.onnx inside the bundle.", tensor=name, location=quoted)

    if not loc:
        raise unsafe("is empty")
    if len(loc) > MAX_NAME_BYTES:
        raise unsafe(f"is longer than {MAX_NAME_BYTES} characters")
    if "\\" in loc or "\x00" in loc or posixpath.isabs(loc) or (len(loc) > 1 and loc[1] == ":"):
        raise unsafe("is not a plain relative path")
    if ".." in loc.split("/"):
        raise unsafe("contains '..'")
    if posixpath.normpath(loc) != loc:
        raise unsafe("is not a normalized path")
    root = os.path.realpath(bundle_dir)
    # onnx and onnxruntime resolve locations against the model file's folder, not the bundle root.
    path = os.path.normpath(os.path.join(root, posixpath.dirname(model_rel), loc))
    # realpath equal to the plain join means no component is a symlink.
    if os.path.realpath(path) != path or not path.startswith(root + os.sep):
        raise unsafe("resolves outside the bundle or through a link")
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise _fail("missing_external_data", f"Tensor {name!r} keeps its data in {quoted!r}, which is not in the "
                    "bundle; include that file.", tensor=name, location=quoted) from None
    if not stat.S_ISREG(st.st_mode):
        raise unsafe("is not a regular file")
    try:
        offset = int(info.get("offset", "0"))
        length = int(info["length"]) if "length" in info else st.st_size - offset
    except ValueError:
        raise unsafe("has a non-integer offset or length") from None
    if offset < 0 or length < 0 or offset + length > st.st_size:
        raise unsafe(f"reads bytes {offset}..{offset + length} of a {st.st_size}-byte file")
    return os.path.relpath(path, root).replace(os.sep, "/")


def _check_domains(model: ModelProto, allowed: Iterable[str]) -> None:
    allowed_set = set(allowed)
    if allowed_set & {"", "ai.onnx"}:  # two spellings of the default domain
        allowed_set |= {"", "ai.onnx"}
    functions = {(f.domain, f.name) for f in model.functions}
    fn_domains = {d for d, _ in functions}
    nodes = list(_graph_nodes(model.graph)) + [n for f in model.functions for n in _nodes_of(f.node)]
    for node in nodes:
        if node.domain not in allowed_set and (node.domain, node.op_type) not in functions:
            node_name, domain, op_type = shown(node.name or node.op_type), shown(node.domain), shown(node.op_type)
            raise _fail("custom_op_domain", f"Node {node_name!r} ({op_type}) uses operator domain {domain!r}, which "
                        "needs a custom-op library; FlashML only runs built-in onnxruntime operators.",
                        domain=domain, node=shown(node.name), op_type=op_type)
    for opset in list(model.opset_import) + [o for f in model.functions for o in f.opset_import]:
        if opset.domain not in allowed_set and opset.domain not in fn_domains:
            raise _fail("custom_op_domain", f"The model imports operator domain {shown(opset.domain)!r}, which needs "
                        "a custom-op library; FlashML only runs built-in onnxruntime operators.",
                        domain=shown(opset.domain))


def _looks_like_onnx(path: Path) -> bool:
    """True when the file opens the way serialized ModelProtos do: field 1 (ir_version) with a small value."""
    with open(path, "rb") as f:
        head = f.read(2)
    return len(head) == 2 and head[0] == 0x08 and 0 < head[1] < 32


def _load(path: Path, model_rel: str) -> ModelProto:
    try:
        model = onnx.load(str(path), load_external_data=False)
    except DecodeError as e:
        if _looks_like_onnx(path):
            raise _fail("corrupt_onnx", f"{model_rel!r} starts like an ONNX model but is damaged or truncated ({e}); "
                        "upload the complete file.", model=model_rel) from e
        raise _fail("not_onnx", f"{model_rel!r} is not an ONNX model (it does not parse as one: {e}); "
                    "upload the .onnx file exported from your framework.", model=model_rel) from e
    except Exception as e:  # onnx raises assorted errors on damaged files
        said = str(e).replace(str(path), model_rel)[:MAX_SAID_CHARS]
        raise _fail("corrupt_onnx", f"{model_rel!r} could not be read as ONNX: {said}.", model=model_rel) from e
    # Random bytes sometimes parse as an empty protobuf; a real model always has these.
    if model.ir_version <= 0 or not model.HasField("graph"):
        raise _fail("not_onnx", f"{model_rel!r} is not an ONNX model (no IR version or graph); "
                    "upload the .onnx file exported from your framework.", model=model_rel)
    if not model.graph.input or not model.graph.output:
        raise _fail("corrupt_onnx", f"The graph in {model_rel!r} has no inputs or no outputs; "
                    "a servable model needs both.", model=model_rel)
    return model


def _bundle_files(bundle_dir: Path) -> list[str]:
    return sorted(p.relative_to(bundle_dir).as_posix() for p in bundle_dir.rglob("*") if p.is_file())


def check_model(bundle_dir: Path, model_rel: str, allowed_domains: Iterable[str] = DEFAULT_ALLOWED_DOMAINS,
                *, known_files: Iterable[str] = ()) -> ModelCheckReport:
    """Run every static check on ``bundle_dir/model_rel``; raise ValidationFailedError on the first failure."""
    path = bundle_dir / model_rel
    if path.is_symlink() or not path.is_file():
        raise _fail("missing_model", f"The bundle has no model file {model_rel!r}; put model.onnx at the bundle root "
                    "or name the file with 'model' in flashml.toml.", model=model_rel)
    model = _load(path, model_rel)
    external: set[str] = set()
    for tensor in all_tensors(model):
        if tensor.data_location == TensorProto.EXTERNAL:
            external.add(_check_external(bundle_dir, model_rel, tensor))
    _check_domains(model, allowed_domains)
    try:
        onnx.checker.check_model(str(path))  # the path form copes with >2 GB models and external data
    except Exception as e:  # ValidationError, and C++ errors on damaged files
        said = str(e).replace(str(bundle_dir), "<bundle>")[:MAX_SAID_CHARS]  # it may quote our path, and names
        raise _fail("corrupt_onnx", f"{model_rel!r} fails the ONNX checker: {said}", model=model_rel) from e
    known = {model_rel, *external, *KNOWN_FILES, *known_files}
    extra = [f for f in _bundle_files(bundle_dir) if f not in known]
    warnings = [f"Bundle files not used by FlashML: {', '.join(extra[:20])}"] if extra else []
    return ModelCheckReport(
        opset_imports={o.domain or "ai.onnx": o.version for o in model.opset_import},
        producer=" ".join(x for x in (model.producer_name, model.producer_version) if x),
        ir_version=model.ir_version, external_data_files=sorted(external),
        node_count=sum(1 for _ in _graph_nodes(model.graph)), extra_files=extra, warnings=warnings)
