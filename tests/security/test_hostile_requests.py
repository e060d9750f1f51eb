"""Requests anyone can send get a clean 4xx, never a 500, and a huge one does not stall everyone else.

Found by hand and by schemathesis: a non-Latin-1 path, JSON nested 1,000 levels, `FlashML-Timeout-Ms: inf`,
integer ids past SQLite's range (500s); 15.7 million empty strings or 30 million numbers in one body (the event
loop busy for seconds, `/v2/health/live` waiting behind it).
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import numpy as np
import onnx
import pytest

from flashml.errors import BadRequestError, PayloadTooLargeError, TensorError
from flashml.jobs import formats
from flashml.protocol.v2_request import LARGE_HEADER_BYTES, parse_infer_request
from flashml.signature import Signature, TensorSpec
from tests.helpers.onnx_models import add_model, identity_model
from tests.helpers.server_process import ServerProcess

DEEP = "[" * 1000 + "1" + "]" * 1000
DEEP_OBJECT = '{"a":' * 1000 + "1" + "}" * 1000


def _signature(datatype: str = "FP32", shape: tuple[int, ...] = (-1, 4)) -> Signature:
    return Signature(inputs=[TensorSpec("x", datatype, list(shape))], outputs=[TensorSpec("y", datatype, list(shape))])


def _body(data: str, datatype: str = "FP32", shape: str = "[1,4]", extra: str = "") -> bytes:
    return ('{"inputs":[{"name":"x","shape":' + shape + ',"datatype":"' + datatype + '","data":' + data + extra
            + "}]}").encode()


@pytest.mark.parametrize("body", [
    _body(DEEP),
    _body(DEEP.replace("1", '"a"'), "BYTES"),
    ('{"parameters":{"headers":' + DEEP_OBJECT + '},"inputs":[]}').encode(),
    _body("[1,2,3,4]", extra=',"parameters":' + DEEP_OBJECT),
], ids=["data", "bytes-data", "parameters", "input-parameters"])
def test_json_nested_too_deeply_is_a_400(body: bytes) -> None:
    with pytest.raises(BadRequestError) as caught:
        parse_infer_request(body, None, _signature("BYTES" if b"BYTES" in body else "FP32"))
    assert caught.value.status == 400


@pytest.mark.parametrize("timeout", [-1, 10**30, 86_400 * 10**6 + 1])
def test_triton_timeout_parameter_out_of_range_is_a_400(timeout: int) -> None:
    body = json.dumps({"parameters": {"timeout": timeout},
                       "inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}).encode()
    with pytest.raises(BadRequestError, match="timeout"):
        parse_infer_request(body, None, _signature())


def test_too_many_strings_are_refused_before_they_are_read() -> None:
    body = _body("[" + ",".join(['""'] * 2001) + "]", "BYTES", shape="[1,2001]")
    with pytest.raises(PayloadTooLargeError) as caught:
        parse_infer_request(body, None, _signature("BYTES", (-1, -1)), max_strings=2000)
    assert caught.value.code == "too_many_strings"


@pytest.mark.parametrize("size", [10, 2_000_000], ids=["small", "large-body"])
def test_more_strings_than_the_shape_holds_are_refused(size: int) -> None:
    body = _body("[" + ",".join(['"s"'] * size) + "]", "BYTES", shape="[1,3]")
    with pytest.raises(TensorError) as caught:
        parse_infer_request(body, None, _signature("BYTES", (-1, -1)))
    assert caught.value.code == "tensor_element_count"


@pytest.mark.parametrize(("datatype", "values"), [
    ("FP32", np.arange(400_000, dtype=np.float32).reshape(100_000, 4) / 7),
    ("INT64", np.arange(400_000, dtype=np.int64).reshape(100_000, 4) * 3_000_000_000),
    ("BOOL", (np.arange(400_000) % 3 == 0).reshape(100_000, 4)),
    ("BYTES", np.array([f"t{i},[x]\\\"" for i in range(400_000)], dtype=object).reshape(100_000, 4)),
])
@pytest.mark.parametrize("nested", [False, True])
def test_a_large_body_reads_the_same_as_a_small_one(datatype: str, values: np.ndarray, nested: bool) -> None:
    data = values.tolist() if nested else values.reshape(-1).tolist()
    body = json.dumps({"inputs": [{"name": "x", "shape": [100_000, 4], "datatype": datatype, "data": data}]},
                      separators=(",", ": ")).encode()
    assert len(body) > LARGE_HEADER_BYTES  # the piecewise path
    got = parse_infer_request(body, None, _signature(datatype)).inputs["x"]
    assert got.shape == (100_000, 4)
    assert np.array_equal(got, values.astype(got.dtype))


@pytest.mark.parametrize("data", ["[1,2,3]", '["a","b","c","d"]', "[1,2,,3,4]", "[1,[2,3],4,5]"])
def test_a_large_body_with_bad_numbers_is_a_400(data: str) -> None:
    padding = " " * (LARGE_HEADER_BYTES + 1)  # blanks make the body large without making the data valid
    with pytest.raises(BadRequestError):
        parse_infer_request(_body(data + padding), None, _signature())


def test_a_jsonl_dataset_row_nested_too_deeply_is_a_row_error() -> None:
    rows = list(formats._jsonl_rows(io.StringIO('{"x": 1}\n' + DEEP + "\n")))
    assert rows[0] == {"x": 1} and isinstance(rows[1], str) and "deeply" in rows[1]


# ---- over HTTP, on the real server ----

@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("hostile") / "data", "--device", "cpu").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(srv: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    key = srv.create_key("hostile admin", "admin")
    folder = tmp_path_factory.mktemp("models")
    with httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {key}"}, timeout=120) as c:
        for name, path in (("add", add_model(folder / "add.onnx")),
                           ("text", identity_model(folder / "text.onnx", onnx.TensorProto.STRING, ("batch", "n")))):
            answer = c.post(f"/api/v1/models/{name}/versions", content=path.read_bytes())
            assert answer.status_code == 201, answer.text
        yield c


def _no_traceback(srv: ServerProcess) -> None:
    assert "Traceback" not in srv.log()


@pytest.mark.server
@pytest.mark.parametrize("path", ["/x%F0%9F%98%80", "/x%FF%FE", "/api/v1/models/%F0%9F%98%80", "/static/%2525",
                                  "/v2/health/live?q=%F0%9F%98%80", "/models?x=\u00e9\U0001F600"])
def test_paths_and_queries_of_any_text_are_not_500s(srv: ServerProcess, client: httpx.Client, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code < 500, answer.text
    _no_traceback(srv)


@pytest.mark.server
@pytest.mark.parametrize(("method", "path"), [("PATCH", "/api/v1/models/add"), ("POST", "/v1/models/add/predict"),
                                             ("PUT", "/api/v1/models/add/aliases/production")])
def test_management_bodies_nested_too_deeply_are_4xx(srv: ServerProcess, client: httpx.Client, method: str,
                                                     path: str) -> None:
    answer = client.request(method, path, content=DEEP_OBJECT, headers={"Content-Type": "application/json"})
    assert 400 <= answer.status_code < 500, answer.text
    _no_traceback(srv)


@pytest.mark.server
@pytest.mark.parametrize("value", ["inf", "1e308", "nan", "-1", "86400001"])
def test_timeout_header_out_of_range_is_a_400(srv: ServerProcess, client: httpx.Client, value: str) -> None:
    body = {"inputs": [{"name": n, "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]} for n in "ab"]}
    answer = client.post("/v2/models/add/infer", json=body, headers={"FlashML-Timeout-Ms": value})
    assert answer.status_code == 400 and answer.json()["code"] == "malformed_request"
    _no_traceback(srv)


@pytest.mark.server
@pytest.mark.parametrize("path", ["/api/v1/jobs/99999999999999999999", "/api/v1/keys/99999999999999999999",
                                  "/api/v1/models/add/versions/9223372036854775808"])
def test_integer_ids_past_any_row_are_4xx(srv: ServerProcess, client: httpx.Client, path: str) -> None:
    answer = client.get(path)
    assert 400 <= answer.status_code < 500 and "code" in answer.json(), answer.text
    _no_traceback(srv)


POLL = """
import sys, time, httpx
seconds, url = float(sys.argv[1]), sys.argv[2]
slowest, end = 0.0, time.monotonic() + seconds
with httpx.Client() as c:
    while time.monotonic() < end:
        t = time.monotonic()
        c.get(url, timeout=30)
        slowest = max(slowest, time.monotonic() - t)
        time.sleep(0.01)
print(slowest)
"""


@pytest.mark.server
@pytest.mark.parametrize("kind", ["strings", "numbers"])
def test_health_keeps_answering_while_a_huge_body_is_read(srv: ServerProcess, client: httpx.Client,
                                                          kind: str) -> None:
    if kind == "strings":  # the shape says 3, the data holds 15 million: refused without reading them all
        n = 15_000_000
        body = b'{"inputs":[{"name":"x","shape":[1,3],"datatype":"BYTES","data":[' + b",".join([b'""'] * n) + b"]}]}"
        model = "text"
    else:  # 12 million numbers, 48 MB of JSON
        n = 12_000_000
        rows = b",".join([b"1.5"] * n)
        body = (b'{"inputs":[{"name":"a","shape":[%d,4],"datatype":"FP32","data":[' % (n // 4) + rows +
                b']},{"name":"b","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}')
        model = "add"
    poll = subprocess.Popen([sys.executable, "-c", POLL, "6", f"{srv.url}/v2/health/live"], stdout=subprocess.PIPE,
                            text=True)
    time.sleep(1)
    answer = client.post(f"/v2/models/{model}/infer", content=body)
    assert answer.status_code == 400, answer.text
    slowest = float(poll.communicate(timeout=60)[0])
    assert slowest < 1.0, f"/v2/health/live took {slowest:.2f} s while the body was read"
    _no_traceback(srv)
