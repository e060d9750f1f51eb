"""The whole upload validation pipeline: unpack, read the manifest, check the model, warm it up."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flashml.errors import ValidationFailedError
from flashml.registry.archive import BundleLimits, extract_bundle
from flashml.registry.manifest import Manifest, load_manifest
from flashml.registry.onnx_checks import DEFAULT_ALLOWED_DOMAINS, ModelCheckReport, check_model
from flashml.registry.probe import ProbeResult, run_probe
from flashml.registry.task_checks import check_task
from flashml.storage.base import file_sha256
from flashml.tasks.config import parse_task

CHECKSUMS_NAME = "checksums.json"


@dataclass
class ValidatedBundle:
    dir: Path
    manifest: Manifest
    report: ModelCheckReport
    probe: ProbeResult
    files: list[str]
    size_bytes: int
    sha256: str  # of the uploaded file, as received


def write_checksums(bundle_dir: Path, files: Iterable[str]) -> dict[str, str]:
    """Write ``checksums.json`` (file -> sha256) atomically and return the mapping."""
    sums = {rel: file_sha256(bundle_dir / rel) for rel in sorted(files)}
    tmp = bundle_dir / (CHECKSUMS_NAME + ".tmp")
    tmp.write_text(json.dumps(sums, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, bundle_dir / CHECKSUMS_NAME)
    return sums


def validate_upload(upload: Path, staging_dir: Path, *, limits: BundleLimits | None = None,
                    allowed_domains: Iterable[str] = DEFAULT_ALLOWED_DOMAINS, device: str = "cpu",
                    probe_timeout_s: float = 60.0, probe_memory_bytes: int = 4 << 30,
                    on_step: Callable[[str], None] | None = None,
                    plan_batches: Callable[[Manifest], tuple[list[int], float]] | None = None) -> ValidatedBundle:
    """Validate an uploaded model or bundle into ``staging_dir``; on any failure remove it and re-raise.
    ``plan_batches``: the batch sizes (and latency budget) the probe runs after its warm-up, for the manifest:
    whatever the server may run the version at before it is published (services.serving.batches_to_prove)."""
    step = on_step or (lambda _name: None)
    try:
        step("extract")
        files = extract_bundle(upload, staging_dir, limits or BundleLimits())
        if CHECKSUMS_NAME in files:
            raise ValidationFailedError(f"Bundle member {CHECKSUMS_NAME!r} is a name FlashML reserves; rename or "
                                        "remove it.", code="reserved_name", details={"member": CHECKSUMS_NAME})
        step("manifest")
        manifest = load_manifest(staging_dir)
        task = parse_task(manifest.to_dict())  # a bad [preprocess] etc. fails before the slow steps
        step("check")
        known = [manifest.labels_file] if manifest.labels_file else []
        if task.tokenizer is not None:
            known.append(task.tokenizer.file)
        report = check_model(staging_dir, manifest.model, tuple(allowed_domains), known_files=known)
        step("warmup")
        hints: dict[str, Any] = {}
        if task.image is not None:
            hints["image"] = {"size": list(task.image.size), "layout": task.image.layout, "input": task.image.input}
        if task.tokenizer is not None:
            hints["sequence"] = task.tokenizer.max_length
        batch_sizes, budget_ms = plan_batches(manifest) if plan_batches else ([], 0.0)
        probe = run_probe(staging_dir / manifest.model, device=device, timeout_s=probe_timeout_s,
                          memory_bytes=probe_memory_bytes, warmup=manifest.warmup, hints=hints,
                          batch_sizes=batch_sizes, budget_ms=budget_ms)
        if manifest.task != "raw":
            step("task")
            manifest = check_task(manifest, probe.signature, staging_dir)
        write_checksums(staging_dir, files)
        return ValidatedBundle(dir=staging_dir, manifest=manifest, report=report, probe=probe, files=files,
                               size_bytes=sum((staging_dir / f).stat().st_size for f in files),
                               sha256=file_sha256(upload))
    except BaseException as e:
        shutil.rmtree(staging_dir, ignore_errors=True)
        if isinstance(e, ValidationFailedError):
            _hide_path(e, staging_dir)
        raise


def _hide_path(e: ValidationFailedError, staging_dir: Path) -> None:
    """Name files as the bundle does: ONNX Runtime's messages quote the full path of our scratch folder."""
    def plain(text: str) -> str:
        for folder in {str(staging_dir), os.path.realpath(staging_dir)}:
            text = text.replace(folder + os.sep, "").replace(folder, "<bundle>")
        return text

    e.message = plain(e.message)
    e.args = (e.message,)
    e.details = {k: plain(v) if isinstance(v, str) else v for k, v in e.details.items()}
