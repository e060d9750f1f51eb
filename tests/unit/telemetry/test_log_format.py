"""Log lines as JSON (one object per line, the access line's fields as top-level keys) or as text."""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import sys

from flashml.telemetry.log_format import (
    ACCESS_FIELDS,
    ACCESS_LOGGER,
    ACCESS_TEXT,
    JsonFormatter,
    TextFormatter,
    granian_log_config,
    make_formatter,
)
from flashml.telemetry.request_context import begin

ACCESS_ARGS = ("POST", "/v2/models/adder/infer", 200, "adder", "3", "deploy", 1.23456, 140, 130, "abc-1", "10.0.0.7")


def record(name: str, msg: str, args: tuple = (), level: int = logging.INFO, exc_info=None) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, exc_info)


def test_a_plain_line_has_time_level_logger_and_message():
    line = json.loads(JsonFormatter().format(record("flashml.registry", "published %s v%d", ("adder", 3))))
    assert line["level"] == "INFO" and line["logger"] == "flashml.registry"
    assert line["message"] == "published adder v3"
    assert line["time"].endswith("Z") and line["time"][10] == "T" and len(line["time"]) == 24
    assert "request_id" not in line  # logged outside any request


def test_the_time_is_utc_to_the_millisecond():
    r = record("flashml", "x")
    r.created, r.msecs = 1_700_000_000.25, 250.0
    assert json.loads(JsonFormatter().format(r))["time"] == "2023-11-14T22:13:20.250Z"


def test_the_access_line_has_its_fields_at_the_top_level():
    line = json.loads(JsonFormatter().format(record(ACCESS_LOGGER, ACCESS_TEXT, ACCESS_ARGS)))
    assert {k: line[k] for k in ACCESS_FIELDS} == {
        "method": "POST", "path": "/v2/models/adder/infer", "status": 200, "model": "adder", "version": "3",
        "key_name": "deploy", "duration_ms": 1.235, "bytes_in": 140, "bytes_out": 130, "request_id": "abc-1",
        "client": "10.0.0.7"}
    assert line["message"] == "POST /v2/models/adder/infer 200" and line["logger"] == ACCESS_LOGGER


def test_unknown_access_fields_are_null_in_json_and_a_dash_in_text():
    args = ("GET", "/static/style.css", 404, None, None, None, 0.5, 0, 98, "abc-2", "127.0.0.1")
    line = json.loads(JsonFormatter().format(record(ACCESS_LOGGER, ACCESS_TEXT, args)))
    assert line["model"] is None and line["key_name"] is None
    text = TextFormatter().format(record(ACCESS_LOGGER, ACCESS_TEXT, args))
    assert "GET /static/style.css 404 model=- version=- key=- 0.50ms in=0 out=98 id=abc-2 client=127.0.0.1" in text
    assert "None" not in text


def test_lines_logged_during_a_request_carry_its_id():
    async def in_a_request() -> str:
        begin("req-42")
        return JsonFormatter().format(record("flashml.inference", "slow batch"))

    assert json.loads(asyncio.run(in_a_request()))["request_id"] == "req-42"


def test_a_traceback_stays_on_one_line():
    try:
        raise RuntimeError("disk on fire\nsecond line")
    except RuntimeError:
        text = JsonFormatter().format(record("flashml.api", "unhandled", level=logging.ERROR, exc_info=sys.exc_info()))
    assert "\n" not in text
    line = json.loads(text)
    assert line["level"] == "ERROR" and "RuntimeError: disk on fire\nsecond line" in line["exc_info"]


def test_odd_arguments_and_messages_still_make_json():
    line = json.loads(JsonFormatter().format(record("flashml", "%s and %r", (object, b"\xff"))))
    assert line["message"].startswith("<class 'object'> and b'\\xff'")
    line = json.loads(JsonFormatter().format(record("flashml", "quote \" tab \t nul \x00 caf\u00e9")))
    assert line["message"] == "quote \" tab \t nul \x00 caf\u00e9"
    # An access-logger line written some other way is a plain line, not mistaken for the access fields.
    line = json.loads(JsonFormatter().format(record(ACCESS_LOGGER, "started")))
    assert line["message"] == "started" and "status" not in line


def test_text_lines_look_as_before():
    text = TextFormatter().format(record("flashml", "serving on %s", ("http://127.0.0.1:8000",)))
    assert text.endswith(" INFO flashml: serving on http://127.0.0.1:8000")
    reference = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    r = record("flashml", "x")
    assert TextFormatter().format(r) == reference.format(r)


def test_the_setting_picks_the_formatter_and_granians_lines_follow():
    assert isinstance(make_formatter("json"), JsonFormatter)
    assert isinstance(make_formatter("text"), TextFormatter)
    assert granian_log_config("text") is None  # Granian's own look
    config = granian_log_config("json")
    assert config is not None
    module, _, name = config["formatters"]["json"]["()"].rpartition(".")
    assert getattr(importlib.import_module(module), name) is JsonFormatter  # the class dictConfig will build
    assert {h["formatter"] for h in config["handlers"].values()} == {"json"}
    assert set(config["loggers"]) == {"_granian", "granian.access"}
