"""`flashml jobs result` downloads an existing job's result; `flashml datasets delete` removes a dataset."""

from __future__ import annotations

import csv
import io
import subprocess
import sys

import pytest

from tests.helpers.jobs import csv_dataset
from tests.helpers.server_process import flashml

pytestmark = pytest.mark.server


def test_download_a_finished_jobs_result_then_delete_its_dataset(server, admin_key, adder, tmp_path):
    conn = ("--url", server.url, "--key", admin_key)
    data = tmp_path / "later.csv"
    data.write_bytes(csv_dataset(7))
    dataset_id = flashml("datasets", "push", str(data), *conn).stdout.split("\t")[0]
    run = flashml("jobs", "run", "--model", adder, "--version", "1", "--dataset", dataset_id, "--wait", *conn)
    job_id = run.stdout.split("\t")[0]

    chosen = tmp_path / "chosen.csv"
    saved = flashml("jobs", "result", job_id, "-o", str(chosen), *conn)
    assert f"result saved to {chosen}" in saved.stdout
    assert [int(r["row_id"]) for r in csv.DictReader(io.StringIO(chosen.read_text()))] == list(range(7))
    # Without -o: the server's name for it, in the folder the command runs in.
    here = subprocess.run([sys.executable, "-m", "flashml", "jobs", "result", job_id, *conn], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert here.returncode == 0, here.stderr
    assert (tmp_path / f"job-{job_id}-result.csv").read_text() == chosen.read_text()

    missing = flashml("jobs", "result", "999999", *conn, check=False)
    assert missing.returncode == 1 and "job_not_found" in missing.stderr

    assert f"Deleted dataset {dataset_id}." in flashml("datasets", "delete", dataset_id, *conn).stdout
    assert dataset_id not in flashml("datasets", "list", *conn).stdout
    again = flashml("datasets", "delete", dataset_id, *conn, check=False)
    assert again.returncode == 1 and "dataset_not_found" in again.stderr
