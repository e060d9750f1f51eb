"""Parquet datasets read a row group at a time: a resumed job's chunks are exactly the chunks it skipped to."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from flashml.jobs.formats import inspect, read_chunks


def test_chunks_from_any_chunk_match_a_full_read(tmp_path):
    path = tmp_path / "d.parquet"
    table = pa.table({"a": pa.array(np.arange(53, dtype=np.float32)),
                      "v": pa.array([[i, i + 1] for i in range(53)], pa.list_(pa.int32()))})
    pq.write_table(table, path, row_group_size=6)
    assert inspect(path, "parquet", "d.parquet")[0] == 53
    full = list(read_chunks(path, "parquet", "d.parquet", 8, 0))
    assert [c.start for c in full] == list(range(0, 53, 8)) and sum(c.rows for c in full) == 53
    for first in range(len(full)):
        resumed = list(read_chunks(path, "parquet", "d.parquet", 8, first))
        assert [c.start for c in resumed] == [c.start for c in full[first:]]
        for a, b in zip(resumed, full[first:], strict=True):
            assert a.rows == b.rows and np.array_equal(a.columns["a"], b.columns["a"])
            assert a.columns["v"] == b.columns["v"]
    assert full[2].columns["a"].tolist() == list(range(16, 24)) and full[2].columns["v"][0] == [16, 17]
    assert list(read_chunks(path, "parquet", "d.parquet", 8, 7)) == []
