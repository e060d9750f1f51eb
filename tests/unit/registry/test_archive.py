"""Unpacking uploads: raw .onnx, tar.gz and zip, and every way a hostile archive is refused."""

from __future__ import annotations

import tarfile
import warnings
import zipfile
from pathlib import Path

import pytest

from flashml.errors import ValidationFailedError
from flashml.registry.archive import BundleLimits, detect_kind, extract_bundle, safe_member_path
from tests.helpers.onnx_models import (
    add_model,
    make_tar_gz,
    make_zip,
    many_members_tar,
    tar_gz_bomb,
    tar_with_special,
    zip_bomb,
    zip_with_symlink,
)

LIMITS = BundleLimits()


def refused(src: Path, dest: Path, code: str, limits: BundleLimits = LIMITS) -> ValidationFailedError:
    with pytest.raises(ValidationFailedError) as info:
        extract_bundle(src, dest, limits)
    assert info.value.code == code, info.value.message
    assert info.value.status == 422
    return info.value


def assert_nothing_outside(tmp_path: Path, src: Path, dest: Path) -> None:
    outside = [p for p in tmp_path.rglob("*") if dest not in p.parents and p not in (dest, src)]
    assert outside == []


def test_detect_kind(tmp_path: Path) -> None:
    model = add_model(tmp_path / "m.onnx")
    assert detect_kind(model) == "onnx"
    assert detect_kind(make_tar_gz(tmp_path / "b.tar.gz", {"model.onnx": model})) == "tar.gz"
    assert detect_kind(make_zip(tmp_path / "b.zip", {"model.onnx": model})) == "zip"
    (tmp_path / "empty").write_bytes(b"")
    assert detect_kind(tmp_path / "empty") == "onnx"


def test_raw_onnx_becomes_model_onnx(tmp_path: Path) -> None:
    model = add_model(tmp_path / "upload.bin")
    assert extract_bundle(model, tmp_path / "out", LIMITS) == ["model.onnx"]
    assert (tmp_path / "out" / "model.onnx").read_bytes() == model.read_bytes()


@pytest.mark.parametrize("maker", [make_tar_gz, make_zip])
def test_bundle_with_folders(tmp_path: Path, maker) -> None:
    src = maker(tmp_path / "b", {"./model.onnx": b"m", "assets/labels.txt": b"cat\ndog\n", "assets/": b""}
                if maker is make_zip else {"./model.onnx": b"m", "assets/labels.txt": b"cat\ndog\n"})
    files = extract_bundle(src, tmp_path / "out", LIMITS)
    assert sorted(files) == ["assets/labels.txt", "model.onnx"]
    assert (tmp_path / "out" / "assets" / "labels.txt").read_text() == "cat\ndog\n"


@pytest.mark.parametrize("name", ["../evil.txt", "a/../../evil.txt", "/etc/evil.txt", "..\\evil.txt",
                                  "a\\..\\..\\evil.txt", "C:/evil.txt", ".."])
@pytest.mark.parametrize("maker", [make_tar_gz, make_zip])
def test_unsafe_paths_refused(tmp_path: Path, maker, name: str) -> None:
    src = maker(tmp_path / "b", {"model.onnx": b"m", name: b"evil"})
    err = refused(src, tmp_path / "out", "unsafe_path")
    assert repr(name) in err.message and err.details["member"] == name
    assert not (tmp_path / "evil.txt").exists()
    assert_nothing_outside(tmp_path, src, tmp_path / "out")


@pytest.mark.parametrize("kind,link", [(tarfile.SYMTYPE, "/etc/passwd"), (tarfile.LNKTYPE, "model.onnx"),
                                       (tarfile.SYMTYPE, "../outside")])
def test_tar_links_refused(tmp_path: Path, kind: bytes, link: str) -> None:
    err = refused(tar_with_special(tmp_path / "b.tar.gz", "link", kind, link), tmp_path / "out", "link_in_bundle")
    assert "'link'" in err.message
    assert not (tmp_path / "out" / "link").exists()


@pytest.mark.parametrize("kind", [tarfile.FIFOTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE])
def test_tar_special_files_refused(tmp_path: Path, kind: bytes) -> None:
    refused(tar_with_special(tmp_path / "b.tar.gz", "dev", kind), tmp_path / "out", "special_file")


def test_zip_symlink_refused(tmp_path: Path) -> None:
    refused(zip_with_symlink(tmp_path / "b.zip"), tmp_path / "out", "link_in_bundle")


@pytest.mark.parametrize("maker", [make_tar_gz, make_zip])
def test_duplicate_member_refused(tmp_path: Path, maker) -> None:
    if maker is make_zip:
        with warnings.catch_warnings(), zipfile.ZipFile(tmp_path / "b", "w") as zf:
            warnings.simplefilter("ignore")  # zipfile warns about the duplicate we want
            zf.writestr("model.onnx", b"one")
            zf.writestr("./model.onnx", b"two")
        src = tmp_path / "b"
    else:
        src = make_tar_gz(tmp_path / "b", {"model.onnx": b"one", "./model.onnx": b"two"})
    refused(src, tmp_path / "out", "duplicate_member")


def test_too_many_members(tmp_path: Path) -> None:
    src = many_members_tar(tmp_path / "b.tar.gz", 12)
    refused(src, tmp_path / "out", "too_many_members", BundleLimits(max_members=10))
    zsrc = make_zip(tmp_path / "b.zip", {f"f{i}": b"x" for i in range(12)})
    refused(zsrc, tmp_path / "out2", "too_many_members", BundleLimits(max_members=10))
    assert not (tmp_path / "out2" / "f0").exists()  # zip counts from the central directory, before writing


def test_total_size_counted_from_bytes_written(tmp_path: Path) -> None:
    src = make_tar_gz(tmp_path / "b.tar.gz", {"a.bin": b"x" * 600, "b.bin": b"y" * 600})
    refused(src, tmp_path / "out", "bundle_too_large", BundleLimits(max_total_bytes=1000))
    raw = add_model(tmp_path / "m.onnx")
    refused(raw, tmp_path / "out2", "bundle_too_large", BundleLimits(max_total_bytes=10))


@pytest.mark.parametrize("bomb", [zip_bomb, tar_gz_bomb])
def test_compression_bomb_refused(tmp_path: Path, bomb) -> None:
    src = bomb(tmp_path / "bomb")
    err = refused(src, tmp_path / "out", "compression_ratio")
    assert "zeros.bin" in err.message
    assert (tmp_path / "out" / "zeros.bin").stat().st_size < 8 << 20  # stopped early, not after unpacking it all


def test_small_compressible_bundle_is_fine(tmp_path: Path) -> None:
    src = make_tar_gz(tmp_path / "b.tar.gz", {"model.onnx": bytes(100_000)})
    assert extract_bundle(src, tmp_path / "out", LIMITS) == ["model.onnx"]


@pytest.mark.parametrize("data", [b"\x1f\x8b" + b"garbage" * 10, b"PK\x03\x04" + b"garbage" * 10])
def test_corrupt_archives(tmp_path: Path, data: bytes) -> None:
    (tmp_path / "b").write_bytes(data)
    refused(tmp_path / "b", tmp_path / "out", "bad_archive")


def test_truncated_tar_gz(tmp_path: Path) -> None:
    src = make_tar_gz(tmp_path / "b.tar.gz", {"model.onnx": bytes(range(256)) * 400})
    src.write_bytes(src.read_bytes()[:-200])
    refused(src, tmp_path / "out", "bad_archive")


def test_empty_archive(tmp_path: Path) -> None:
    refused(make_tar_gz(tmp_path / "b.tar.gz", {}), tmp_path / "out", "bad_archive")


def test_file_then_folder_with_same_name(tmp_path: Path) -> None:
    src = make_tar_gz(tmp_path / "b.tar.gz", {"a": b"file", "a/b": b"under a file"})
    refused(src, tmp_path / "out", "bad_archive")


def test_safe_member_path_normalizes() -> None:
    assert safe_member_path("./a//b/./c.txt") == "a/b/c.txt"
    for name in ["", "./", "a/\x00b"]:
        with pytest.raises(ValidationFailedError):
            safe_member_path(name)
