"""How log lines look: text for a person, or one JSON object per line for a log collector (setting log_format).

Every line in JSON has ``time`` (UTC, ISO 8601 with milliseconds), ``level``, ``logger`` and ``message``, and
``request_id`` when it was logged while a request was answered. The access log's line (logger
``flashml.access``) also has its fields as top-level keys (``ACCESS_FIELDS``): the writer passes them as the
record's arguments, in that order, so a request pays for no dictionary, and they are named only here, when the
line is written.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import msgspec

from flashml.telemetry.request_context import request_id

ACCESS_LOGGER = "flashml.access"
# The access line's fields, in the order of the record's arguments (flashml.api.access_log writes them; the JSON
# formatter names them again in one literal, tests/unit/telemetry/test_log_format.py holds the two together).
ACCESS_FIELDS = ("method", "path", "status", "model", "version", "key_name", "duration_ms", "bytes_in", "bytes_out",
                 "request_id", "client")
# The same line as text: what the text format shows, and what getMessage() gives in JSON mode.
ACCESS_TEXT = '%s %s %s model=%s version=%s key=%s %.2fms in=%d out=%d id=%s client=%s'
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_encoder = msgspec.json.Encoder(enc_hook=str)  # str() for anything a log call hands over that JSON has no type for


def _access_args(record: logging.LogRecord) -> tuple[Any, ...] | None:
    """The access line's fields when ``record`` is one (a line of that logger written some other way: None)."""
    args = record.args
    if record.name == ACCESS_LOGGER and isinstance(args, tuple) and len(args) == len(ACCESS_FIELDS):
        return args
    return None


class JsonFormatter(logging.Formatter):
    """One JSON object per line (no line breaks inside: JSON escapes them, tracebacks included)."""

    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._stamp = ""

    def format(self, record: logging.LogRecord) -> str:
        args = _access_args(record)
        if args is not None:  # one literal: half the time of a dict filled by zip (timeit)
            method, path, status, model, version, key_name, duration_ms, bytes_in, bytes_out, rid, client = args
            return _encoder.encode({
                "time": self._time(record), "level": record.levelname, "logger": record.name,
                "message": f"{method} {path} {status}", "method": method, "path": path, "status": status,
                "model": model, "version": version, "key_name": key_name, "duration_ms": round(duration_ms, 3),
                "bytes_in": bytes_in, "bytes_out": bytes_out, "request_id": rid, "client": client}).decode()
        line: dict[str, Any] = {"time": self._time(record), "level": record.levelname, "logger": record.name,
                                "message": record.getMessage()}
        current = request_id.get()
        if current is not None:
            line["request_id"] = current
        if record.exc_info:
            line["exc_info"] = record.exc_text or self.formatException(record.exc_info)
        if record.stack_info:
            line["stack_info"] = self.formatStack(record.stack_info)
        return _encoder.encode(line).decode()

    def _time(self, record: logging.LogRecord) -> str:
        """``2026-12-05T10:11:12.345Z``; the part up to the second is made once per second."""
        second = int(record.created)
        if second != self._second:
            self._second, self._stamp = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._stamp}.{int(record.msecs):03d}Z"


class TextFormatter(logging.Formatter):
    """``2026-12-05 11:11:12,345 INFO flashml.access: ...``: logging's own line, with the local time up to the
    second made once per second (strftime per line was a third of the access line's formatting)."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)
        self._second = -1
        self._stamp = ""

    def format(self, record: logging.LogRecord) -> str:
        args = _access_args(record)
        if args is None:
            return super().format(record)
        # An access line: what is unknown (no model, version or key) reads "-", not "None".
        method, path, status, model, version, key_name, duration_ms, bytes_in, bytes_out, rid, client = args
        record.message = ACCESS_TEXT % (method, path, status, model or "-", version or "-", key_name or "-",
                                        duration_ms, bytes_in, bytes_out, rid, client)
        record.asctime = self.formatTime(record)
        return self.formatMessage(record)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        second = int(record.created)
        if second != self._second:
            self._second, self._stamp = second, time.strftime(self.default_time_format, self.converter(second))
        return f"{self._stamp},{int(record.msecs):03d}"


def make_formatter(log_format: str) -> logging.Formatter:
    """The formatter of the setting ``log_format``: ``json`` or ``text``."""
    return JsonFormatter() if log_format == "json" else TextFormatter()


def granian_log_config(log_format: str) -> dict[str, Any] | None:
    """Granian's own logging (its start, workers, stop) in our format: its ``log_dictconfig`` (None: its own)."""
    if log_format != "json":
        return None
    formatter = {"()": f"{__name__}.JsonFormatter"}
    stream = {"formatter": "json", "class": "logging.StreamHandler", "stream": "ext://sys.stdout"}
    return {"version": 1, "disable_existing_loggers": False, "formatters": {"json": formatter},
            "handlers": {"console": stream, "access": dict(stream)},
            "loggers": {"_granian": {"handlers": ["console"], "level": "INFO", "propagate": False},
                        "granian.access": {"handlers": ["access"], "level": "INFO", "propagate": False}}}
