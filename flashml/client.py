"""A small HTTP client for the CLI's `models` commands."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


def push_model(url: str, key: str, file: Path, name: str) -> dict[str, Any]:
    """Stream the file with a progress bar, then wait for validation when the server answers 202."""
    size = file.stat().st_size
    base = url.rstrip("/")

    def body() -> Iterator[bytes]:
        with open(file, "rb") as fh, click.progressbar(length=size, label=f"Uploading {file.name}",
                                                       file=click.get_text_stream("stderr")) as bar:
            while chunk := fh.read(CHUNK):
                bar.update(len(chunk))
                yield chunk

    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/octet-stream",
               "Content-Length": str(size)}
    try:
        resp = httpx.post(f"{base}/api/v1/models/{name}/versions", params={"filename": file.name},
                          content=body(), headers=headers, timeout=httpx.Timeout(30, read=None, write=None))
    except httpx.HTTPError as exc:
        raise click.ClickException(f"cannot reach {url}: {exc}") from None
    if resp.status_code == 422:
        return resp.json()["details"]["version"]
    if resp.status_code >= 400:
        _fail(resp)
    record = resp.json()
    while record["state"] == "validating":
        click.echo("Validating...", err=True)
        time.sleep(2)
        record = api_get(url, key, f"/api/v1/models/{name}/versions/{record['version']}")
    return record
