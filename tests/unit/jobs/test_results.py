"""Job result files written and assembled on disk (flashml.jobs.results), without a server."""

from __future__ import annotations

import numpy as np

from flashml.jobs.results import assemble, write_chunk


def test_npz_results_keep_outputs_whatever_their_names(tmp_path):
    # np.savez takes the arrays as keywords beside its own `file` and `allow_pickle`: an output named `file`
    # failed the job, and one named `allow_pickle` was silently left out of the result.
    parts = []
    for n, start in enumerate((0, 3)):
        row_ids = np.arange(start, start + 3, dtype=np.int64)
        outputs = {"file": row_ids.astype(np.float32) * 2, "allow_pickle": np.ones((3, 2), np.float32) * n,
                   "y": row_ids.astype(np.float32)}
        parts.append(tmp_path / f"{n}.npz")
        write_chunk("npz", parts[-1], row_ids, outputs)
    assemble("npz", parts, tmp_path / "result.npz")

    with np.load(tmp_path / "result.npz", allow_pickle=False) as result:
        assert sorted(result.files) == ["allow_pickle", "file", "row_id", "y"]
        np.testing.assert_array_equal(result["row_id"], np.arange(6))
        np.testing.assert_array_equal(result["file"], np.arange(6, dtype=np.float32) * 2)
        np.testing.assert_array_equal(result["allow_pickle"], np.repeat([[0, 0], [1, 1]], 3, axis=0))
        np.testing.assert_array_equal(result["y"], np.arange(6, dtype=np.float32))
