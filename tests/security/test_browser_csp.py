"""Every console page under its strict Content-Security-Policy in a real browser: the policy is there, and no
page, chart or htmx swap breaks it (no inline script or style, no eval). A violation shows up as a
``securitypolicyviolation`` event or a console error; the test collects both and expects none."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

import httpx
import pytest

from tests.helpers import onnx_models
from tests.helpers.browser import Shots
from tests.helpers.server_process import SERVER_FLAGS, ServerProcess

pytestmark = pytest.mark.server

MODEL = "csp-add"
PASSWORD = "csp admin password"
POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
          "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
# Registered before any page script runs: violations are kept on the window, across htmx swaps.
WATCH = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', e => window.__csp.push(
  `${e.violatedDirective} blocked ${e.blockedURI || 'inline'} at ${e.sourceFile}:${e.lineNumber} ${e.sample}`));
"""


@pytest.fixture()
def page(browser, request) -> Iterator[object]:  # noqa: F811 - the browser fixture
    """A page that keeps the CSP (tests/browser.py's bypasses it for Playwright's wait_for_function)."""
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    pg = context.new_page()
    pg.set_default_timeout(20_000)
    pg.shots = Shots(pg, f"csp-{request.node.name}")  # type: ignore[attr-defined]
    yield pg
    context.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    srv = ServerProcess(tmp_path_factory.mktemp("csp") / "data", *SERVER_FLAGS).start()
    yield srv
    srv.stop()


class Watcher:
    """The page's CSP violations and console errors since the last ``check``."""

    def __init__(self, page, policy: str = POLICY) -> None:
        self.page, self.policy = page, policy
        self.console: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.console.append(str(e)))
        page.add_init_script(WATCH)

    def _console(self, message) -> None:
        if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico"):  # there is none
            self.console.append(f"{message.text} ({message.location.get('url')})")

    def visit(self, url: str, status: int = 200) -> None:
        answer = self.page.goto(url)
        assert answer.status == status and answer.headers.get("content-security-policy") == self.policy, (
            url, answer.status, answer.headers)
        self.page.wait_for_load_state("networkidle")
        if status != 200:  # the browser logs the page's own error status; that is not what this test looks for
            self.console = [m for m in self.console if f"status of {status}" not in m]
        self.check(url)

    def check(self, where: str) -> None:
        violations = self.page.evaluate("() => window.__csp || []")
        assert violations == [] and self.console == [], (where, violations, self.console)


def _set_up(page, srv: ServerProcess, watcher: Watcher) -> str:
    """The first-run setup page in the browser; returns the admin's API key it shows."""
    watcher.visit(srv.url + "/login")
    watcher.visit(srv.setup_url())
    page.get_by_label("User name").fill("csp-admin")
    page.get_by_label("Password (at least 8 characters)").fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD)
    page.get_by_role("button", name="Create admin").click()
    key = page.inner_text("#api-key").strip()
    watcher.check("setup done")
    return key


def _traffic(srv: ServerProcess, key: str, folder) -> int:
    """A model with a version, some requests for the charts, a dataset and a job; returns the job's id."""
    path = onnx_models.add_model(folder / "add.onnx")
    with httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {key}"}, timeout=120) as api:
        r = api.post(f"/api/v1/models/{MODEL}/versions", content=path.read_bytes(),
                     headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 201, r.text
        body = {"inputs": [{"name": n, "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]} for n in "ab"]}
        for _ in range(20):
            assert api.post(f"/v2/models/{MODEL}/infer", json=body).status_code == 200
        rows = io.StringIO()
        csv.writer(rows).writerows([["a", "b"], *([json.dumps([i] * 4), "[1, 1, 1, 1]"] for i in range(10))])
        r = api.post("/api/v1/datasets", params={"filename": "rows.csv"}, content=rows.getvalue().encode(),
                     headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 201, r.text
        r = api.post("/api/v1/jobs", json={"model": MODEL, "dataset": r.json()["id"], "output_format": "csv"})
        assert r.status_code == 201, r.text
        return r.json()["job"]["id"]


def test_no_console_page_breaks_the_content_security_policy(served, page, tmp_path):
    watcher = Watcher(page)
    key = _set_up(page, served, watcher)
    job_id = _traffic(served, key, tmp_path)
    for path in ("/", "/models", f"/models/{MODEL}", f"/models/{MODEL}/playground", "/upload", "/jobs",
                 f"/jobs/{job_id}", "/keys", "/users", "/audit"):
        watcher.visit(served.url + path)
        page.shots(path.strip("/").replace("/", "-") or "dashboard")
    watcher.visit(served.url + "/models/no-such-model", status=404)  # the error page


def _upload_in_console(page, name: str, path) -> None:
    page.get_by_label("Model name").fill(name)
    page.get_by_label("Model file").set_input_files(str(path))
    page.get_by_role("button", name="Upload").click()
    page.locator("#model-link").wait_for(timeout=120_000)


def test_htmx_interactions_stay_inside_the_policy(served, page, tmp_path):
    watcher = Watcher(page)
    page.goto(served.url + "/login")
    page.get_by_label("User name").fill("csp-admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/login" not in url)
    watcher.check("signed in")

    watcher.visit(served.url + "/models")  # the search box swaps the rows and replaces the URL
    page.get_by_label("Search by name").fill("csp")
    page.wait_for_url("**/models?q=csp*")
    page.wait_for_selector(f"#models-rows >> text={MODEL}")
    watcher.check("models search")

    watcher.visit(f"{served.url}/models/{MODEL}/playground")  # a run swaps in the result (and shows the indicator)
    page.get_by_role("button", name="Run", exact=True).click()
    page.wait_for_selector("#result .output")
    watcher.check("playground run")

    watcher.visit(served.url + "/keys")  # create a key, change its limits and revoke it, all through htmx
    page.get_by_label("Name", exact=True).fill("csp key")
    page.get_by_role("button", name="Create key").click()
    page.locator("pre#new-key").wait_for()
    row = page.locator("tr", has=page.locator("th", has_text="csp key"))
    row.get_by_text("Limits", exact=True).click()
    row.get_by_label("Rate limit (requests per second)").fill("5")
    row.get_by_role("button", name="Save limits of csp key").click()
    row.get_by_text("limits saved").wait_for()
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Revoke csp key").click()
    row.locator(".key-state", has_text="revoked").wait_for()
    watcher.check("keys")

    watcher.visit(served.url + "/upload")  # the upload page sends the file with XHR and follows validation
    _upload_in_console(page, "csp-upload", onnx_models.add_model(tmp_path / "add.onnx"))
    watcher.check("upload")

    watcher.visit(served.url + "/")  # the dashboard's live part refreshes itself through htmx and redraws
    page.wait_for_timeout(11_000)  # REFRESH_S (10 s) and a little
    watcher.check("dashboard refresh")
    assert page.locator("#dash-data").count() == 1  # the chart's JSON survived the swap (htmx config)
    page.shots("dashboard-refreshed")


def test_the_s3_store_upload_goes_straight_to_the_store_within_the_policy(tmp_path, page):
    """With the S3 store the browser PUTs the file to a presigned URL: the policy's one outside origin."""
    from tests.helpers.s3 import Moto, s3_server

    moto = Moto().start()
    srv = s3_server(tmp_path / "data", moto).start()
    puts: list[str] = []
    page.on("request", lambda r: puts.append(r.url) if r.method == "PUT" else None)
    try:
        watcher = Watcher(page, POLICY.replace("connect-src 'self'", f"connect-src 'self' http://{moto.endpoint}"))
        _set_up(page, srv, watcher)
        watcher.visit(srv.url + "/upload")
        _upload_in_console(page, "csp-s3", onnx_models.add_model(tmp_path / "add.onnx"))
        watcher.check("s3 upload")
        assert puts and all(u.startswith(f"http://{moto.endpoint}/") for u in puts)
    finally:
        srv.stop()
        moto.stop()
