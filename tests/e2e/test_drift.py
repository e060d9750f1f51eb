"""Drift detection over real HTTP with synthetic shifted inputs: a tabular classifier logs its predictions, a
reference window of unshifted rows, then rows whose feature 2 is shifted. That feature's PSI crosses the threshold
while the other features and the predicted classes (the model ignores feature 2) do not; the crossing is audited
and /metrics says flashml_drift_alert 1. And a guarded canary split whose canary sees shifted inputs goes back
to its stable version because of drift."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import onnx_models
from tests.helpers.server_process import flashml
from tests.helpers.uploads import upload

pytestmark = pytest.mark.server

# Named to sort after the jobs tests' adder on the shared server: the console's jobs form offers the first model by
# name, and these take other inputs.
MODEL, CANARY_MODEL, CLI_MODEL = "watched-e2e", "watched-canary-e2e", "watched-cli-e2e"
ROWS = 20  # rows per request: 30 requests make a window of 600 rows, where PSI's noise is about 0.03
MONITOR = {"enabled": True, "reference_size": 30, "window_size": 30, "min_predictions": 30, "threshold": 0.2}
SHIFTED = 2  # the feature moved; the model gives it no weight


@pytest.fixture(scope="module")
def models(server, admin_key, tmp_path_factory) -> None:
    folder = tmp_path_factory.mktemp("drift")
    path = onnx_models.tabular_classifier_model(folder / "classifier.onnx")
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=120) as api:
        for model, versions in ((MODEL, 1), (CANARY_MODEL, 2), (CLI_MODEL, 1)):
            for _ in range(versions):
                assert upload(api, model, path).status_code == 201
            r = api.patch(f"/api/v1/models/{model}", json={"prediction_log": {"enabled": True},
                                                            **({} if model == CLI_MODEL else {"drift": MONITOR})})
            assert r.status_code == 200, r.text


def send(api: httpx.Client, model: str, version: int, requests: int, rng: np.random.Generator,
         shift: float = 0.0) -> None:
    for _ in range(requests):
        rows = rng.normal(0, 1, (ROWS, 4)).astype(np.float32)
        rows[:, SHIFTED] += shift
        body = {"inputs": [{"name": "features", "datatype": "FP32", "shape": [ROWS, 4],
                            "data": rows.ravel().tolist()}]}
        r = api.post(f"/v2/models/{model}/versions/{version}/infer", json=body)
        assert r.status_code == 200, r.text


def check(api: httpx.Client, model: str) -> dict:
    r = api.post(f"/api/v1/models/{model}/drift/check")
    assert r.status_code == 200, r.text
    return r.json()


def test_a_shifted_feature_crosses_the_threshold_is_audited_and_raises_the_metric(server, api, models):
    rng = np.random.default_rng(25)
    send(api, MODEL, 1, 30, rng)  # the reference: the version's first 30 logged predictions
    send(api, MODEL, 1, 30, rng)  # the same distribution
    calm = check(api, MODEL)["versions"][0]
    assert calm["scored"], calm
    assert not calm["alert"] and all(not s["above"] for s in calm["scores"])
    send(api, MODEL, 1, 30, rng, shift=1.5)
    shifted = check(api, MODEL)["versions"][0]
    scores = {s["feature"]: s for s in shifted["scores"]}
    assert set(scores) == {"features[0]", "features[1]", "features[2]", "features[3]", "output"}
    assert scores["features[2]"]["above"] and scores["features[2]"]["score"] > 0.5, scores
    assert scores["features[2]"]["p_value"] < 1e-6  # and Kolmogorov-Smirnov agrees
    assert [f for f, s in scores.items() if s["above"]] == ["features[2]"], scores
    assert scores["output"]["kind"] == "classes" and scores["output"]["score"] < 0.2  # the model ignores it

    events = [e for e in api.get("/api/v1/audit").json()
              if e["action"] == "model.drift" and e["target"] == f"{MODEL}/v1"]
    assert len(events) == 1, events
    assert events[0]["actor"] == "flashml/drift"
    assert events[0]["detail"]["feature"] == "features[2]" and events[0]["detail"]["threshold"] == 0.2
    assert events[0]["detail"]["score"] == round(scores["features[2]"]["score"], 4)

    r = httpx.get(f"{server.url}/metrics", timeout=30)  # loopback: the shared server lets this machine read it
    assert r.status_code == 200, r.text
    samples = {(s.name, frozenset(s.labels.items())): s.value
               for family in text_string_to_metric_families(r.text) for s in family.samples}
    labels = frozenset({"model": MODEL, "version": "1"}.items())
    assert samples[("flashml_drift_alert", labels)] == 1.0
    assert samples[("flashml_drift_threshold", labels)] == 0.2
    feature = frozenset({"model": MODEL, "version": "1", "feature": "features[2]"}.items())
    assert samples[("flashml_drift_score", feature)] == pytest.approx(scores["features[2]"]["score"])

    report = api.get(f"/api/v1/models/{MODEL}/drift").json()
    series = {f["feature"]: f for f in report["features"]}
    assert report["alert"] and len(series["features[2]"]["points"]) == 2 and series["features[2]"]["above"]


def test_a_guarded_canary_that_sees_shifted_inputs_is_rolled_back_for_drift(api, models):
    split = {"versions": {"1": 90, "2": 10}, "guard": {"max_drift": 0.5}}
    r = api.put(f"/api/v1/models/{CANARY_MODEL}/aliases/production", json=split)
    assert r.status_code == 200, r.text
    rng = np.random.default_rng(26)
    send(api, CANARY_MODEL, 1, 60, rng)
    send(api, CANARY_MODEL, 2, 30, rng)  # the canary's reference
    send(api, CANARY_MODEL, 2, 30, rng, shift=3.0)  # what the canary sees next
    result = check(api, CANARY_MODEL)
    assert result["rolled_back"] == ["production"], result
    alias = api.get(f"/api/v1/models/{CANARY_MODEL}/aliases").json()
    assert [a["versions"] for a in alias if a["alias"] == "production"] == [{"1": 100}]
    events = [e for e in api.get("/api/v1/audit").json()
              if e["action"] == "model.alias_auto_rollback" and e["target"] == f"{CANARY_MODEL}/production"]
    assert len(events) == 1, events
    detail = events[0]["detail"]
    assert (detail["canary"], detail["stable"], detail["crossed"], detail["feature"]) == (2, 1, ["max_drift"],
                                                                                          "features[2]")
    assert detail["drift"] > detail["max_drift"] == 0.5


def test_the_cli_sets_monitoring_checks_and_shows_the_scores(server, api, admin_key, models):
    conn = ("--url", server.url, "--key", admin_key)
    out = flashml("models", "drift", CLI_MODEL, *conn).stdout.splitlines()
    assert out == [f"{CLI_MODEL}: drift monitoring off", "no version has drift scores yet"]
    out = flashml("models", "drift", CLI_MODEL, "--on", "--reference-size", "30", "--window-size", "30",
                  "--min-predictions", "30", "--threshold", "0.25", "--no-rollback", "--check", *conn).stdout
    assert out.splitlines() == [
        "v1 not scored: the reference holds 0 of the first 30 logged predictions it needs",
        f"{CLI_MODEL}: drift monitoring on, the first 30 logged predictions against the last 30 logged predictions; "
        "threshold 0.25, no rollback", "no version has drift scores yet"]
    rng = np.random.default_rng(27)
    send(api, CLI_MODEL, 1, 30, rng)
    send(api, CLI_MODEL, 1, 30, rng, shift=2.0)
    out = flashml("models", "drift", CLI_MODEL, "--check", *conn).stdout.splitlines()
    assert out[1] == "v1: ALERT, a feature is above the threshold 0.25"
    lines = {line.split()[0]: line for line in out[2:]}
    assert set(lines) == {"features[0]", "features[1]", "features[2]", "features[3]", "output"}
    assert lines["features[2]"].endswith("above") and not lines["features[0]"].endswith("above")
    bad = flashml("models", "drift", CLI_MODEL, "--threshold", "0", *conn, check=False)
    assert bad.returncode != 0 and "threshold" in bad.stderr
