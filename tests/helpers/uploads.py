"""Uploading over HTTP, building bundles, and finding what an upload left behind (files under tmp/, live probes)."""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from pathlib import Path

import httpx

from tests.helpers import onnx_models


def upload(api: httpx.Client, name: str, path_or_bytes, filename: str | None = None) -> httpx.Response:
    data = path_or_bytes.read_bytes() if isinstance(path_or_bytes, Path) else path_or_bytes
    params = {"filename": filename} if filename else None
    return api.post(f"/api/v1/models/{name}/versions", content=data, params=params,
                    headers={"Content-Type": "application/octet-stream"})


def leftovers(data_dir: Path) -> list[str]:
    """Files under tmp/: an upload or validation that left something behind."""
    return [str(p.relative_to(data_dir)) for p in (data_dir / "tmp").rglob("*") if p.is_file()]


def warmup_probes(data_dir) -> list[int]:
    """Live warm-up subprocesses working on files under data_dir."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().decode(errors="replace")
            with open(f"/proc/{entry}/stat") as f:
                zombie = f.read().rsplit(")", 1)[1].split()[0] == "Z"
        except OSError:
            continue
        if "flashml.registry.probe" in cmd and str(data_dir) in cmd and not zombie:
            found.append(int(entry))
    return found


def tar_bundle(members: dict[str, bytes], extra=None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if extra:
            extra(tar)
    return buf.getvalue()


def zip_bundle(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def big_bundle(tmp_path) -> bytes:
    """A .tar.gz of about 11 MiB (a model and incompressible padding): three parts of 5 MiB at most."""
    onnx_models.add_model(tmp_path / "big.onnx")
    return tar_bundle({"model.onnx": (tmp_path / "big.onnx").read_bytes(), "padding.bin": os.urandom(11 << 20)})
