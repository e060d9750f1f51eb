"""Stream a request body to a file without ever holding it whole in memory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from flashml.errors import BadRequestError, PayloadTooLargeError

_FLUSH_AT = 4 * 1024 * 1024


async def receive_upload(chunks: AsyncIterator[bytes], target: Path, limit: int) -> int:
    """Write the chunks to ``target``; past ``limit`` bytes, or on any error, remove it and raise."""
    size = 0
    buf = bytearray()
    try:
        with open(target, "wb") as fh:
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLargeError(f"The upload is over the limit of {limit} bytes "
                                               "(setting max_upload_bytes).", code="upload_too_large")
                buf += chunk
                if len(buf) >= _FLUSH_AT:  # write in big blocks, off the event loop
                    data, buf = bytes(buf), bytearray()
                    await asyncio.to_thread(fh.write, data)
            if buf:
                await asyncio.to_thread(fh.write, bytes(buf))
        if size == 0:
            raise BadRequestError("The upload is empty: send the .onnx file or bundle as the request body.",
                                  code="empty_upload")
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return size
