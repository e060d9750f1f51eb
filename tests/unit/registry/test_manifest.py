"""flashml.toml: defaults, known tasks and tables, labels, and refusals naming the bad key."""

from __future__ import annotations

from pathlib import Path

import pytest

from flashml.errors import ValidationFailedError
from flashml.registry.manifest import Manifest, load_manifest


def write(bundle: Path, text: str) -> Path:
    (bundle / "flashml.toml").write_text(text, encoding="utf-8")
    return bundle


def bad(bundle: Path, text: str, key: str | None) -> ValidationFailedError:
    write(bundle, text)
    with pytest.raises(ValidationFailedError) as info:
        load_manifest(bundle)
    assert info.value.code == "bad_manifest"
    assert info.value.details["key"] == key
    if key:
        assert repr(key) in info.value.message
    return info.value


def test_defaults_without_manifest(tmp_path: Path) -> None:
    m = load_manifest(tmp_path)
    assert m == Manifest()
    assert (m.task, m.model, m.labels, m.labels_file, m.batching.table) == ("raw", "model.onnx", None, None, {})


def test_full_manifest(tmp_path: Path) -> None:
    m = load_manifest(write(tmp_path, '''
task = "image-classification"
model = "./models/net.onnx"
labels = ["cat", "dog"]

[batching]
max_batch_size = 8

[preprocess]
resize = [224, 224]

[postprocess]
top_k = 3
'''))
    assert m.task == "image-classification"
    assert m.model == "models/net.onnx"
    assert m.labels == ["cat", "dog"]
    assert m.batching.table == {"max_batch_size": 8}
    assert m.batching.sets("max_batch_size") and m.batching.config.max_batch_size == 8
    assert m.table("preprocess") == {"resize": [224, 224]}
    assert m.table("tokenizer") == {}
    assert m.raw["postprocess"] == {"top_k": 3}


def test_labels_file(tmp_path: Path) -> None:
    (tmp_path / "labels.txt").write_text("cat\n\ndög\r\nbird\n", encoding="utf-8")
    m = load_manifest(write(tmp_path, 'task = "text-classification"\nlabels_file = "labels.txt"\n'))
    assert m.labels == ["cat", "dög", "bird"]
    assert m.labels_file == "labels.txt"


@pytest.mark.parametrize("text,key", [
    ('task = "raw"\nflavour = "vanilla"\n', "flavour"),
    ('task = "speech"\n', "task"),
    ('model = 3\n', "model"),
    ('model = "/etc/model.onnx"\n', "model"),
    ('model = "../model.onnx"\n', "model"),
    ('model = "a/../../model.onnx"\n', "model"),
    ('model = "a\\\\model.onnx"\n', "model"),
    ('labels = "cat"\n', "labels"),
    ('labels = ["cat", 1]\n', "labels"),
    ('labels_file = "../labels.txt"\n', "labels_file"),
    ('labels_file = "missing.txt"\n', "labels_file"),
    ('batching = 4\n', "batching"),
    ('tokenizer = "bert"\n', "tokenizer"),
])
def test_refusals_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    bad(tmp_path, text, key)


def test_bad_toml(tmp_path: Path) -> None:
    err = bad(tmp_path, 'task = "raw\n', None)
    assert "not valid TOML" in err.message


def test_labels_and_labels_file_conflict(tmp_path: Path) -> None:
    (tmp_path / "labels.txt").write_text("a\n")
    bad(tmp_path, 'labels = ["a"]\nlabels_file = "labels.txt"\n', "labels_file")


def test_labels_file_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "labels.txt").write_bytes(b"\xff\xfe\x00bad")
    bad(tmp_path, 'labels_file = "labels.txt"\n', "labels_file")


def test_symlinked_labels_file_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("secret\n")
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "labels.txt").symlink_to(outside)
    bad(bundle, 'labels_file = "labels.txt"\n', "labels_file")


@pytest.mark.parametrize("text", [
    "labels = " + "[" * 5000 + "]" * 5000 + "\n",  # tomllib recurses: RecursionError
    "labels = " + "{a = " * 5000 + "1" + "}" * 5000 + "\n",
    "[preprocess." + ".".join(["a"] * 5000) + "]\nx = 1\n",  # parses flat, nests 5000 deep
    "preprocess." + ".".join(["a"] * 5000) + " = 1\n",
    "labels = " + "[" * 18 + "]" * 18 + "\n",  # just past the limit
])
def test_deep_nesting_is_a_bad_manifest(tmp_path: Path, text: str) -> None:
    err = bad(tmp_path, text, None)
    assert "levels deep" in err.message


def test_huge_manifest_and_values_are_refused_and_quoted_short(tmp_path: Path) -> None:
    err = bad(tmp_path, "labels = [" + '"x",' * (2 << 20) + "]\n", "flashml.toml")
    assert "larger than" in err.message
    err = bad(tmp_path, f'task = "{"t" * 100_000}"\n', "task")
    assert len(err.message) < 1000
    with pytest.raises(ValidationFailedError) as info:
        load_manifest(write(tmp_path, f'{"k" * 100_000} = 1\n'))
    assert len(info.value.message) < 1000 and len(info.value.details["key"]) < 300


@pytest.mark.parametrize("table,field", [
    ("max_batch_size = -1", "max_batch_size"),
    ("device = 'cuda:x'", "device"),
    ("max_queue_delay_us = 'soon'", "max_queue_delay_us"),
    ("preferred_batch_sizes = [4, 0]", "preferred_batch_sizes"),
    ("batch_buckets = [1, 8]\nmax_batch_size = 16", "batch_buckets"),
    ("flavour = 3", "flavour"),
])
def test_a_bad_batching_table_fails_when_the_manifest_is_read(tmp_path: Path, table: str, field: str) -> None:
    # No model file in the folder: the [batching] table is refused before anything looks at the model.
    with pytest.raises(ValidationFailedError) as info:
        load_manifest(write(tmp_path, f"[batching]\n{table}\n"))
    assert info.value.code == "bad_batching_config" and info.value.details == {"field": field}
    assert info.value.message.startswith("flashml.toml [batching]: ")


def test_batching_hints_say_what_the_manifest_fixed(tmp_path: Path) -> None:
    m = load_manifest(write(tmp_path, "[batching]\npreferred_batch_sizes = [4, 12]\ndevice = 'cpu'\n"))
    hints = m.batching
    assert hints.sets("preferred_batch_sizes") and hints.sets("max_batch_size") and hints.sets("device")
    assert not hints.sets("instance_count")
    assert hints.config.max_batch_size == 12 and hints.device == "cpu"
    assert m.to_dict()["batching"] == {"preferred_batch_sizes": [4, 12], "device": "cpu"}
