"""Request ids and the access log over real HTTP (issue 25, item 4): the real server with ``--log-format json``.

Every answer carries ``X-Request-Id`` (the client's when sane), errors show it in their body and on the console's
error page, the server writes one JSON access line per request with the fields an operator searches by, and no
secret (an API key, a password, a token in a query string) or payload ever reaches the log.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from flashml.telemetry.log_format import ACCESS_FIELDS
from tests.helpers import onnx_models
from tests.helpers.server_process import SERVER_FLAGS, ServerProcess, login_token

pytestmark = pytest.mark.server

PASSWORD = "Correct-Horse-7391-staple"  # the console user's, posted at setup and at sign-in
WRONG_PASSWORD = "Wrong-Horse-8462-battery"
# Input values no log line could hold by chance: 7391.25 + 8462.5 = 15853.75.
A = {"name": "a", "datatype": "FP32", "shape": [1, 4], "data": [7391.25, 7391.25, 7391.25, 7391.25]}
B = {"name": "b", "datatype": "FP32", "shape": [1, 4], "data": [8462.5, 8462.5, 8462.5, 8462.5]}
SECRETS_IN_VALUES = ("7391.25", "8462.5", "15853.75")
QUERY_SECRET = "QuerySecret-5a7c91"
# What the server prints for a person rather than logs (the data directory, the one-time setup link): plain text.
PRINTED = ("Data directory: ", "FlashML made its data directory", "FlashML has no users yet", "  http://127.0.0.1:")


@dataclass
class Served:
    srv: ServerProcess
    admin_key: str
    infer_key: str
    browser: httpx.Client  # signed in to the console as "ada"
    answers: dict[str, httpx.Response] = field(default_factory=dict)  # by what was asked
    log: list[dict[str, Any]] = field(default_factory=list)  # the JSON lines, once the server has stopped
    text: str = ""
    folded_header_status: bytes = b""


def infer_body(rows: int = 1) -> bytes:
    a, b = ({**t, "shape": [rows, 4], "data": t["data"] * rows} for t in (A, B))
    return json.dumps({"inputs": [a, b]}).encode()


def raw_request(port: int, header_lines: bytes) -> bytes:
    """A request written by hand (httpx refuses malformed headers), and the status line of its answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n" + header_lines
                  + b"\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    return answer.split(b"\r\n", 1)[0]


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("request-ids")
    srv = ServerProcess(folder / "data", *SERVER_FLAGS, "--log-format", "json").start()
    try:
        admin_key = srv.create_key("ids-admin", "admin")
        infer_key = srv.create_key("ids-infer", "inference")
        r = httpx.post(f"{srv.url}/api/v1/models/adder/versions", timeout=60,
                       content=onnx_models.add_model(folder / "m.onnx").read_bytes(),
                       headers={"Authorization": f"Bearer {admin_key}", "content-type": "application/octet-stream"})
        assert r.status_code == 201, r.text
        browser = httpx.Client(base_url=srv.url, timeout=60)
        link = srv.setup_url()
        assert link, srv.log()
        done = browser.post("/setup/", data={"token": link.split("token=")[1], "name": "ada", "password": PASSWORD,
                                             "password_again": PASSWORD, **login_token(browser)})
        assert done.status_code == 200, done.text
        browser.cookies.clear()
        refused = browser.post("/login", data={"name": "ada", "password": WRONG_PASSWORD, **login_token(browser)})
        assert refused.status_code == 401
        signed_in = browser.post("/login", data={"name": "ada", "password": PASSWORD, **login_token(browser)})
        assert signed_in.status_code == 303, signed_in.text
        served = Served(srv, admin_key, infer_key, browser)
        ask(served, admin_key, infer_key)
    finally:
        srv.stop()
    served.text = srv.log()
    served.log = [json.loads(line) for line in served.text.splitlines() if line.startswith("{")]
    yield served
    served.browser.close()


def ask(served: Served, admin_key: str, infer_key: str) -> None:
    """Everything the tests read, sent while the server runs (its log is read once it has stopped)."""
    url, browser, answers = served.srv.url, served.browser, served.answers
    infer = {"Authorization": f"Bearer {infer_key}", "content-type": "application/json"}
    admin = {"Authorization": f"Bearer {admin_key}"}
    answers["infer"] = httpx.post(f"{url}/v2/models/adder/infer", content=infer_body(), headers=infer)
    answers["infer_sane_id"] = httpx.post(f"{url}/v2/models/adder/infer", content=infer_body(),
                                          headers={**infer, "X-Request-Id": "client-trace:42.a_b"})
    answers["infer_bad"] = httpx.post(f"{url}/v2/models/adder/infer", headers=infer,
                                      content=json.dumps({"inputs": [A]}).encode())  # b is missing: 400
    answers["management"] = httpx.get(f"{url}/api/v1/models", headers={**admin, "X-Request-Id": "mgmt-1"})
    answers["not_found"] = httpx.get(f"{url}/api/v1/no-such-thing")
    answers["static"] = httpx.get(f"{url}/static/flashml.css?token={QUERY_SECRET}")
    answers["login_page"] = httpx.get(f"{url}/login")
    answers["console_page"] = browser.get("/")
    # A console form posted without its CSRF token: refused on the console's error page (templates/error.html).
    answers["console_error"] = browser.post("/models/adder/versions/1/archive", headers={"accept": "text/html"})
    insane = {"too_long": b"x" * 129, "spaces": b"two words", "tab": b"tab\there", "non_ascii": "caf\u00e9".encode(),
              "quote": b'say"hi"', "html": b"<script>"}
    for name, value in insane.items():
        answers[f"insane_{name}"] = httpx.post(f"{url}/v2/models/adder/infer", content=infer_body(),
                                               headers={**infer, "X-Request-Id": value})  # type: ignore[dict-item]
    # A line break cannot reach FlashML: the HTTP server refuses a header folded onto a second line outright, so
    # nobody can write a second, made-up line into the log through the id.
    served.folded_header_status = raw_request(served.srv.port, b'X-Request-Id: x\r\n {"level": "FORGED"}')

    def one(rows: int) -> httpx.Response:
        return httpx.post(f"{url}/v2/models/adder/infer", content=infer_body(rows),
                          headers={**infer, "X-Request-Id": f"concurrent-{rows}"})

    with ThreadPoolExecutor(8) as pool:  # requests in flight together keep their own ids and lines
        for r in pool.map(one, range(1, 17)):
            answers[r.request.headers["x-request-id"]] = r
    time.sleep(0.2)


def access_line(served: Served, request_id: str) -> dict[str, Any]:
    found = [line for line in served.log if line["logger"] == "flashml.access" and line["request_id"] == request_id]
    assert len(found) == 1, (request_id, found)
    return found[0]


def test_a_sane_client_id_is_echoed(served):
    assert served.answers["infer_sane_id"].headers["x-request-id"] == "client-trace:42.a_b"
    assert served.answers["management"].headers["x-request-id"] == "mgmt-1"


@pytest.mark.parametrize("name", ["too_long", "spaces", "tab", "non_ascii", "quote", "html"])
def test_an_insane_client_id_is_replaced(served, name):
    r = served.answers[f"insane_{name}"]
    assert r.status_code == 200
    rid = r.headers["x-request-id"]
    assert rid.isascii() and " " not in rid and '"' not in rid and "<" not in rid and len(rid) <= 128
    assert access_line(served, rid)["status"] == 200


def test_a_folded_header_never_reaches_the_log(served):
    assert served.folded_header_status.startswith(b"HTTP/1.1 400")
    assert "FORGED" not in served.text


@pytest.mark.parametrize("asked", ["infer", "infer_bad", "management", "not_found", "static", "login_page",
                                   "console_page", "console_error"])
def test_every_answer_has_an_id_and_one_access_line(served, asked):
    r = served.answers[asked]
    rid = r.headers["x-request-id"]
    line = access_line(served, rid)
    assert line["status"] == r.status_code and line["bytes_out"] == len(r.content)
    assert line["method"] == r.request.method and line["path"] == r.request.url.path


def test_ids_are_unique(served):
    ids = [r.headers["x-request-id"] for r in served.answers.values()]
    assert len(set(ids)) == len(ids)


def test_the_error_body_and_the_console_error_page_show_the_id(served):
    for asked in ("infer_bad", "not_found"):
        r = served.answers[asked]
        assert r.status_code >= 400 and r.json()["request_id"] == r.headers["x-request-id"]
    page = served.answers["console_error"]
    assert page.status_code == 403 and page.headers["content-type"].startswith("text/html")
    assert f'<code id="request-id">{page.headers["x-request-id"]}</code>' in page.text


def test_an_inference_line_names_model_version_and_key(served):
    r = served.answers["infer"]
    line = access_line(served, r.headers["x-request-id"])
    assert set(ACCESS_FIELDS) <= set(line)
    assert {k: line[k] for k in ("method", "path", "status", "model", "version", "key_name")} == {
        "method": "POST", "path": "/v2/models/adder/infer", "status": 200, "model": "adder", "version": "1",
        "key_name": "ids-infer"}
    assert line["bytes_in"] == len(infer_body()) and line["bytes_out"] == len(r.content)
    assert 0 < line["duration_ms"] < 10_000 and line["client"] == "127.0.0.1" and line["level"] == "INFO"


def test_a_failed_inference_line(served):
    r = served.answers["infer_bad"]
    line = access_line(served, r.headers["x-request-id"])
    assert r.status_code == 400
    assert (line["status"], line["model"], line["key_name"]) == (400, "adder", "ids-infer")


def test_lines_name_the_console_user_and_the_management_key(served):
    assert access_line(served, served.answers["console_page"].headers["x-request-id"])["key_name"] == "ada"
    management = access_line(served, "mgmt-1")
    assert management["key_name"] == "ids-admin" and management["model"] is None
    assert access_line(served, served.answers["not_found"].headers["x-request-id"])["key_name"] is None


def test_concurrent_requests_keep_their_own_ids(served):
    for rows in range(1, 17):
        r = served.answers[f"concurrent-{rows}"]
        assert r.headers["x-request-id"] == f"concurrent-{rows}"
        line = access_line(served, f"concurrent-{rows}")
        assert line["bytes_in"] == len(infer_body(rows)) and line["bytes_out"] == len(r.content)


def test_every_log_line_is_one_json_object(served):
    for text in served.text.splitlines():
        if not text.strip() or text.startswith(PRINTED):
            continue
        line = json.loads(text)  # Granian's own lines too
        assert {"time", "level", "logger", "message"} <= set(line), text
    loggers = {line["logger"] for line in served.log}
    assert {"flashml.access", "_granian"} <= loggers


def test_no_secret_or_payload_reaches_the_log(served):
    text = served.text
    for secret in (served.admin_key, served.infer_key, PASSWORD, WRONG_PASSWORD, QUERY_SECRET, *SECRETS_IN_VALUES):
        assert secret not in text, secret
    for key in (served.admin_key, served.infer_key):  # nor a key's secret part alone (fml_<id>_<secret>)
        assert key.split("_", 2)[2] not in text
    assert access_line(served, served.answers["static"].headers["x-request-id"])["path"] == "/static/flashml.css"
