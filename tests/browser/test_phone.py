"""Every console page at phone width (375 px), with the keyboard: fits the screen, every field labelled,
readable contrast, and Tab reaches the page's main action with a visible focus ring. Screenshots of each.

The pages are filled as a busy server fills them (issue 24): a model with a very long name and 12 versions,
aliases with a canary and a shadow, a dataset with a long file name in the jobs form, a job; and a test checks
that the list covers every page the console serves, so a new page cannot skip the check."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.helpers import onnx_models
from tests.helpers.browser import assert_usable_at_phone_width, sign_in_as_new_user
from tests.helpers.console import console_app, console_routes
from tests.helpers.jobs import csv_dataset, push, run_job
from tests.helpers.uploads import upload

pytestmark = pytest.mark.server

# No spaces or hyphens to break at: the worst case for a heading at 375 px (names may have 128 characters).
MODEL = "PhoneWidthModelWithAVeryLongNameThatHasNoBreakPointsAtAllAndMustStillFitOnASmallScreen_v2026"
VERSIONS = 12
DATASET = "a-dataset-file-with-a-rather-long-name-as-people-export-them-from-their-tools-2026-12-05.csv"


@pytest.fixture(scope="module")
def busy(server, tmp_path_factory, admin_key) -> int:
    """The long-named model with 12 versions, aliases, a canary and a shadow, logged predictions and drift scores; a
    dataset and a job. The job's id."""
    folder = tmp_path_factory.mktemp("phone")
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=120) as api:
        for n in range(VERSIONS):
            r = upload(api, MODEL, onnx_models.offset_add_model(folder / f"v{n}.onnx", n))
            assert r.status_code == 201, r.text
        base = f"/api/v1/models/{MODEL}/aliases"
        assert api.put(f"{base}/production", json={"version": 11, "shadow": {"version": 12, "percent": 10}}
                       ).status_code == 200
        assert api.put(f"{base}/canary-with-a-long-alias-name", json={"versions": {"11": 90, "12": 10}}
                       ).status_code == 200
        # The prediction log on, with predictions in its table (a long request id, as clients send them).
        assert api.patch(f"/api/v1/models/{MODEL}", json={"prediction_log": {"enabled": True}}).status_code == 200
        tensors = [{"name": n, "datatype": "FP32", "shape": [1, 4], "data": [1.5, 2, 3, 4]} for n in ("a", "b")]
        trace = {"X-Request-Id": "client-trace-0123456789abcdef0123456789abcdef"}
        for _ in range(3):
            assert api.post(f"/v2/models/{MODEL}/infer", json={"inputs": tensors}, headers=trace).status_code == 200
        # Drift monitoring on and scored once: a chart, its table, and the other versions' reasons for waiting.
        drift = {"enabled": True, "reference_size": 10, "window_size": 10, "min_predictions": 10}
        assert api.patch(f"/api/v1/models/{MODEL}", json={"drift": drift}).status_code == 200
        for i in range(20):
            rows = [{"name": n, "datatype": "FP32", "shape": [2, 4], "data": [i, i % 3, 3, 4, -i, 2, i % 5, 1]}
                    for n in ("a", "b")]
            assert api.post(f"/v2/models/{MODEL}/infer", json={"inputs": rows}).status_code == 200
        assert api.post(f"/api/v1/models/{MODEL}/drift/check").status_code == 200
        dataset = push(api, DATASET, csv_dataset(20))
        assert dataset.status_code == 201, dataset.text
        return run_job(api, model=MODEL, dataset=dataset.json()["id"], output_format="csv")["id"]


def _pages(job_id: int) -> list[tuple[str, str, str]]:
    """Each page and its main action: (path, role, accessible name) of the control Tab must reach."""
    model = f"/models/{MODEL}"
    return [
        ("/", "button", "Show"),
        ("/models", "button", "Search"),
        (model, "link", "Versions"),
        (f"{model}?tab=versions", "button", "Compare"),
        (f"{model}?tab=versions&compare=1,{VERSIONS}", "button", "Compare"),
        (f"{model}?tab=traffic", "button", "Save alias"),
        (f"{model}?tab=settings", "button", "Save serving config"),
        (f"{model}?tab=predictions", "button", "Save prediction log setting"),
        (f"{model}?tab=drift", "button", "Save drift monitoring"),
        (f"{model}?tab=try", "link", "Try it in the playground"),
        (f"{model}/playground", "button", "Run"),
        ("/upload", "button", "Upload"),
        ("/jobs", "button", "Start"),
        (f"/jobs/{job_id}", "link", "All jobs"),
        ("/keys", "button", "Create key"),
        ("/users", "button", "Create user"),
        ("/audit", "button", "Filter"),
        ("/account/password", "button", "Change password"),
    ]


# Console GET routes that are not pages of their own, or are checked at phone width elsewhere.
NOT_PAGES = {"/dashboard": "a redirect to /", "/dashboard/live": "a part of the dashboard (htmx)",
             "/login": "checked first below", "/setup": "before the first user: tests/browser/test_setup.py"}


def test_the_phone_check_covers_every_console_page(tmp_path):
    with console_app(tmp_path / "data") as (app, _):
        routes = {path for method, path, _ in console_routes(app) if method == "GET"} - set(NOT_PAGES)
    checked = [path.split("?")[0] for path, _, _ in _pages(7)]
    missing = [r for r in routes
               if not any(re.fullmatch(re.sub(r"\\\{\w+:\w+\\\}", "[^/]+", re.escape(r)), p) for p in checked)]
    assert missing == [], f"console pages the phone-width check does not visit: {missing}"


def test_every_page_works_at_phone_width_with_the_keyboard(server, busy, page):  # noqa: F811
    page.goto(server.url + "/login")
    assert_usable_at_phone_width(page, page.get_by_role("button", name="Sign in"))
    page.shots("login")
    page.set_viewport_size({"width": 1200, "height": 800})
    sign_in_as_new_user(page, server, "phone-admin", "admin", "/")
    for path, role, name in _pages(busy):
        page.set_viewport_size({"width": 1200, "height": 800})
        page.goto(server.url + path)
        page.wait_for_load_state("networkidle")
        assert_usable_at_phone_width(page, page.get_by_role(role, name=name, exact=True))
        page.shots(re.sub(r"[^a-z0-9]+", "-", path.replace(MODEL, "model").lower()).strip("-") or "dashboard")


def test_the_confirm_step_fits_a_phone(server, busy, page):  # noqa: F811
    sign_in_as_new_user(page, server, "phone-confirm", "maintainer", f"/models/{MODEL}?tab=versions")
    page.get_by_role("button", name=f"Archive v{VERSIONS}").click()
    assert_usable_at_phone_width(page, page.get_by_role("button", name=f"Yes, archive v{VERSIONS}"))
    page.shots("confirm-archive")
    page.get_by_role("link", name="Cancel, change nothing").click()
    page.wait_for_url(f"{server.url}/models/{MODEL}?tab=versions")
