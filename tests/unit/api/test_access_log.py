"""The access line's parts that need no server: which model a path is about, the client behind a trusted proxy,
and a record any logging handler takes."""

from __future__ import annotations

import logging
import time
from types import SimpleNamespace

import pytest

from flashml.api.access_log import AccessLog, AccessRecord, model_of
from flashml.telemetry.log_format import ACCESS_LOGGER, ACCESS_TEXT
from flashml.telemetry.request_context import RequestContext


@pytest.mark.parametrize(("path", "headers", "expected"), [
    ("/v2/models/adder/infer", None, ("adder", None)),
    ("/v2/models/adder/infer", [("FlashML-Model-Version", "3")], ("adder", "3")),
    ("/v2/models/adder/versions/2/infer", None, ("adder", "2")),
    ("/v1/models/pets/predict", [("flashml-model-version", "7")], ("pets", "7")),
    ("/api/v1/models/adder/versions/4/archive", None, ("adder", "4")),
    ("/api/v1/models/adder/aliases", None, ("adder", None)),
    ("/models/adder", [("content-type", "text/html")], ("adder", None)),  # the console's model page
    ("/v2/models/stats", None, (None, None)),  # Triton's statistics of every model
    ("/api/v1/keys", None, (None, None)),
    ("/static/flashml.css", None, (None, None)),
])
def test_the_model_and_version_a_path_is_about(path, headers, expected):
    assert model_of(path, headers) == expected


def scope(client: str, forwarded_for: str | None = None) -> SimpleNamespace:
    headers = {"x-forwarded-for": forwarded_for} if forwarded_for else {}
    return SimpleNamespace(method="GET", path="/v2/health/ready", client=client, headers=headers)


def written(access: AccessLog, request: SimpleNamespace, caplog) -> logging.LogRecord:
    context = RequestContext("rid-1")
    context.caller = "deploy"
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        access.write(request, context, time.perf_counter(), 200, 0, 14, None, None)
    (record,) = [r for r in caplog.records if r.name == ACCESS_LOGGER]
    return record


def test_the_client_is_the_peer_unless_a_trusted_proxy_forwards(caplog):
    assert written(AccessLog(True), scope("127.0.0.1:5000", "6.6.6.6"), caplog).args[-1] == "127.0.0.1"
    caplog.clear()
    behind_proxy = AccessLog(True, ("10.0.0.0/8",))
    assert written(behind_proxy, scope("10.0.0.2:5000", "6.6.6.6, 192.0.2.7"), caplog).args[-1] == "192.0.2.7"
    caplog.clear()
    assert written(behind_proxy, scope("[::1]:5000", "6.6.6.6"), caplog).args[-1] == "::1"  # not a trusted peer


def test_the_lean_record_reads_like_logging_own(caplog):
    record = written(AccessLog(True), scope("127.0.0.1:5000"), caplog)
    assert isinstance(record, AccessRecord)
    reference = logging.LogRecord(ACCESS_LOGGER, logging.INFO, __file__, 0, ACCESS_TEXT, record.args, None)
    assert set(vars(reference)) <= set(vars(record))  # every attribute a handler or formatter may read
    assert record.getMessage().startswith("GET /v2/health/ready 200 model=None")
    assert (record.levelname, record.process, record.threadName) == ("INFO", reference.process, reference.threadName)
    assert abs(record.created - reference.created) < 5 and 0 <= record.msecs < 1000
    assert logging.Formatter("%(asctime)s %(module)s %(filename)s %(processName)s %(message)s").format(record)


def test_nothing_is_written_when_the_setting_is_off_or_the_level_above_info():
    assert not AccessLog(False).wanted()
    logger = logging.getLogger(ACCESS_LOGGER)
    before = logger.level
    try:
        logger.setLevel(logging.WARNING)
        assert not AccessLog(True).wanted()
        logger.setLevel(logging.INFO)
        assert AccessLog(True).wanted()
    finally:
        logger.setLevel(before)
