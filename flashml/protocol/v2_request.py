"""Parse and check a V2 infer request (JSON, or JSON plus Triton's binary tensor extension)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np

from flashml.errors import BadRequestError, PayloadTooLargeError, TensorError
from flashml.protocol.tensors import datatype_of, element_count, from_binary, from_json
from flashml.signature import Signature, TensorSpec

TOO_DEEP = "The request body's JSON is nested too deeply; tensors are flat or nested once per dimension."
MAX_STRINGS = 1_000_000  # the max_request_strings setting's default
MAX_TIMEOUT_US = 86_400 * 1_000_000  # a day: longer "timeouts" are no deadline at all, and overflow clocks
# Request-level parameters we honour (``headers`` is what tritonclient's HTTP client adds for its own headers).
_KNOWN_PARAMETERS = {"binary_data_output", "priority", "timeout", "headers"}
# Triton's sequence batcher keeps a model's state between the requests of one sequence; FlashML has none, and
# answering such a request as if it were alone would silently drop the state the caller counts on.
_SEQUENCE_PARAMETERS = ("sequence_id", "sequence_start", "sequence_end")
_UNSUPPORTED_INPUT_PARAMETERS = ("shared_memory_region", "shared_memory_byte_size", "shared_memory_offset")
_UNSUPPORTED_OUTPUT_PARAMETERS = ("shared_memory_region", "classification")


@dataclass(frozen=True)
class RequestedOutput:
    name: str
    binary: bool | None  # None: follow the request's binary_data_output


@dataclass
class InferRequest:
    id: str | None
    inputs: dict[str, np.ndarray]
    outputs: list[RequestedOutput]  # empty: every output, in signature order
    binary_output_default: bool
    parameters: dict[str, Any] = field(default_factory=dict)
    timeout_us: int | None = None  # Triton's `timeout` parameter: answer 504 rather than run it later
    priority: int = 0  # Triton's `priority` parameter: 0 the default, 1 the highest, larger numbers lower

    def wants_binary(self, name: str) -> bool:
        for o in self.outputs:
            if o.name == name and o.binary is not None:
                return o.binary
        return self.binary_output_default


def parse_infer_request(body: bytes, header_length: int | None, signature: Signature,
                        max_strings: int = MAX_STRINGS) -> InferRequest:
    """The request's arrays, checked against the signature; a 400 naming the tensor when anything is off.

    BYTES tensors may hold at most ``max_strings`` elements (each is a Python object: 15.7 million empty
    strings in 60 MB took 9.6 s to read), a 413 beyond it."""
    if header_length is None:
        header_length = len(body)
    elif header_length > len(body):
        raise BadRequestError(f"Inference-Header-Content-Length is {header_length} but the body has only "
                              f"{len(body)} bytes.", code="malformed_request")
    header = _decode_header(body[:header_length])
    binary = memoryview(body)[header_length:]
    params = _dict(header.get("parameters"), "parameters")
    request_id = header.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise BadRequestError("`id` must be a string.", code="malformed_request")
    sequence = [name for name in _SEQUENCE_PARAMETERS if name in params]
    if sequence:
        raise BadRequestError(f"`parameters.{sequence[0]}` asks for Triton's sequence batching, which FlashML does "
                              "not have: send each request on its own, with a stateful model's state as an input.",
                              code="unsupported_parameter", details={"parameter": sequence[0]})
    unknown = sorted(set(params) - _KNOWN_PARAMETERS) if params else None
    if unknown:
        raise BadRequestError(f"Unsupported request parameter(s): {', '.join(unknown)}.",
                              code="unsupported_parameter", details={"parameter": unknown[0]})
    inputs = _parse_inputs(header.get("inputs"), binary, signature, max_strings)
    outputs = _parse_outputs(header.get("outputs"), signature)
    binary_default = params.get("binary_data_output", False)
    if not isinstance(binary_default, bool):
        raise BadRequestError("`parameters.binary_data_output` must be true or false.", code="malformed_request")
    timeout = params.get("timeout")
    if timeout is not None and (not isinstance(timeout, int) or isinstance(timeout, bool)
                                or not 0 <= timeout <= MAX_TIMEOUT_US):
        raise BadRequestError(f"`parameters.timeout` must be a whole number of microseconds from 0 to "
                              f"{MAX_TIMEOUT_US} (a day).", code="malformed_request",
                              details={"parameter": "timeout"})
    priority = params.get("priority", 0)
    if not isinstance(priority, int) or isinstance(priority, bool) or priority < 0:
        raise BadRequestError("`parameters.priority` must be a whole number: 0 for the default, 1 for the highest, "
                              "larger numbers for lower priorities.", code="malformed_request",
                              details={"parameter": "priority"})
    return InferRequest(request_id, inputs, outputs, binary_default, params, timeout or None, priority)


class _RawInput(msgspec.Struct):
    """An input of a large request, its `data` kept as text for ``from_json`` to read in pieces."""
    name: Any = None
    datatype: Any = None
    shape: Any = None
    parameters: Any = None
    data: msgspec.Raw = msgspec.Raw(b"")


class _RawHeader(msgspec.Struct):
    id: Any = None
    inputs: list[_RawInput] = msgspec.field(default_factory=list)
    outputs: Any = None
    parameters: Any = None


LARGE_HEADER_BYTES = 1 << 20  # a JSON header past this has its tensors' data read in pieces


def _large_header(raw: bytes | memoryview) -> dict[str, Any] | None:
    """The header with each input's `data` as undecoded text, or None when it does not have the usual form
    (then the plain decode says what is wrong)."""
    try:
        header = msgspec.json.decode(raw, type=_RawHeader)
    except (msgspec.DecodeError, RecursionError):
        return None
    inputs = []
    for item in header.inputs:
        entry = {f: getattr(item, f) for f in ("name", "datatype", "shape", "parameters")
                 if getattr(item, f) is not None}
        if len(item.data):
            entry["data"] = item.data
        inputs.append(entry)
    return {"id": header.id, "inputs": inputs, "outputs": header.outputs, "parameters": header.parameters}


def _decode_header(raw: bytes) -> dict[str, Any]:
    if len(raw) > LARGE_HEADER_BYTES:
        large = _large_header(raw)
        if large is not None:
            return large
    try:
        header = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise BadRequestError(f"The request body is not valid JSON: {exc}.", code="malformed_request") from None
    except RecursionError:
        raise BadRequestError(TOO_DEEP, code="malformed_request") from None
    if not isinstance(header, dict):
        raise BadRequestError("The request body must be a JSON object with `inputs`.", code="malformed_request")
    return header


def _dict(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequestError(f"`{what}` must be a JSON object.", code="malformed_request")
    return value


def _parse_inputs(items: Any, binary: memoryview, signature: Signature, max_strings: int) -> dict[str, np.ndarray]:
    if not isinstance(items, list):
        raise BadRequestError("`inputs` must be a list of tensors.", code="malformed_request")
    arrays: dict[str, np.ndarray] = {}
    offset = 0
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise BadRequestError("Each input must be an object with a `name`.", code="malformed_request")
        name = item["name"]
        spec = signature.input(name)
        if spec is None:
            expected = ", ".join(t.name for t in signature.inputs)
            raise TensorError(f"Unknown input {name!r}; this model takes: {expected}.", code="unknown_input")
        if name in arrays:
            raise TensorError(f"Input {name!r} is given twice.", code="duplicate_input")
        dt = datatype_of(name, item.get("datatype"))
        if dt.v2 != spec.datatype:
            raise TensorError(f"Input {name!r} must be {spec.datatype}, not {dt.v2}.", code="tensor_datatype")
        shape = _shape(name, item.get("shape"), spec)
        if dt.v2 == "BYTES" and element_count(shape) > max_strings:
            raise PayloadTooLargeError(f"Input {name!r}: shape {shape} holds more strings than this server takes in "
                                       f"one request ({max_strings}, setting max_request_strings); send fewer per "
                                       "request.", code="too_many_strings", details={"input": name})
        params = item.get("parameters")
        size = None
        if params is not None:  # most JSON inputs have none: skip the checks (and their f-strings)
            params = _dict(params, f"inputs[{name}].parameters")
            for p in _UNSUPPORTED_INPUT_PARAMETERS:
                if p in params:
                    raise BadRequestError(f"Input {name!r}: shared memory is not supported by this server.",
                                          code="unsupported_parameter")
            size = params.get("binary_data_size")
        if size is None:
            if "data" not in item:
                raise TensorError(f"Input {name!r} has neither `data` nor `binary_data_size`.",
                                  code="malformed_request")
            arrays[name] = from_json(name, dt, shape, item["data"])
        else:
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise TensorError(f"Input {name!r}: binary_data_size must be a non-negative integer.",
                                  code="binary_size")
            if offset + size > len(binary):
                raise TensorError(f"Input {name!r}: binary_data_size {size} runs past the end of the body.",
                                  code="binary_size")
            arrays[name] = from_binary(name, dt, shape, binary[offset:offset + size])
            offset += size
    if offset != len(binary):
        raise TensorError(f"The body has {len(binary) - offset} bytes of binary data that no input claims.",
                          code="binary_size")
    missing = [t.name for t in signature.inputs if t.name not in arrays]
    if missing:
        raise TensorError(f"Missing input(s): {', '.join(missing)}.", code="missing_input")
    return arrays


def _shape(name: str, shape: Any, spec: TensorSpec) -> list[int]:
    # Plain loops: this runs for every input of every request, and generators cost more than the checks.
    if type(shape) is not list:
        shape = None
    else:
        for d in shape:
            if type(d) is not int or d < 0:  # bool is not int here
                shape = None
                break
    if shape is None:
        raise TensorError(f"Input {name!r}: `shape` must be a list of non-negative integers.",
                          code="tensor_shape")
    fits = len(shape) == len(spec.shape)
    if fits:
        for want, got in zip(spec.shape, shape):  # noqa: B905 - the lengths are equal
            if want != -1 and want != got:
                fits = False
                break
    if not fits:
        raise TensorError(f"Input {name!r}: shape {shape} does not fit {_pretty(spec.shape)} "
                          "(-1 is any size).", code="tensor_shape")
    if element_count(shape) > 2**31:
        raise TensorError(f"Input {name!r}: shape {shape} is too large.", code="tensor_shape")
    return shape


def _pretty(shape: list[int]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _parse_outputs(items: Any, signature: Signature) -> list[RequestedOutput]:
    if items is None:
        return []
    if not isinstance(items, list):
        raise BadRequestError("`outputs` must be a list.", code="malformed_request")
    requested: list[RequestedOutput] = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise BadRequestError("Each requested output must be an object with a `name`.", code="malformed_request")
        name = item["name"]
        if signature.output(name) is None:
            expected = ", ".join(t.name for t in signature.outputs)
            raise TensorError(f"Unknown output {name!r}; this model gives: {expected}.", code="unknown_output")
        params = _dict(item.get("parameters"), f"outputs[{name}].parameters")
        for p in _UNSUPPORTED_OUTPUT_PARAMETERS:
            if p in params:
                raise BadRequestError(f"Output {name!r}: parameter {p!r} is not supported by this server.",
                                      code="unsupported_parameter")
        binary = params.get("binary_data")
        if binary is not None and not isinstance(binary, bool):
            raise BadRequestError(f"Output {name!r}: binary_data must be true or false.", code="malformed_request")
        requested.append(RequestedOutput(name, binary))
    return requested
