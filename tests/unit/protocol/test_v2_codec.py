"""The V2 tensor codec: JSON and binary tensors in, checked against a signature; JSON and binary out."""

from __future__ import annotations

import json
import struct

import ml_dtypes
import numpy as np
import pytest
from tritonclient.utils import deserialize_bytes_tensor, serialize_byte_tensor

from flashml.errors import BadRequestError
from flashml.protocol.v2_request import parse_infer_request
from flashml.protocol.v2_response import HEADER_LENGTH, encode_infer_response
from flashml.signature import Signature, TensorSpec

SIG = Signature([TensorSpec("a", "FP32", [-1, 4]), TensorSpec("t", "BYTES", [-1])],
                [TensorSpec("y", "FP32", [-1, 4]), TensorSpec("s", "BYTES", [-1])])


def _body(inputs, **extra):
    return json.dumps({"inputs": inputs, **extra}).encode()


def _parse(inputs, sig=SIG, **extra):
    return parse_infer_request(_body(inputs, **extra), None, sig)


A = {"name": "a", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}
T = {"name": "t", "datatype": "BYTES", "shape": [2], "data": ["x", "hé"]}


def test_flat_and_nested_json_give_the_same_array():
    flat = _parse([A, T]).inputs["a"]
    nested = _parse([{**A, "shape": [1, 4], "data": [[1, 2, 3, 4]]}, T]).inputs["a"]
    assert flat.dtype == np.float32 and flat.shape == (1, 4)
    np.testing.assert_array_equal(flat, nested)
    assert _parse([A, T]).inputs["t"].tolist() == ["x", "hé"]


@pytest.mark.parametrize("dt,data", [("INT8", [1, -2]), ("UINT64", [0, 2**63]), ("BOOL", [True, False]),
                                     ("FP16", [0.5, 1.0]), ("FP64", [1e300, 2]), ("BF16", [1.5, -2])])
def test_every_numeric_datatype_from_json_and_back(dt, data):
    sig = Signature([TensorSpec("x", dt, [2])], [TensorSpec("x", dt, [2])])
    arr = _parse([{"name": "x", "datatype": dt, "shape": [2], "data": data}], sig).inputs["x"]
    req = _parse([{"name": "x", "datatype": dt, "shape": [2], "data": data}], sig)
    body, headers = encode_infer_response("m", "1", None, {"x": arr}, req, sig)
    assert headers == {}
    out = json.loads(body)["outputs"][0]
    assert out == {"name": "x", "datatype": dt, "shape": [2], "data": [type(v)(v) for v in data]}
    if dt == "BF16":
        assert arr.dtype == ml_dtypes.bfloat16


@pytest.mark.parametrize("inp,code,mentions", [
    ({**A, "data": [1.5, 2, 3, "x"]}, "tensor_datatype", "'a'"),
    ({**A, "data": [[1, 2], [3]]}, "tensor_shape", "ragged"),
    ({**A, "shape": [1, 3], "data": [1, 2, 3]}, "tensor_shape", "[-1, 4]"),
    ({**A, "shape": [4], "data": [1, 2, 3, 4]}, "tensor_shape", "'a'"),
    ({**A, "shape": [2, 4]}, "tensor_element_count", "8"),
    ({**A, "shape": [1, "4"]}, "tensor_shape", "non-negative"),
    ({**A, "datatype": "FP99"}, "tensor_datatype", "FP99"),
    ({k: v for k, v in A.items() if k != "data"}, "malformed_request", "neither"),
])
def test_bad_json_tensors_name_the_tensor(inp, code, mentions):
    with pytest.raises(BadRequestError) as err:
        _parse([inp, T])
    assert err.value.code == code and mentions in err.value.message


def test_integers_out_of_range_and_floats_into_ints_are_refused():
    sig = Signature([TensorSpec("x", "UINT8", [2])], [])
    for data in ([1, 300], [1, -1], [1.5, 2]):
        with pytest.raises(BadRequestError) as err:
            _parse([{"name": "x", "datatype": "UINT8", "shape": [2], "data": data}], sig)
        assert err.value.code == "tensor_datatype"


def test_bytes_must_be_strings():
    with pytest.raises(BadRequestError) as err:
        _parse([A, {**T, "data": ["x", 3]}])
    assert err.value.code == "tensor_datatype"


@pytest.mark.parametrize("body,code", [(b"{nope", "malformed_request"), (b"[1]", "malformed_request"),
                                       (b'{"inputs": 3}', "malformed_request")])
def test_malformed_bodies(body, code):
    with pytest.raises(BadRequestError) as err:
        parse_infer_request(body, None, SIG)
    assert err.value.code == code


def test_unknown_and_missing_and_duplicate_inputs():
    for inputs, code in (([A, T, {**A, "name": "zz"}], "unknown_input"), ([A], "missing_input"),
                         ([A, T, A], "duplicate_input")):
        with pytest.raises(BadRequestError) as err:
            _parse(inputs)
        assert err.value.code == code


def test_sequence_parameters_are_refused_naming_the_parameter_and_priority_is_read():
    for name, value in (("sequence_id", 7), ("sequence_start", True), ("sequence_end", True)):
        with pytest.raises(BadRequestError) as err:
            _parse([A, T], parameters={name: value})
        assert err.value.code == "unsupported_parameter" and err.value.details == {"parameter": name}
        assert f"parameters.{name}" in err.value.message and "sequence batching" in err.value.message
    assert _parse([A, T], parameters={"priority": 3}).priority == 3
    assert _parse([A, T]).priority == 0
    for bad in (-1, 1.5, True, "high"):
        with pytest.raises(BadRequestError) as err:
            _parse([A, T], parameters={"priority": bad})
        assert err.value.code == "malformed_request" and err.value.details == {"parameter": "priority"}


def test_triton_priorities_sit_around_the_default_and_ahead_of_batch_jobs():
    from flashml.inference.service import PRIORITY_ONLINE, online_priority
    from flashml.jobs.job_runner import PRIORITY_BATCH

    levels = [online_priority(p) for p in (1, 0, 2, 3, 100)]
    assert levels == sorted(levels) and online_priority(0) == PRIORITY_ONLINE  # 1 first, then none, then 2, 3...
    assert all(level < PRIORITY_BATCH for level in levels)


def test_unsupported_parameters_are_refused_not_ignored():
    with pytest.raises(BadRequestError) as err:
        _parse([A, T], parameters={"shared_memory_region": "r"})
    assert err.value.code == "unsupported_parameter"
    with pytest.raises(BadRequestError) as err:
        _parse([{**A, "parameters": {"shared_memory_region": "r"}}, T])
    assert err.value.code == "unsupported_parameter"
    with pytest.raises(BadRequestError) as err:
        _parse([A, T], outputs=[{"name": "y", "parameters": {"classification": 2}}])
    assert err.value.code == "unsupported_parameter"


def _binary_request(arrays: dict[str, np.ndarray], datatypes: dict[str, str], **extra):
    inputs, blobs = [], []
    for name, arr in arrays.items():
        blob = serialize_byte_tensor(arr).item() if datatypes[name] == "BYTES" else arr.tobytes()
        inputs.append({"name": name, "datatype": datatypes[name], "shape": list(arr.shape),
                       "parameters": {"binary_data_size": len(blob)}})
        blobs.append(blob)
    head = json.dumps({"inputs": inputs, **extra}).encode()
    return head + b"".join(blobs), len(head)


def test_binary_inputs_as_tritonclient_writes_them():
    a = np.arange(8, dtype=np.float32).reshape(2, 4)
    t = np.array([b"alpha", "βeta".encode(), b""], dtype=object)
    body, n = _binary_request({"a": a, "t": t}, {"a": "FP32", "t": "BYTES"})
    req = parse_infer_request(body, n, SIG)
    np.testing.assert_array_equal(req.inputs["a"], a)
    assert req.inputs["t"].tolist() == ["alpha", "βeta", ""]


@pytest.mark.parametrize("cut,code", [(1, "binary_size"), (-1, "binary_size")])
def test_binary_sizes_must_add_up(cut, code):
    a = np.arange(8, dtype=np.float32).reshape(2, 4)
    t = np.array([b"x"], dtype=object)
    body, n = _binary_request({"a": a, "t": t}, {"a": "FP32", "t": "BYTES"})
    body = body + b"\0" if cut == 1 else body[:-1]
    with pytest.raises(BadRequestError) as err:
        parse_infer_request(body, n, SIG)
    assert err.value.code == code


def test_binary_size_must_match_the_shape():
    a = np.arange(8, dtype=np.float32).reshape(2, 4)
    blob = a.tobytes()[:-4]
    head = json.dumps({"inputs": [{"name": "a", "datatype": "FP32", "shape": [2, 4],
                                   "parameters": {"binary_data_size": len(blob)}}, T]}).encode()
    with pytest.raises(BadRequestError) as err:
        parse_infer_request(head + blob, len(head), SIG)
    assert err.value.code == "binary_size" and "32 bytes" in err.value.message


def test_header_length_past_the_body_is_malformed():
    with pytest.raises(BadRequestError) as err:
        parse_infer_request(b"{}", 10, SIG)
    assert err.value.code == "malformed_request"


def test_non_utf8_bytes_are_refused():
    bad = struct.pack("<I", 2) + b"\xff\xfe"
    head = json.dumps({"inputs": [A, {"name": "t", "datatype": "BYTES", "shape": [1],
                                      "parameters": {"binary_data_size": len(bad)}}]}).encode()
    with pytest.raises(BadRequestError) as err:
        parse_infer_request(head + bad, len(head), SIG)
    assert err.value.code == "tensor_datatype"


def test_binary_outputs_follow_the_per_output_and_default_flags():
    req = _parse([A, T], parameters={"binary_data_output": True},
                 outputs=[{"name": "y"}, {"name": "s", "parameters": {"binary_data": False}}])
    y = np.ones((1, 4), dtype=np.float32)
    s = np.array(["ok", "βeta"], dtype=object)
    body, headers = encode_infer_response("m", "3", "req-1", {"y": y, "s": s}, req, SIG)
    n = int(headers[HEADER_LENGTH])
    head = json.loads(body[:n])
    assert head["model_name"] == "m" and head["model_version"] == "3" and head["id"] == "req-1"
    y_out, s_out = head["outputs"]
    assert y_out["parameters"]["binary_data_size"] == 16 and "data" not in y_out
    assert s_out["data"] == ["ok", "βeta"]
    np.testing.assert_array_equal(np.frombuffer(body[n:], dtype=np.float32).reshape(1, 4), y)


def test_binary_bytes_output_is_length_prefixed():
    req = _parse([A, T], outputs=[{"name": "s", "parameters": {"binary_data": True}}])
    body, headers = encode_infer_response("m", "1", None, {"s": np.array(["a", "βc"], dtype=object)}, req, SIG)
    n = int(headers[HEADER_LENGTH])
    assert deserialize_bytes_tensor(body[n:]).tolist() == [b"a", "βc".encode()]
