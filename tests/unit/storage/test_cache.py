"""The node-local cache: filled from the store on demand, checked by sha256, fetched again when damaged."""

from __future__ import annotations

import json

import pytest

from flashml.registry.bundle import write_checksums
from flashml.storage.base import CHECKSUMS_NAME
from flashml.storage.cache import ArtifactCorruptError, ModelCache
from flashml.storage.local import LocalArtifactStore
from tests.helpers.s3 import make_s3


def _publish(store, tmp_path, model="m", version=1) -> dict[str, str]:
    src = tmp_path / f"staging-{model}-{version}"
    (src / "sub").mkdir(parents=True)
    (src / "model.onnx").write_bytes(b"model bytes " * 500)
    (src / "sub" / "weights.bin").write_bytes(bytes(range(256)) * 40)
    sums = write_checksums(src, ["model.onnx", "sub/weights.bin"])
    store.publish_dir(f"models/{model}/v{version}", src, ["model.onnx", "sub/weights.bin", CHECKSUMS_NAME])
    return sums


def test_remote_store_fills_the_cache_and_refetches_a_damaged_file(s3_endpoint, tmp_path):
    store = make_s3(s3_endpoint)
    sums = _publish(store, tmp_path)
    cache = ModelCache(store, tmp_path / "data" / "cache" / "models")
    assert not cache.shared
    folder = cache.ensure("m", 1, sums)
    assert folder == tmp_path / "data" / "cache" / "models" / "m" / "v1"
    assert (folder / "sub" / "weights.bin").read_bytes() == bytes(range(256)) * 40
    assert json.loads((folder / CHECKSUMS_NAME).read_text()) == sums
    assert cache.cached() == [("m", 1)]

    (folder / "model.onnx").write_bytes(b"flipped bits")  # a damaged cache entry
    again = cache.ensure("m", 1, sums)
    assert (again / "model.onnx").read_bytes() == b"model bytes " * 500
    (folder / "sub" / "weights.bin").unlink()  # a missing file: fetched again too
    assert (cache.ensure("m", 1, sums) / "sub" / "weights.bin").is_file()
    assert not any((cache.root / ".fetch").iterdir())

    cache.evict("m", 1)
    assert cache.cached() == [] and not (cache.root / "m").exists()


def test_without_recorded_checksums_the_stores_manifest_is_the_reference(s3_endpoint, tmp_path):
    store = make_s3(s3_endpoint)
    sums = _publish(store, tmp_path, "legacy", 2)
    cache = ModelCache(store, tmp_path / "cache")
    folder = cache.ensure("legacy", 2)
    assert json.loads((folder / CHECKSUMS_NAME).read_text()) == sums


def test_a_store_object_that_does_not_match_is_refused(s3_endpoint, tmp_path):
    store = make_s3(s3_endpoint)
    sums = _publish(store, tmp_path)
    bad = tmp_path / "bad"
    bad.write_bytes(b"tampered")
    store.put_file("models/m/v1/model.onnx", bad)
    cache = ModelCache(store, tmp_path / "cache")
    with pytest.raises(ArtifactCorruptError) as err:
        cache.ensure("m", 1, sums)
    assert "model.onnx" in err.value.message
    assert cache.cached() == [] and not any((cache.root / ".fetch").iterdir())


def test_local_store_is_its_own_cache_and_a_damaged_file_is_an_error(tmp_path):
    store = LocalArtifactStore(tmp_path / "data")
    store.prepare()
    sums = _publish(store, tmp_path)
    cache = ModelCache(store, tmp_path / "data" / "cache" / "models")
    assert cache.shared
    folder = cache.ensure("m", 1, sums)
    assert folder == tmp_path / "data" / "models" / "m" / "v1"  # no copy
    assert not (tmp_path / "data" / "cache").exists()
    (folder / "model.onnx").write_bytes(b"flipped bits")
    with pytest.raises(ArtifactCorruptError) as err:
        cache.ensure("m", 1, sums)
    assert err.value.details == {"files": ["model.onnx"]}
    cache.evict("m", 1)  # the store owns the folder: evicting leaves it
    assert folder.is_dir()
