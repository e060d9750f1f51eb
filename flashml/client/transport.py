"""HTTP for the client: JSON calls decoded into typed records, uploads and downloads streamed with progress."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import msgspec

from flashml.client.errors import ClientError

CHUNK = 1024 * 1024
# progress(stage, done, total): stage is "hashing", "uploading" or "downloading"; done and total count bytes
# (total is None when the server does not say how long a download is).
Progress = Callable[[str, int, int | None], None]


def _no_progress(stage: str, done: int, total: int | None) -> None:
    pass


def error_from(resp: httpx.Response) -> ClientError:
    """The ClientError of an answer of 400 or more, with the server's code, sentence and request id."""
    request_id = resp.headers.get("x-request-id")
    try:
        body = resp.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "error" in body:
        return ClientError(resp.status_code, str(body.get("code") or "http_error"), str(body["error"]),
                           body.get("request_id") or request_id, body.get("details"))
    text = resp.text.strip()[:300] or resp.reason_phrase
    return ClientError(resp.status_code, "http_error", text, request_id)


class Transport:
    """One httpx client bound to a server and a key."""

    def __init__(self, server: str, key: str | None, timeout: float, verify: bool | str = True) -> None:
        self.server = server.rstrip("/")
        self.verify = verify
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.http = httpx.Client(base_url=self.server, headers=headers, verify=verify,
                                 timeout=httpx.Timeout(timeout, read=None, write=None) if timeout else None)

    def close(self) -> None:
        self.http.close()

    def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            resp = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ClientError(None, "unreachable", f"cannot reach {self.server}: {exc or type(exc).__name__}") \
                from None
        if resp.status_code >= 400:
            raise error_from(resp)
        return resp

    def call(self, method: str, path: str, type: Any = Any, *, json: Any = None,
             params: dict[str, Any] | None = None) -> Any:
        """One JSON call; the answer decoded as ``type`` (None for 204)."""
        resp = self.send(method, path, json=json, params=params)
        if resp.status_code == 204 or not resp.content:
            return None
        try:
            return msgspec.json.decode(resp.content, type=type)
        except msgspec.ValidationError as exc:
            raise ClientError(resp.status_code, "unexpected_answer",
                              f"the server's answer to {method} {path} is not what this client expects: {exc}") \
                from None

    def stream_file(self, method: str, url: str, file: Path, offset: int, size: int, progress: Progress,
                    done: list[int], total: int, *, auth: bool, params: dict[str, Any] | None = None
                    ) -> httpx.Response:
        """Send ``size`` bytes of ``file`` from ``offset`` as the body; ``auth`` False: the URL carries its own."""
        def body() -> Iterator[bytes]:
            with open(file, "rb") as fh:
                fh.seek(offset)
                left = size
                while left > 0 and (chunk := fh.read(min(CHUNK, left))):
                    left -= len(chunk)
                    done[0] += len(chunk)
                    progress("uploading", done[0], total)
                    yield chunk

        headers = {"Content-Length": str(size), "Content-Type": "application/octet-stream"}
        target = urljoin(self.server + "/", url)
        if not auth:  # a presigned S3 URL or the server's tokened one: no FlashML key goes there
            try:
                resp = httpx.request(method, target, content=body(), headers=headers, params=params,
                                     timeout=httpx.Timeout(30, read=None, write=None), verify=self.verify)
            except httpx.HTTPError as exc:
                raise ClientError(None, "unreachable", f"cannot reach {target.split('?')[0]}: {exc}") from None
            if resp.status_code >= 400:
                raise error_from(resp)
            return resp
        return self.send(method, url, content=body(), headers=headers, params=params)

    def download(self, path: str, dest: Path, progress: Progress = _no_progress,
                 params: dict[str, Any] | None = None) -> Path:
        """Stream ``path`` to ``dest``, written whole or not at all."""
        tmp = dest.with_name(dest.name + ".part")
        try:
            with self.http.stream("GET", path, params=params) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    raise error_from(resp)
                total = int(resp.headers["content-length"]) if "content-length" in resp.headers else None
                done = 0
                with open(tmp, "wb") as fh:
                    for chunk in resp.iter_bytes(CHUNK):
                        fh.write(chunk)
                        done += len(chunk)
                        progress("downloading", done, total)
            tmp.replace(dest)
        except httpx.HTTPError as exc:
            raise ClientError(None, "unreachable", f"cannot reach {self.server}: {exc}") from None
        finally:
            tmp.unlink(missing_ok=True)
        return dest


def file_sha256(file: Path, progress: Progress = _no_progress) -> str:
    size = file.stat().st_size
    h = hashlib.sha256()
    done = 0
    with open(file, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
            done += len(chunk)
            progress("hashing", done, size)
    return h.hexdigest()
