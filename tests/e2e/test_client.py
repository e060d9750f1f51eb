"""The CLI's HTTP client (flashml.client) called in-process against the real server, progress bars included.

In-process, the suite's warning filter turns a DeprecationWarning raised from flashml into an error: the CLI's
subprocess runs hide those, and Click 8.5 deprecates click.get_text_stream, which Click 9 removes.
"""

from __future__ import annotations

import pytest

from flashml.client import push_dataset, push_model
from tests.helpers import onnx_models
from tests.helpers.jobs import csv_dataset

pytestmark = pytest.mark.server


def test_push_dataset_streams_the_file_with_a_progress_bar(server, admin_key, tmp_path):
    data = tmp_path / "rows.csv"
    data.write_bytes(csv_dataset(7))
    dataset = push_dataset(server.url, admin_key, data)
    assert dataset["rows"] == 7 and dataset["size_bytes"] == data.stat().st_size


def test_push_model_hashes_and_sends_the_file_with_progress_bars(server, admin_key, tmp_path):
    path = onnx_models.add_model(tmp_path / "add.onnx")
    record = push_model(server.url, admin_key, path, "clientadd")
    assert record["state"] == "ready" and record["model"] == "clientadd"
