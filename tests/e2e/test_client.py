"""The public client (flashml.client) called in-process against the real server: typed records, progress reported
by callback, and the server's errors as ClientError with its code and request id.

In-process, the suite's warning filter turns a DeprecationWarning raised from flashml into an error.
"""

from __future__ import annotations

import pytest

from flashml.client import Client, ClientError
from flashml.registry.records import VersionRecord
from tests.helpers import onnx_models
from tests.helpers.jobs import csv_dataset

pytestmark = pytest.mark.server


def test_push_dataset_streams_the_file_with_progress(server, admin_key, tmp_path):
    data = tmp_path / "rows.csv"
    data.write_bytes(csv_dataset(7))
    seen: list[tuple[str, int, int | None]] = []
    with Client(server.url, admin_key) as fml:
        dataset = fml.push_dataset(data, progress=lambda stage, done, total: seen.append((stage, done, total)))
        assert dataset.rows == 7 and dataset.size_bytes == data.stat().st_size
        assert dataset.id in {d.id for d in fml.list_datasets()}
    assert seen and seen[-1][1] == data.stat().st_size


def test_push_model_hashes_and_sends_the_file_and_answers_typed_records(server, admin_key, tmp_path):
    path = onnx_models.add_model(tmp_path / "add.onnx")
    stages: set[str] = set()
    with Client(server.url, admin_key) as fml:
        record = fml.push_model(path, "clientadd", progress=lambda stage, done, total: stages.add(stage))
        assert isinstance(record, VersionRecord)
        assert record.state == "ready" and record.model == "clientadd"
        assert stages == {"hashing", "uploading"}
        assert fml.get_version("clientadd", record.version).state == "ready"
        assert fml.archive_version("clientadd", record.version).state == "archived"
        assert fml.restore_version("clientadd", record.version).state == "ready"
        me = fml.whoami()
        assert me.key and me.key.role == "admin"


def test_errors_carry_the_server_code_and_request_id(server, admin_key):
    with Client(server.url, admin_key) as fml, pytest.raises(ClientError) as err:
        fml.get_model("no-such-model")
    assert err.value.status == 404 and err.value.code and err.value.request_id
    with Client(server.url, "fml_wrong") as fml, pytest.raises(ClientError) as err:
        fml.list_models()
    assert err.value.status == 401


def test_an_unreachable_server_is_a_client_error_not_a_traceback():
    with Client("http://127.0.0.1:9", "fml_x", timeout=2) as fml, pytest.raises(ClientError) as err:
        fml.list_models()
    assert err.value.status is None and "127.0.0.1:9" in str(err.value)
