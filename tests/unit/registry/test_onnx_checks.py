"""Static model checks: parse errors, external data that escapes the bundle, and foreign operator domains."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from flashml.errors import ValidationFailedError
from flashml.registry.onnx_checks import DEFAULT_ALLOWED_DOMAINS, check_model
from tests.helpers.onnx_models import (
    add_model,
    custom_domain_model,
    external_data_model,
    local_function_model,
    set_external_data,
)


def refused(bundle: Path, code: str, model: str = "model.onnx", **kw) -> ValidationFailedError:
    with pytest.raises(ValidationFailedError) as info:
        check_model(bundle, model, DEFAULT_ALLOWED_DOMAINS, **kw)
    assert info.value.code == code, info.value.message
    return info.value


def external_tensor(name: str, location: str) -> TensorProto:
    t = numpy_helper.from_array(np.zeros(2, np.float32), name)
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    t.external_data.add(key="location", value=location)
    return t


def test_add_model_passes(tmp_path: Path) -> None:
    add_model(tmp_path / "model.onnx")
    (tmp_path / "flashml.toml").write_text("")
    (tmp_path / "notes.md").write_text("hi")
    report = check_model(tmp_path, "model.onnx")
    assert report.opset_imports == {"ai.onnx": 17}
    assert report.ir_version == 9
    assert report.producer == "flashml-tests"
    assert report.node_count == 1
    assert report.external_data_files == []
    assert report.extra_files == ["notes.md"]
    assert report.warnings and "notes.md" in report.warnings[0]


def test_missing_model(tmp_path: Path) -> None:
    refused(tmp_path, "missing_model")
    (tmp_path / "model.onnx").mkdir()
    refused(tmp_path, "missing_model")


@pytest.mark.parametrize("data", [b"hello world, not a model", b"\x89PNG\r\n\x1a\n\x00\x00", b"", b"\xff" * 64])
def test_not_onnx(tmp_path: Path, data: bytes) -> None:
    (tmp_path / "model.onnx").write_bytes(data)
    refused(tmp_path, "not_onnx")


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_model_is_corrupt(tmp_path: Path, keep: float) -> None:
    good = add_model(tmp_path / "ok.onnx").read_bytes()
    (tmp_path / "model.onnx").write_bytes(good[: int(len(good) * keep)])
    refused(tmp_path, "corrupt_onnx")


def test_graph_without_inputs_is_corrupt(tmp_path: Path) -> None:
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    c = helper.make_node("Constant", [], ["y"], value=numpy_helper.from_array(np.ones(1, np.float32)))
    model = helper.make_model(helper.make_graph([c], "g", [], [y]), opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(tmp_path / "model.onnx"))
    refused(tmp_path, "corrupt_onnx")


def test_checker_failure_is_corrupt(tmp_path: Path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    node = helper.make_node("Add", ["x", "nowhere"], ["y"])  # "nowhere" is never produced
    model = helper.make_model(helper.make_graph([node], "g", [x], [y]), opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(tmp_path / "model.onnx"))
    err = refused(tmp_path, "corrupt_onnx")
    assert "nowhere" in err.message


def test_external_data_passes(tmp_path: Path) -> None:
    external_data_model(tmp_path)
    report = check_model(tmp_path, "model.onnx")
    assert report.external_data_files == ["weights.bin"]
    assert report.extra_files == []


def test_external_data_in_subfolder_passes(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    external_data_model(tmp_path, location="data/w.bin")
    assert check_model(tmp_path, "model.onnx").external_data_files == ["data/w.bin"]


def test_hostile_location_written_by_the_builder(tmp_path: Path) -> None:
    (tmp_path / "bundle").mkdir()
    external_data_model(tmp_path / "bundle", location="../weights.bin")
    assert (tmp_path / "weights.bin").is_file()
    refused(tmp_path / "bundle", "unsafe_external_data")


@pytest.mark.parametrize("entries", [
    {"location": "../weights.bin"},
    {"location": "/etc/passwd"},
    {"location": "./weights.bin"},
    {"location": "sub/../weights.bin"},
    {"location": "sub\\..\\weights.bin"},
    {"location": ""},
    {"offset": "16"},
    {"length": "1000"},
    {"offset": "-1"},
    {"offset": "zero"},
])
def test_unsafe_external_data(tmp_path: Path, entries: dict[str, str]) -> None:
    set_external_data(external_data_model(tmp_path), **entries)
    refused(tmp_path, "unsafe_external_data")


def test_external_data_symlink_refused(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    external_data_model(bundle)
    os.replace(bundle / "weights.bin", tmp_path / "real.bin")
    (bundle / "weights.bin").symlink_to(tmp_path / "real.bin")
    refused(bundle, "unsafe_external_data")


def test_external_data_directory_refused(tmp_path: Path) -> None:
    external_data_model(tmp_path)
    (tmp_path / "weights.bin").unlink()
    (tmp_path / "weights.bin").mkdir()
    refused(tmp_path, "unsafe_external_data")


def test_missing_external_data(tmp_path: Path) -> None:
    external_data_model(tmp_path)
    (tmp_path / "weights.bin").unlink()
    err = refused(tmp_path, "missing_external_data")
    assert "weights.bin" in err.message


def _model_with(nodes, inits=(), functions=()) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    graph = helper.make_graph(nodes, "g", [x], [y], list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], functions=list(functions))


def test_external_data_hidden_in_constant_node(tmp_path: Path) -> None:
    const = helper.make_node("Constant", [], ["c"], value=external_tensor("c", "../secret"))
    onnx.save(_model_with([const, helper.make_node("Add", ["x", "c"], ["y"])]), str(tmp_path / "model.onnx"))
    refused(tmp_path, "unsafe_external_data")


def test_external_data_hidden_in_if_branch(tmp_path: Path) -> None:
    out = helper.make_tensor_value_info("c", TensorProto.FLOAT, [2])
    branch = helper.make_graph([helper.make_node("Constant", [], ["c"], value=external_tensor("c", "/etc/shadow"))],
                               "branch", [], [out])
    cond = numpy_helper.from_array(np.array(True), "cond")
    node = helper.make_node("If", ["cond"], ["y"], then_branch=branch, else_branch=branch)
    onnx.save(_model_with([node], [cond]), str(tmp_path / "model.onnx"))
    refused(tmp_path, "unsafe_external_data")


def test_external_data_hidden_in_local_function(tmp_path: Path) -> None:
    body = [helper.make_node("Constant", [], ["c"], value=external_tensor("c", "../../etc/passwd")),
            helper.make_node("Add", ["i", "c"], ["o"])]
    fn = helper.make_function("local", "F", ["i"], ["o"], body, [helper.make_opsetid("", 17)])
    model = _model_with([helper.make_node("F", ["x"], ["y"], domain="local")], functions=[fn])
    model.opset_import.append(helper.make_opsetid("local", 1))
    onnx.save(model, str(tmp_path / "model.onnx"))
    refused(tmp_path, "unsafe_external_data")


def test_custom_domain_refused(tmp_path: Path) -> None:
    custom_domain_model(tmp_path / "model.onnx")
    err = refused(tmp_path, "custom_op_domain")
    assert "my.custom.ops" in err.message and "'frob'" in err.message


def test_custom_domain_opset_import_alone_refused(tmp_path: Path) -> None:
    model = _model_with([helper.make_node("Add", ["x", "x"], ["y"])])
    model.opset_import.append(helper.make_opsetid("evil.ops", 1))
    onnx.save(model, str(tmp_path / "model.onnx"))
    assert refused(tmp_path, "custom_op_domain").details["domain"] == "evil.ops"


def test_custom_domain_node_without_opset_import(tmp_path: Path) -> None:
    node = helper.make_node("Frob", ["x"], ["y"], name="frob", domain="evil.ops")
    onnx.save(_model_with([node]), str(tmp_path / "model.onnx"))
    err = refused(tmp_path, "custom_op_domain")
    assert "'frob'" in err.message and err.details["domain"] == "evil.ops"


def test_allowed_domains_are_configurable(tmp_path: Path) -> None:
    add_model(tmp_path / "model.onnx")
    with pytest.raises(ValidationFailedError) as info:
        check_model(tmp_path, "model.onnx", ("ai.onnx.ml",))
    assert info.value.code == "custom_op_domain"


def test_model_local_function_domain_allowed(tmp_path: Path) -> None:
    local_function_model(tmp_path / "model.onnx")
    report = check_model(tmp_path, "model.onnx")
    assert report.opset_imports == {"ai.onnx": 17, "my.functions": 1}


def test_external_data_beside_a_model_in_a_subfolder(tmp_path: Path) -> None:
    (tmp_path / "nets").mkdir()
    external_data_model(tmp_path / "nets")
    report = check_model(tmp_path, "nets/model.onnx")
    assert report.external_data_files == ["nets/weights.bin"]
    assert report.extra_files == []


def test_model_in_subfolder_and_known_files(tmp_path: Path) -> None:
    (tmp_path / "nets").mkdir()
    add_model(tmp_path / "nets" / "m.onnx")
    (tmp_path / "labels.txt").write_text("a\n")
    report = check_model(tmp_path, "nets/m.onnx", known_files=["labels.txt"])
    assert report.extra_files == []


# ---- every place a tensor can sit: each is walked for external data ------------------------------

def _sparse(location: str) -> onnx.SparseTensorProto:
    return helper.make_sparse_tensor(external_tensor("sv", location),
                                     numpy_helper.from_array(np.array([0, 1], np.int64), "si"), [4])


def _sparse_indices(location: str) -> onnx.SparseTensorProto:
    indices = external_tensor("si", location)
    indices.data_type = TensorProto.INT64
    return helper.make_sparse_tensor(numpy_helper.from_array(np.ones(2, np.float32), "sv"), indices, [4])


def _graph_holding(location: str) -> onnx.GraphProto:
    """A small graph whose one initializer keeps its data at ``location``."""
    out = helper.make_tensor_value_info("c", TensorProto.FLOAT, [2])
    return helper.make_graph([helper.make_node("Identity", ["w"], ["c"])], "inner", [], [out],
                             [external_tensor("w", location)])


def _const_graph(location: str) -> onnx.GraphProto:
    out = helper.make_tensor_value_info("c", TensorProto.FLOAT, [2])
    return helper.make_graph([helper.make_node("Constant", [], ["c"], value=external_tensor("c", location))],
                             "inner", [], [out])


def _if(branch: onnx.GraphProto) -> onnx.NodeProto:
    return helper.make_node("If", ["cond"], ["y"], then_branch=branch, else_branch=branch)


def _training(model: onnx.ModelProto, initialization: onnx.GraphProto | None = None,
              algorithm: onnx.GraphProto | None = None) -> onnx.ModelProto:
    info = onnx.TrainingInfoProto()
    if initialization is not None:
        info.initialization.CopyFrom(initialization)
    if algorithm is not None:
        info.algorithm.CopyFrom(algorithm)
    model.training_info.append(info)
    return model


def _in_function(node: onnx.NodeProto) -> onnx.ModelProto:
    fn = helper.make_function("local", "F", ["i"], ["o"], [node, helper.make_node("Add", ["i", "c"], ["o"])],
                              [helper.make_opsetid("", 17)])
    model = _model_with([helper.make_node("F", ["x"], ["y"], domain="local")], functions=[fn])
    model.opset_import.append(helper.make_opsetid("local", 1))
    return model


ADD = helper.make_node("Add", ["x", "x"], ["y"])
COND = numpy_helper.from_array(np.array(True), "cond")
PLACES = {
    "initializer": lambda loc: _model_with([ADD], [external_tensor("w", loc)]),
    "sparse initializer values": lambda loc: _sparse_model(_sparse(loc)),
    "sparse initializer indices": lambda loc: _sparse_model(_sparse_indices(loc)),
    "attribute t": lambda loc: _model_with([helper.make_node("Constant", [], ["c"], value=external_tensor("c", loc)),
                                            helper.make_node("Add", ["x", "c"], ["y"])]),
    "attribute tensors": lambda loc: _model_with([ADD, helper.make_node(
        "Identity", ["x"], ["z"], extra=[external_tensor("a", "ok.bin"), external_tensor("b", loc)])]),
    "attribute sparse_tensor": lambda loc: _model_with([helper.make_node("Constant", [], ["c"],
                                                                         sparse_value=_sparse(loc)), ADD]),
    "attribute g (If branch)": lambda loc: _model_with([_if(_const_graph(loc))], [COND]),
    "subgraph initializer": lambda loc: _model_with([_if(_graph_holding(loc))], [COND]),
    "attribute graphs": lambda loc: _model_with([ADD, helper.make_node("Identity", ["x"], ["z"],
                                                                       bodies=[_graph_holding("ok.bin"),
                                                                               _graph_holding(loc)])]),
    "If inside an If": lambda loc: _model_with([_if(helper.make_graph(
        [_if(_const_graph(loc))], "outer", [], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
        [COND]))], [COND]),
    "training initialization initializer": lambda loc: _training(_model_with([ADD]), _graph_holding(loc)),
    "training algorithm initializer": lambda loc: _training(_model_with([ADD]), algorithm=_graph_holding(loc)),
    "training algorithm node": lambda loc: _training(_model_with([ADD]), algorithm=_const_graph(loc)),
    "training initialization subgraph": lambda loc: _training(_model_with([ADD]), helper.make_graph(
        [_if(_const_graph(loc))], "init", [], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
        [COND])),
    "function node attribute": lambda loc: _in_function(
        helper.make_node("Constant", [], ["c"], value=external_tensor("c", loc))),
    "function node subgraph": lambda loc: _in_function(_if(_const_graph(loc))),
}


def _sparse_model(sparse: onnx.SparseTensorProto) -> onnx.ModelProto:
    model = _model_with([ADD])
    model.graph.sparse_initializer.append(sparse)
    return model


@pytest.mark.parametrize("place", list(PLACES))
def test_external_data_is_checked_wherever_a_tensor_sits(tmp_path: Path, place: str) -> None:
    (tmp_path / "ok.bin").write_bytes(bytes(64))
    onnx.save(PLACES[place]("/etc/passwd"), str(tmp_path / "model.onnx"))
    err = refused(tmp_path, "unsafe_external_data")
    assert err.details["location"] == "/etc/passwd"


@pytest.mark.parametrize("place", [p for p in PLACES if p.startswith("training")])
def test_training_info_data_inside_the_bundle_is_listed(tmp_path: Path, place: str) -> None:
    (tmp_path / "ok.bin").write_bytes(bytes(64))
    onnx.save(PLACES[place]("ok.bin"), str(tmp_path / "model.onnx"))
    assert check_model(tmp_path, "model.onnx").external_data_files == ["ok.bin"]


def test_messages_quote_hostile_names_short(tmp_path: Path) -> None:
    model = _model_with([ADD], [external_tensor("t" * 100_000, "../" + "x" * 100_000)])
    onnx.save(model, str(tmp_path / "model.onnx"))
    err = refused(tmp_path, "unsafe_external_data")
    assert len(err.message) < 1000 and len(err.details["tensor"]) < 300 and len(err.details["location"]) < 300
    custom = helper.make_node("Frob", ["x"], ["y"], name="n" * 100_000, domain="d" * 100_000)
    onnx.save(_model_with([custom]), str(tmp_path / "model.onnx"))
    err = refused(tmp_path, "custom_op_domain")
    assert len(err.message) < 1000 and len(repr(err.details)) < 1000
