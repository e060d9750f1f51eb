"""Tar header bombs: PAX records and GNU long names are refused by their declared size, before tarfile reads
them into memory; member names are bounded, and no message quotes more than a few hundred characters of one."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from flashml.errors import ValidationFailedError
from flashml.registry.archive import BundleLimits, extract_bundle
from tests.helpers.onnx_models import (
    make_tar_gz,
    make_zip,
    tar_gnu_sparse,
    tar_header_bomb,
    tar_header_chain,
    tar_pax_sparse_map_bomb,
)

ROOT = Path(__file__).resolve().parents[2]

# Extracts argv[1] into argv[2] and prints the refusal's code and how far the peak RSS grew, in MB.
EXTRACT = """
import resource, sys
from pathlib import Path
from flashml.errors import ValidationFailedError
from flashml.registry.archive import BundleLimits, extract_bundle
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    extract_bundle(Path(sys.argv[1]), Path(sys.argv[2]), BundleLimits())
    code = "accepted"
except ValidationFailedError as e:
    code = e.code
    assert len(e.message) < 1000, len(e.message)
print(code, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


def refused(src: Path, dest: Path, code: str, limits: BundleLimits | None = None) -> ValidationFailedError:
    with pytest.raises(ValidationFailedError) as info:
        extract_bundle(src, dest, limits or BundleLimits())
    assert info.value.code == code, info.value.message
    assert info.value.status == 422
    assert len(info.value.message) < 1000 and len(repr(info.value.details)) < 1000
    return info.value


@pytest.mark.parametrize("kind", ["pax", "gnu"])
def test_400_mb_header_is_refused_in_bounded_memory(tmp_path: Path, kind: str) -> None:
    src = tar_header_bomb(tmp_path / "bomb.tar.gz", kind)
    assert src.stat().st_size < 2 << 20  # the upload itself is small
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-c", EXTRACT, str(src), str(tmp_path / "out")], cwd=ROOT,
                         capture_output=True, text=True, timeout=60, check=True).stdout.split()
    assert out[0] == "tar_header_too_large"
    assert int(out[1]) < 50, f"peak RSS grew {out[1]} MB"
    assert time.monotonic() - started < 10
    assert list((tmp_path / "out").rglob("*")) == []


@pytest.mark.parametrize("kind", ["pax", "gnu"])
def test_header_just_over_the_limit_is_refused_and_under_it_counts(tmp_path: Path, kind: str) -> None:
    limits = BundleLimits(max_header_bytes=64 << 10)
    err = refused(tar_header_bomb(tmp_path / "big.tar.gz", kind, size=(64 << 10) + 1), tmp_path / "o1",
                  "tar_header_too_large", limits)
    assert "65537" in err.message
    # Under the limit it unpacks, and its bytes count toward the bundle's size like file bytes.
    ok = tar_header_bomb(tmp_path / "ok.tar.gz", kind, size=60 << 10)
    if kind == "pax":
        assert extract_bundle(ok, tmp_path / "o2", limits) == ["model.onnx"]
    else:  # the long name is the member's name: 60 KB of it is refused as a name
        refused(ok, tmp_path / "o2", "unsafe_path", limits)
    refused(tar_header_bomb(tmp_path / "ok2.tar.gz", "pax", size=60 << 10), tmp_path / "o3",
            "bundle_too_large", BundleLimits(max_total_bytes=50 << 10))


def test_headers_count_in_total_across_members(tmp_path: Path) -> None:
    src = tmp_path / "b.tar.gz"
    with tarfile.open(src, "w:gz", format=tarfile.PAX_FORMAT) as tf:
        for i in range(6):
            info = tarfile.TarInfo(f"f{i}.txt")
            info.pax_headers = {"comment": "c" * 3000}
            tf.addfile(info)
    refused(src, tmp_path / "out", "tar_header_too_large", BundleLimits(max_total_header_bytes=10_000))
    assert extract_bundle(src, tmp_path / "ok", BundleLimits()) == [f"f{i}.txt" for i in range(6)]


def test_a_long_chain_of_headers_is_refused(tmp_path: Path) -> None:
    # Thousands of chained headers would otherwise recurse inside tarfile until RecursionError.
    refused(tar_header_chain(tmp_path / "b.tar.gz", 5000), tmp_path / "out", "tar_header_too_large")
    assert extract_bundle(tar_header_chain(tmp_path / "ok.tar.gz", 3), tmp_path / "ok",
                          BundleLimits()) == ["model.onnx"]


@pytest.mark.parametrize("builder", [tar_gnu_sparse, tar_pax_sparse_map_bomb])
def test_sparse_members_are_refused(tmp_path: Path, builder) -> None:
    started = time.monotonic()
    refused(builder(tmp_path / "b.tar.gz"), tmp_path / "out", "special_file")
    assert time.monotonic() - started < 5  # the 1.0 map was read with a quadratic, unbounded loop
    assert list((tmp_path / "out").rglob("*")) == []


@pytest.mark.parametrize("maker", [make_tar_gz, make_zip])
def test_long_member_names_are_refused_and_quoted_short(tmp_path: Path, maker) -> None:
    long_name = "d/" * 2100 + "model.onnx"  # every part short, the whole past 4096 bytes
    err = refused(maker(tmp_path / "b", {long_name: b"x"}), tmp_path / "out", "unsafe_path")
    assert "4096" in err.message and len(err.details["member"]) < 300
    long_part = "a" * 300
    err = refused(maker(tmp_path / "c", {long_part: b"x"}), tmp_path / "out2", "unsafe_path")
    assert "255" in err.message


def test_unpacking_errors_never_show_our_paths(tmp_path: Path) -> None:
    src = make_tar_gz(tmp_path / "b.tar.gz", {"a": b"file", "a/b": b"under a file"})
    err = refused(src, tmp_path / "out", "bad_archive")
    assert str(tmp_path) not in err.message


def test_zip_directory_is_bounded_before_it_is_read(tmp_path: Path) -> None:
    src = make_zip(tmp_path / "b.zip", {f"{i:040d}": b"" for i in range(2000)})
    data = bytearray(src.read_bytes())
    end = data.rindex(b"PK\x05\x06")
    data[end + 8:end + 12] = (1).to_bytes(2, "little") * 2  # the record claims one member
    src.write_bytes(bytes(data))
    err = refused(src, tmp_path / "out", "bad_archive", BundleLimits(max_members=10))
    assert "directory" in err.message
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
