"""Batch jobs in a real browser: upload a dataset, start a job, watch its bar fill live, pause, resume,
download the result; a viewer reads only; housekeeping shows its last runs."""

from __future__ import annotations

import csv
import io

import pytest

from tests.helpers.browser import sign_in_as_new_user
from tests.helpers.jobs import csv_dataset

pytestmark = pytest.mark.server


def test_maintainer_runs_a_job_from_the_console(server, api, adder, page, tmp_path):  # noqa: F811
    sign_in_as_new_user(page, server, "jobs-maintainer", "maintainer", "/jobs")
    assert page.locator("#housekeeping-uploads").is_visible()
    data = tmp_path / "console.csv"
    data.write_bytes(csv_dataset(4000, bad={10}))
    page.set_input_files("#dataset-file", str(data))
    page.get_by_role("button", name="Upload dataset", exact=True).click()
    page.wait_for_selector("#datasets-table >> text=console.csv")
    page.shots("dataset-uploaded")

    page.select_option("#job-model", adder)
    page.fill("#job-version", "stable")
    page.select_option("#job-dataset", label=page.locator("#job-dataset option", has_text="console.csv")
                       .first.inner_text())
    page.fill("#job-chunk", "20")
    page.get_by_role("button", name="Start", exact=True).click()
    page.wait_for_url(f"{server.url}/jobs/*")
    job_id = int(page.url.rsplit("/", 1)[1])
    page.get_by_role("button", name="Pause").click()
    page.wait_for_selector("#job-state >> text=paused")
    paused_at = int(page.get_attribute("#job-bar", "value"))
    assert paused_at < 4000
    page.shots("paused")
    page.get_by_role("button", name="Resume").click()
    # The bar fills by htmx polling alone; when the job ends the page reloads with the download link and log.
    page.wait_for_selector("#job-download", timeout=60000)
    assert page.inner_text("#job-state") == "succeeded"
    assert page.get_attribute("#job-bar", "value") == "4000"
    assert "row 10" in page.inner_text("#job-log") and "pause by jobs-maintainer/console" in page.inner_text("#job-log")
    page.shots("succeeded")
    with page.expect_download() as download:
        page.click("#job-download")
    rows = list(csv.DictReader(io.StringIO(open(download.value.path()).read())))
    assert [int(r["row_id"]) for r in rows] == [i for i in range(4000) if i != 10]
    assert api.get(f"/api/v1/jobs/{job_id}").json()["state"] == "succeeded"


def test_bad_job_form_says_why_and_viewers_only_read(server, api, adder, page):  # noqa: F811
    sign_in_as_new_user(page, server, "jobs-maintainer2", "maintainer", "/jobs")
    page.fill("#job-cron", "not a cron")
    page.get_by_role("button", name="Start", exact=True).click()
    assert "cron" in page.inner_text("#page-error")
    page.shots("bad-form")
    page.context.clear_cookies()
    sign_in_as_new_user(page, server, "jobs-viewer", "viewer", "/jobs")
    assert page.locator("#job-form").count() == 0 and page.locator("#dataset-form").count() == 0
    assert page.locator("#jobs-table").is_visible()
