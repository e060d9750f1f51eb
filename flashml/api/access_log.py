"""One line per request on the ``flashml.access`` logger (setting ``access_log``), written by ``flashml.server``
for the inference fast path and for everything Litestar answers alike.

What a line holds (``flashml.telemetry.log_format.ACCESS_FIELDS``): method, path, status, model, version, key
name, duration, bytes in and out, request id and client address. What it never holds: the query string (an
upload's data URL and the setup link carry tokens there, so it is dropped whole), any header but the request id
(no Authorization, no cookies), and no byte of a body, only its size.

The line costs a request about 5 us (CHANGELOG.md, issue 25, has the figures): the fields go to a lean log record
(``AccessRecord``) as its arguments, with no dictionary, and are joined into text or JSON only in the handler,
which writes once per turn of the event loop (``flashml.telemetry.log_handler``). With the access log off (or
the logger above INFO) a request pays one ``isEnabledFor``.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
import threading
import time
from typing import Any

from flashml.auth.transport import forwarded_client
from flashml.telemetry.log_format import ACCESS_LOGGER, ACCESS_TEXT
from flashml.telemetry.request_context import RequestContext

# Routes about one model (V2, the task predict API, the management API, the console's model page), and which
# version when the path names one. Triton's /v2/models/stats is every model's statistics, not a model's.
MODEL_PATH = re.compile(r"(?:/v[12]|/api/v1)?/models/([^/]+)(?:/versions/([^/]+))?")
ALL_MODELS = frozenset({"stats"})
VERSION_HEADER = "flashml-model-version"  # the version that answered, as the answer's headers carry it


def model_of(path: str, headers: list[tuple[str, str]] | None) -> tuple[str | None, str | None]:
    """The model and version a request was about: from the path, the version from the answer when it says."""
    match = MODEL_PATH.match(path)
    if match is None or match[1] in ALL_MODELS:
        return None, None
    version = match[2]
    for name, value in headers or ():
        if name.lower() == VERSION_HEADER:
            version = value
    return match[1], version


_START = getattr(logging, "_startTime", time.time())  # logging's own zero for relativeCreated
_FILENAME = os.path.basename(__file__)
_MODULE = os.path.splitext(_FILENAME)[0]


class AccessRecord(logging.LogRecord):
    """An access line's log record, made in half the time of logging's own (timeit: 1.0 against 2.0 us): what
    logging works out per record from the caller (file, module, process name) is the same for every access line.
    It has every attribute a LogRecord has, so any handler or formatter takes it."""

    def __init__(self, args: tuple[Any, ...], process: int | None, process_name: str | None) -> None:
        now = time.time()
        self.name, self.msg, self.args = ACCESS_LOGGER, ACCESS_TEXT, args
        self.levelname, self.levelno = "INFO", logging.INFO
        self.pathname, self.filename, self.module, self.lineno, self.funcName = __file__, _FILENAME, _MODULE, 0, "write"
        self.exc_info = self.exc_text = self.stack_info = None
        self.created, self.msecs, self.relativeCreated = now, int((now - int(now)) * 1000) + 0.0, (now - _START) * 1000
        self.thread, self.threadName = threading.get_ident(), threading.current_thread().name
        self.process, self.processName, self.taskName = process, process_name, None


class AccessLog:
    """Writes the access lines of one server; ``wanted()`` first, so that a request with no line costs nothing."""

    def __init__(self, enabled: bool, trusted_proxies: tuple[str, ...] = ()) -> None:
        self.enabled = enabled
        self.trusted_proxies = trusted_proxies
        self.logger = logging.getLogger(ACCESS_LOGGER)
        # Made where the server runs (Granian's worker, after its fork), like logging's own per-record readings.
        self._process, self._process_name = os.getpid(), multiprocessing.current_process().name

    def wanted(self) -> bool:
        return self.enabled and self.logger.isEnabledFor(logging.INFO)

    def write(self, scope: Any, context: RequestContext, started: float, status: int, bytes_in: int,
              bytes_out: int, model: str | None, version: str | None) -> None:
        """The line of one answered request (``scope``: Granian's RSGI scope; ``started``: its perf_counter)."""
        duration_ms = (time.perf_counter() - started) * 1000
        client = scope.client.rpartition(":")[0].strip("[]")
        if self.trusted_proxies:
            client = forwarded_client(client, scope.headers.get("x-forwarded-for"), self.trusted_proxies)
        args = (scope.method, scope.path, status, model, version, context.caller, duration_ms, bytes_in, bytes_out,
                context.request_id, client)
        # Handed to the logger, not through info(), which would also look up the calling frame (about 2 us).
        self.logger.handle(AccessRecord(args, self._process, self._process_name))
