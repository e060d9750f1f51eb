"""merge/split: stacking requests on axis 0, padding token axes, and cutting outputs back."""

from __future__ import annotations

import numpy as np
import pytest

from flashml.errors import TensorError
from flashml.runtime.batching import BatchingConfig, PadSpec, merge, merge_key, rows, split
from flashml.runtime.runner import ModelRuntimeError

CFG = BatchingConfig(max_batch_size=16)
PADDED = BatchingConfig(max_batch_size=16, padded_inputs={"ids": PadSpec(1, -1), "mask": PadSpec(1, 0)},
                        padded_outputs={"logits": 1})


def test_rows_agree_or_name_the_tensors():
    assert rows({"a": np.zeros((3, 2)), "b": np.zeros(3)}) == 3
    with pytest.raises(TensorError) as err:
        rows({"a": np.zeros((3, 2)), "b": np.zeros((2, 2))})
    assert err.value.code == "batch_mismatch" and "a has 3" in err.value.message and "b has 2" in err.value.message
    with pytest.raises(TensorError) as err:
        rows({"s": np.float32(1.0) * np.ones(())})
    assert err.value.code == "batch_mismatch" and "s" in err.value.message


def test_merge_key_compares_dtype_and_trailing_dims():
    a = merge_key({"x": np.zeros((1, 3), np.float32)}, CFG)
    assert a == merge_key({"x": np.zeros((5, 3), np.float32)}, CFG)
    assert a != merge_key({"x": np.zeros((1, 4), np.float32)}, CFG)
    assert a != merge_key({"x": np.zeros((1, 3), np.float64)}, CFG)
    assert a != merge_key({"x": np.zeros((1, 3), np.float32), "z": np.zeros(1)}, CFG)


def test_merge_key_ignores_padded_axis_only():
    short = merge_key({"ids": np.zeros((1, 3, 2))}, PADDED)
    assert short == merge_key({"ids": np.zeros((2, 9, 2))}, PADDED)
    assert short != merge_key({"ids": np.zeros((1, 3, 4))}, PADDED)
    with pytest.raises(TensorError):
        merge_key({"ids": np.zeros(4)}, PADDED)  # no axis 1 to pad


def test_padded_inputs_of_one_request_must_share_their_length():
    # Padding would hide ids of 3 tokens with a mask of 4, which the model refuses when the request runs alone.
    assert merge_key({"ids": np.zeros((1, 4)), "mask": np.zeros((1, 4))}, PADDED)
    with pytest.raises(TensorError) as err:
        merge_key({"ids": np.zeros((1, 3)), "mask": np.zeros((1, 4))}, PADDED)
    assert err.value.code == "batch_mismatch" and "ids has 3, mask has 4" in err.value.message


def test_merge_and_split_several_rows_per_request():
    reqs = [{"x": np.arange(n * 2, dtype=np.float32).reshape(n, 2) + 100 * n} for n in (1, 2, 3)]
    merged, counts, lengths = merge(reqs, CFG)
    assert merged["x"].shape == (6, 2) and counts == [1, 2, 3] and lengths == [None] * 3
    parts = split({"y": merged["x"] * 2, "z": merged["x"][:, :1]}, counts, lengths, CFG)
    for req, part in zip(reqs, parts, strict=True):
        np.testing.assert_array_equal(part["y"], req["x"] * 2)
        np.testing.assert_array_equal(part["z"], req["x"][:, :1])


def test_single_request_passes_through_without_copy():
    x = np.ones((2, 3))
    merged, counts, _ = merge([{"x": x}], CFG)
    assert merged["x"] is x and counts == [2]
    out = {"y": np.float32(3.0) * np.ones(())}  # even an output without a batch axis is fine alone
    assert split(out, counts, [None], CFG)[0] is out


def test_padded_inputs_pad_to_longest_and_outputs_cut_back():
    reqs = [{"ids": np.full((1, 2), 7), "mask": np.ones((1, 2), np.int64)},
            {"ids": np.full((2, 4), 8), "mask": np.ones((2, 4), np.int64)}]
    merged, counts, lengths = merge(reqs, PADDED)
    assert lengths == [2, 4] and counts == [1, 2]
    np.testing.assert_array_equal(merged["ids"][0], [7, 7, -1, -1])
    np.testing.assert_array_equal(merged["mask"][0], [1, 1, 0, 0])
    np.testing.assert_array_equal(merged["ids"][1:], np.full((2, 4), 8))
    logits = np.repeat(merged["ids"][:, :, None], 3, axis=2).astype(np.float32)
    parts = split({"logits": logits, "pooled": logits[:, 0, :]}, counts, lengths, PADDED)
    assert parts[0]["logits"].shape == (1, 2, 3) and parts[1]["logits"].shape == (2, 4, 3)
    assert (parts[0]["logits"] == 7).all() and parts[0]["pooled"].shape == (1, 3)


def test_output_without_batch_axis_fails_the_batch():
    reqs = [{"x": np.ones((1, 2))}, {"x": np.ones((1, 2))}]
    merged, counts, lengths = merge(reqs, CFG)
    for bad in (np.float32(1) * np.ones(()), np.ones((3, 2))):
        with pytest.raises(ModelRuntimeError, match="output y does not have the batch on axis 0"):
            split({"y": bad}, counts, lengths, CFG)
