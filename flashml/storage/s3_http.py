"""The S3 store's HTTP client: every wait on the store is bounded, and a store that stalls is not asked again.

``deadline_s`` bounds how long one request may go with no progress: the connect (at most ``connect_s``) plus
the longest silence of any socket write or read. It is not a limit on a transfer's length: a 4 GB object that
keeps moving takes as long as it takes, while a store that stops answering (a hung process, a black-holed
network) fails the call within ``deadline_s`` as ``StorageUnavailableError``. Quick failures (refused, reset,
5xx) are retried twice with a short backoff; a timed-out attempt is not retried, since it already spent the
whole deadline, and the rest of that store call (the minio client's clean-up of a multipart upload, say)
fails at once instead of waiting again.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError, ProtocolError, ReadTimeoutError
from urllib3.response import BaseHTTPResponse

_SEND_SLICE = 1 << 20  # socket.sendall's timeout counts the whole buffer: send in slices, each with its own wait
_call = threading.local()  # per thread: did a request of the current store call stall?
_Connection = TypeVar("_Connection", bound=HTTPConnection)


class StoreStalledError(urllib3.exceptions.TimeoutError):
    """A request of this store call already timed out: the store is not asked again within the same call."""


def is_stall(error: BaseException | None) -> bool:
    """A timeout (no answer in time), as opposed to a quick failure such as a refused connection."""
    if isinstance(error, ProtocolError) and error.args:
        error = error.args[-1] if isinstance(error.args[-1], BaseException) else None
    if isinstance(error, NewConnectionError):
        return False
    return isinstance(error, ReadTimeoutError | ConnectTimeoutError | StoreStalledError | TimeoutError)


@contextmanager
def store_call() -> Iterator[None]:
    """One call of the store (which may be several requests): a stall in one of them ends the others at once."""
    _call.stalled = False
    try:
        yield
    finally:
        _call.stalled = False


class _NoRetryAfterStall(urllib3.Retry):
    def increment(self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None):
        if error is not None and is_stall(error):
            _call.stalled = True
            raise MaxRetryError(_pool, url or "", error) from error
        return super().increment(method, url, response, error, _pool, _stacktrace)


class _PoolManager(urllib3.PoolManager):
    # urllib3's own PoolManager.urlopen has this signature, already unlike that of its base, RequestMethods.
    def urlopen(self, method: str, url: str, redirect: bool = True, **kw: Any  # type: ignore[override]
                ) -> BaseHTTPResponse:
        if getattr(_call, "stalled", False):
            raise StoreStalledError(f"the store stalled earlier in this call; {method} {url} not sent")
        return super().urlopen(method, url, redirect, **kw)


def _bounded_sends(base: type[_Connection], stall_s: float) -> type[_Connection]:
    """A connection whose body writes wait at most ``stall_s`` each (urllib3 sends under the connect timeout)."""

    class Connection(base):  # type: ignore[valid-type, misc]  # a class made per base: mypy takes no variable base
        def send(self, data):
            if self.sock is None:
                self.connect()  # under the connect timeout
            self.sock.settimeout(stall_s)
            if isinstance(data, bytes | bytearray | memoryview):
                view = memoryview(data)
                for start in range(0, len(view), _SEND_SLICE):
                    super().send(view[start:start + _SEND_SLICE])
            else:
                super().send(data)

    return Connection


def pool_manager(connect_s: float, deadline_s: float, maxsize: int = 16) -> urllib3.PoolManager:
    """An HTTP client for the store: no request waits more than ``deadline_s`` with nothing moving."""
    connect = min(connect_s, deadline_s / 2)
    stall = deadline_s - connect

    class Pool(HTTPConnectionPool):
        ConnectionCls = _bounded_sends(HTTPConnection, stall)

    class TLSPool(HTTPSConnectionPool):
        ConnectionCls = _bounded_sends(HTTPSConnection, stall)

    http = _PoolManager(timeout=urllib3.Timeout(connect=connect, read=stall),
                        retries=_NoRetryAfterStall(total=2, connect=0, backoff_factor=0.1,
                                                   status_forcelist=(500, 502, 503, 504),
                                                   respect_retry_after_header=False),  # no sleeping for hours
                        maxsize=maxsize)
    http.pool_classes_by_scheme = {"http": Pool, "https": TLSPool}
    return http
