"""The whole upload pipeline: a good upload becomes a ValidatedBundle, a bad one leaves nothing behind."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from onnx import TensorProto

from flashml.errors import ValidationFailedError
from flashml.registry.archive import BundleLimits
from flashml.registry.bundle import validate_upload
from flashml.registry.onnx_checks import DEFAULT_ALLOWED_DOMAINS
from tests.helpers.onnx_models import (
    add_model,
    custom_domain_model,
    external_data_model,
    hang_model,
    identity_model,
    make_tar_gz,
    make_zip,
)


def validate(upload: Path, staging: Path, steps: list[str] | None = None, **kw):
    kw = {"limits": BundleLimits(), "probe_timeout_s": 30.0, "probe_memory_bytes": 2 << 30} | kw
    return validate_upload(upload, staging, allowed_domains=DEFAULT_ALLOWED_DOMAINS,
                           on_step=steps.append if steps is not None else None, **kw)


def refused(upload: Path, staging: Path, code: str, **kw) -> ValidationFailedError:
    with pytest.raises(ValidationFailedError) as info:
        validate(upload, staging, **kw)
    assert info.value.code == code, info.value.message
    assert not staging.exists()
    return info.value


def test_raw_onnx_upload(tmp_path: Path) -> None:
    upload = add_model(tmp_path / "upload.onnx")
    steps: list[str] = []
    vb = validate(upload, tmp_path / "staging", steps)
    assert steps == ["extract", "manifest", "check", "warmup"]
    assert vb.dir == tmp_path / "staging"
    assert vb.files == ["model.onnx"]
    assert vb.manifest.task == "raw"
    assert vb.sha256 == hashlib.sha256(upload.read_bytes()).hexdigest()
    assert vb.size_bytes == upload.stat().st_size
    assert vb.report.node_count == 1
    assert [t.name for t in vb.probe.signature.inputs] == ["a", "b"]
    sums = json.loads((vb.dir / "checksums.json").read_text())
    assert sums == {"model.onnx": vb.sha256}


@pytest.mark.parametrize("maker", [make_tar_gz, make_zip])
def test_bundle_with_manifest_labels_and_external_data(tmp_path: Path, maker) -> None:
    src = tmp_path / "src"
    src.mkdir()
    external_data_model(src)
    (src / "labels.txt").write_text("zero\none\n")
    (src / "flashml.toml").write_text('task = "raw"\nlabels_file = "labels.txt"\n')
    upload = maker(tmp_path / "bundle", {p.name: p for p in src.iterdir()})
    vb = validate(upload, tmp_path / "staging")
    assert vb.manifest.task == "raw"
    assert vb.manifest.labels == ["zero", "one"]
    assert vb.report.external_data_files == ["weights.bin"]
    assert vb.report.extra_files == []
    assert sorted(vb.files) == ["flashml.toml", "labels.txt", "model.onnx", "weights.bin"]
    assert vb.size_bytes == sum(p.stat().st_size for p in src.iterdir())
    sums = json.loads((vb.dir / "checksums.json").read_text())
    assert set(sums) == set(vb.files)
    assert sums["weights.bin"] == hashlib.sha256((src / "weights.bin").read_bytes()).hexdigest()


def test_model_named_in_manifest(tmp_path: Path) -> None:
    model = identity_model(tmp_path / "m.onnx", TensorProto.INT64)
    upload = make_tar_gz(tmp_path / "b.tar.gz", {"nets/net.onnx": model, "flashml.toml": b'model = "nets/net.onnx"\n'})
    vb = validate(upload, tmp_path / "staging")
    assert vb.probe.signature.inputs[0].datatype == "INT64"


def test_each_stage_refuses_and_cleans_up(tmp_path: Path) -> None:
    model = add_model(tmp_path / "m.onnx")
    unsafe = make_tar_gz(tmp_path / "a.tar.gz", {"model.onnx": model, "../x": b"x"})
    refused(unsafe, tmp_path / "s1", "unsafe_path")
    bad_manifest = make_tar_gz(tmp_path / "b.tar.gz", {"model.onnx": model, "flashml.toml": b"colour = 1\n"})
    refused(bad_manifest, tmp_path / "s2", "bad_manifest")
    no_model = make_tar_gz(tmp_path / "c.tar.gz", {"readme.txt": b"hi"})
    refused(no_model, tmp_path / "s3", "missing_model")
    refused(custom_domain_model(tmp_path / "custom.onnx"), tmp_path / "s4", "custom_op_domain")
    reserved = make_tar_gz(tmp_path / "d.tar.gz", {"model.onnx": model, "checksums.json": b"{}"})
    refused(reserved, tmp_path / "s5", "reserved_name")


def test_warmup_failure_cleans_up(tmp_path: Path) -> None:
    steps: list[str] = []
    refused(hang_model(tmp_path / "hang.onnx"), tmp_path / "staging", "validation_timeout", steps=steps,
            probe_timeout_s=3.0)
    assert steps[-1] == "warmup"


def test_limits_are_passed_through(tmp_path: Path) -> None:
    refused(add_model(tmp_path / "m.onnx"), tmp_path / "staging", "bundle_too_large",
            limits=BundleLimits(max_total_bytes=10))
