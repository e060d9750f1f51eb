"""A small HTTP client for the CLI's `models`, `datasets` and `jobs` commands."""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import click
import httpx

CHUNK = 1024 * 1024


def _fail(resp: httpx.Response) -> None:
    try:
        body = resp.json()
        message = f"{body.get('error')} [{body.get('code')}]"
    except ValueError:
        message = resp.text[:500]
    raise click.ClickException(f"HTTP {resp.status_code}: {message}")


def api_get(url: str, key: str, path: str) -> Any:
    return api_call(url, key, "GET", path)


def api_call(url: str, key: str, method: str, path: str, body: Any = None) -> Any:
    """One management call; the JSON answer (None for 204), or a ClickException with the server's reason."""
    try:
        resp = httpx.request(method, url.rstrip("/") + path, json=body, timeout=30,
                             headers={"Authorization": f"Bearer {key}"})
    except httpx.HTTPError as exc:
        raise click.ClickException(f"cannot reach {url}: {exc}") from None
    if resp.status_code >= 400:
        _fail(resp)
    return resp.json() if resp.status_code != 204 else None


def _file_sha256(file: Path, size: int) -> str:
    h = hashlib.sha256()
    with open(file, "rb") as fh, click.progressbar(length=size, label=f"Hashing {file.name}",
                                                   file=sys.stderr) as bar:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
            bar.update(len(chunk))
    return h.hexdigest()


def _send(base: str, up: dict[str, Any], file: Path, size: int) -> None:
    """PUT the file (or each part) to the URLs the server gave: presigned S3 URLs or its own, token included."""
    pieces = up["parts"] or [{"part": None, "url": up["url"], "offset": 0, "size": size}]
    with open(file, "rb") as fh, click.progressbar(length=size, label=f"Uploading {file.name}",
                                                   file=sys.stderr) as bar:
        for piece in pieces:
            def body(piece: dict[str, Any] = piece) -> Iterator[bytes]:
                fh.seek(piece["offset"])
                left = piece["size"]
                while left > 0 and (chunk := fh.read(min(CHUNK, left))):
                    left -= len(chunk)
                    bar.update(len(chunk))
                    yield chunk

            target = urljoin(base + "/", piece["url"])  # no FlashML key: the URL carries its own authorisation
            resp = _http("PUT", target, content=body(), headers={"Content-Length": str(piece["size"]),
                                                                 "Content-Type": "application/octet-stream"})
            if resp.status_code >= 400:
                where = f"part {piece['part']}" if piece["part"] else "the file"
                raise click.ClickException(f"sending {where} failed: HTTP {resp.status_code}: {resp.text[:300]}")


def _http(method: str, url: str, **kwargs: Any) -> httpx.Response:
    try:
        return httpx.request(method, url, timeout=httpx.Timeout(30, read=None, write=None), **kwargs)
    except httpx.HTTPError as exc:
        raise click.ClickException(f"cannot reach {url.split('?')[0]}: {exc}") from None


def push_model(url: str, key: str, file: Path, name: str) -> dict[str, Any]:
    """Direct upload: ask for an upload URL, send the bytes there (in parts when big), complete, wait."""
    size = file.stat().st_size
    base = url.rstrip("/")
    auth = {"Authorization": f"Bearer {key}"}
    digest = _file_sha256(file, size)
    resp = _http("POST", f"{base}/api/v1/uploads", headers=auth,
                 json={"model": name, "filename": file.name, "size": size, "sha256": digest})
    if resp.status_code >= 400:
        _fail(resp)
    up = resp.json()
    _send(base, up, file, size)
    resp = _http("POST", urljoin(base + "/", up["complete_url"]), headers=auth)
    if resp.status_code == 422 and "version" in (resp.json().get("details") or {}):
        return resp.json()["details"]["version"]
    if resp.status_code >= 400:
        _fail(resp)
    record = resp.json()
    while record["state"] == "validating":
        click.echo("Validating...", err=True)
        time.sleep(2)
        record = api_get(url, key, f"/api/v1/models/{name}/versions/{record['version']}")
    return record


def push_dataset(url: str, key: str, file: Path) -> dict[str, Any]:
    """Stream a dataset file to POST /api/v1/datasets with a progress bar."""
    size = file.stat().st_size

    def body() -> Iterator[bytes]:
        with open(file, "rb") as fh, click.progressbar(length=size, label=f"Uploading {file.name}",
                                                       file=sys.stderr) as bar:
            while chunk := fh.read(CHUNK):
                bar.update(len(chunk))
                yield chunk

    resp = _http("POST", url.rstrip("/") + "/api/v1/datasets", params={"filename": file.name}, content=body(),
                 headers={"Authorization": f"Bearer {key}", "Content-Length": str(size),
                          "Content-Type": "application/octet-stream"})
    if resp.status_code >= 400:
        _fail(resp)
    return resp.json()


def download(url: str, key: str, path: str, dest: Path) -> None:
    """Stream a file from the server to ``dest`` (written whole or not at all)."""
    tmp = dest.with_name(dest.name + ".part")
    try:
        with httpx.stream("GET", url.rstrip("/") + path, headers={"Authorization": f"Bearer {key}"},
                          timeout=httpx.Timeout(30, read=None)) as resp:
            if resp.status_code >= 400:
                resp.read()
                _fail(resp)
            with open(tmp, "wb") as fh:
                for chunk in resp.iter_bytes(CHUNK):
                    fh.write(chunk)
        tmp.replace(dest)
    except httpx.HTTPError as exc:
        raise click.ClickException(f"cannot reach {url}: {exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
