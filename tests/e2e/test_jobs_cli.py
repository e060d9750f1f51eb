"""The CLI as a user types it: datasets push|list, jobs run|list|show|cancel against the real server."""

from __future__ import annotations

import csv
import io

import pytest

from tests.helpers.jobs import csv_dataset
from tests.helpers.server_process import flashml

pytestmark = pytest.mark.server


def test_datasets_and_jobs_from_the_cli(server, admin_key, adder, tmp_path):
    conn = ("--url", server.url, "--key", admin_key)
    data = tmp_path / "cli.csv"
    data.write_bytes(csv_dataset(12, bad={5}))
    pushed = flashml("datasets", "push", str(data), *conn).stdout.split("\t")
    dataset_id = pushed[0]
    assert pushed[2] == "12 rows"
    assert dataset_id in flashml("datasets", "list", *conn).stdout
    out = tmp_path / "result.csv"
    run = flashml("jobs", "run", "--model", adder, "--version", "stable", "--dataset", dataset_id, "--chunk-rows",
                  "5", "--wait", "--output", str(out), *conn)
    assert "succeeded" in run.stdout and "12/12 rows (1 bad)" in run.stdout
    ids = [int(r["row_id"]) for r in csv.DictReader(io.StringIO(out.read_text()))]
    assert ids == [i for i in range(12) if i != 5]
    job_id = run.stdout.split("\t")[0]
    assert [job_id, "succeeded"] in [line.split()[:2] for line in flashml("jobs", "list", *conn).stdout.splitlines()]
    shown = flashml("jobs", "show", job_id, *conn).stdout
    assert "row 5: skipped" in shown and "/result" in shown
    refused = flashml("jobs", "cancel", job_id, *conn, check=False)
    assert refused.returncode == 1 and "bad_job_state" in refused.stderr
    bad = flashml("jobs", "run", "--model", adder, "--dataset", dataset_id, "--map", "a=nope", *conn, check=False)
    assert bad.returncode == 1 and "mapping_mismatch" in bad.stderr
    sched = flashml("jobs", "run", "--model", adder, "--dataset", dataset_id, "--cron", "0 3 * * 1-5",
                    "--timezone", "Asia/Tokyo", *conn)
    assert "schedule" in sched.stdout and "Asia/Tokyo" in sched.stdout
