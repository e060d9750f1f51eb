"""The least a non-blocking server can do per request: Granian (RSGI, one worker) answering with one
``session.run`` of the model, in a worker thread (``/thread``) or on the event loop (``/inline``), or with
nothing (``/noop``). It reads the request body but does not parse it: the input is one fixed sample.
Started by ``python -m bench.floor`` and ``python -m bench.run``; the model comes from FLOOR_MODEL, the device
from FLOOR_DEVICE (default cpu)."""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from bench import raw_ort

_session = raw_ort.session(os.environ["FLOOR_MODEL"], os.environ.get("FLOOR_DEVICE", "cpu"))
_input = _session.get_inputs()[0]
_sample = np.random.default_rng(0).standard_normal([1, *_input.shape[1:]]).astype(np.float32)
_outputs = [o.name for o in _session.get_outputs()]
_threads = ThreadPoolExecutor(1)  # one client, one thread: the session is always called from the same one


def _run() -> bytes:
    return _session.run(_outputs, {_input.name: _sample})[0].tobytes()


class App:
    async def __rsgi__(self, scope, proto) -> None:
        await proto()  # the body, as a real server would read it
        if scope.path == "/thread":
            body = await asyncio.get_running_loop().run_in_executor(_threads, _run)
        elif scope.path == "/inline":
            body = _run()
        else:
            body = b"{}"
        proto.response_bytes(200, [("content-type", "application/octet-stream")], body)


app = App()
