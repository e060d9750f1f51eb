"""A real S3-protocol server on loopback (moto's), for the S3 backend's tests."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from moto.server import ThreadedMotoServer

ACCESS, SECRET = "test-access-key", "test-secret-key"


@contextmanager
def moto_server() -> Iterator[str]:
    """Yield the server's host:port."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"{host}:{port}"
    finally:
        server.stop()
