"""Zero-downtime swaps and rollback over real HTTP: client threads keep calling while the alias moves."""

from __future__ import annotations

import threading
import time
from collections import Counter

import httpx
import pytest

from tests.helpers import onnx_models
from tests.helpers.uploads import upload

pytestmark = pytest.mark.server

MODEL = "swapped"
BODY = {"inputs": [{"name": "a", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]},
                   {"name": "b", "datatype": "FP32", "shape": [1, 4], "data": [1, 1, 1, 1]}]}
ANSWER = {1: [2, 3, 4, 5], 2: [102, 103, 104, 105]}
CLIENTS = 4


@pytest.fixture(scope="module")
def swapped(server, admin_key, tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("swaps")
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=120) as api:
        for number, offset in ((1, 0), (2, 100)):
            r = upload(api, MODEL, onnx_models.offset_add_model(folder / f"v{number}.onnx", offset))
            assert r.status_code == 201 and r.json()["version"] == number, r.text
    return MODEL


class Load:
    """Client threads calling the model without a version (the production alias) until stopped."""

    def __init__(self, url: str, key: str) -> None:
        self.url, self.key = url, key
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.answered: Counter[int] = Counter()
        self.failures: list[str] = []
        self.last: dict[int, int] = {}  # thread -> the version that answered its latest call
        self.threads = [threading.Thread(target=self._call, args=(i,), daemon=True) for i in range(CLIENTS)]

    def _call(self, index: int) -> None:
        with httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.key}"}, timeout=30) as c:
            while not self.stop.is_set():
                try:
                    r = c.post(f"/v2/models/{MODEL}/infer", json=BODY)
                    number = int(r.headers.get("FlashML-Model-Version", 0))
                    ok = r.status_code == 200 and r.json()["outputs"][0]["data"] == ANSWER.get(number)
                except httpx.HTTPError as exc:
                    ok, number, r = False, 0, exc
                with self.lock:
                    if ok:
                        self.answered[number] += 1
                        self.last[index] = number
                    else:
                        self.failures.append(getattr(r, "text", str(r)))

    def wait_for(self, number: int, calls: int = 20) -> None:
        """Until every client's latest answer came from ``number``, and ``calls`` more answers arrived."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.last) == CLIENTS and set(self.last.values()) == {number}:
                    break
            time.sleep(0.01)
        else:
            raise AssertionError(f"the clients never all reached v{number}: {self.last}")
        with self.lock:
            target = sum(self.answered.values()) + calls
        while sum(self.answered.values()) < target and time.monotonic() < deadline:
            time.sleep(0.01)

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)


def test_swap_unload_and_rollback_under_load_fail_no_request(server, api, admin_key, swapped):
    assert api.put(f"/api/v1/models/{swapped}/aliases/production", json={"version": 1}).status_code == 200
    with Load(server.url, admin_key) as load:
        load.wait_for(1)
        r = api.put(f"/api/v1/models/{swapped}/aliases/production", json={"version": 2})
        assert r.status_code == 200 and r.json()["previous"] == {"versions": {"1": 100}}
        load.wait_for(2)
        # The old version unloads while callers keep coming: nothing it was answering fails.
        assert api.post(f"/api/v1/models/{swapped}/versions/1/archive").json()["state"] == "archived"
        assert api.get(f"/api/v1/models/{swapped}/versions/1").json()["loaded"] is False
        load.wait_for(2)
        assert api.post(f"/api/v1/models/{swapped}/versions/1/restore").json()["state"] == "ready"
        # One call rolls production back to v1.
        r = api.post(f"/api/v1/models/{swapped}/aliases/production/rollback")
        assert r.status_code == 200, r.text
        assert r.json()["version"] == 1 and r.json()["previous"] == {"versions": {"2": 100}}
        load.wait_for(1)
        # A second rollback undoes the first.
        assert api.post(f"/api/v1/models/{swapped}/aliases/production/rollback").json()["version"] == 2
        load.wait_for(2)
    assert load.failures == [], load.failures[:3]
    assert load.answered[1] >= 40 and load.answered[2] >= 60
    events = [(e["action"], e["detail"]) for e in api.get("/api/v1/audit").json()
              if e["target"] == f"{swapped}/production"]
    assert ("model.alias_rollback", {"versions": {"1": 100}, "previous": {"2": 100}}) in events
    assert ("model.alias_rollback", {"versions": {"2": 100}, "previous": {"1": 100}}) in events
    assert api.delete(f"/api/v1/models/{swapped}/aliases/production").status_code == 204


def test_a_rollback_that_cannot_happen_is_refused_and_changes_nothing(server, api, swapped):
    base = f"/api/v1/models/{swapped}/aliases"
    r = api.post(f"{base}/fresh/rollback")
    assert r.status_code == 404 and r.json()["code"] == "alias_not_found"
    assert api.put(f"{base}/fresh", json={"version": 1}).status_code == 200
    r = api.post(f"{base}/fresh/rollback")
    assert r.status_code == 409 and r.json()["code"] == "no_previous_target" and "nothing" in r.json()["error"]
    assert api.get(f"{base}").json()[0]["version"] == 1
    r = api.post(f"{base}/Bad/rollback")
    assert r.status_code == 400 and r.json()["code"] == "bad_alias_name"
    r = api.post("/api/v1/models/no-such-model/aliases/fresh/rollback")
    assert r.status_code == 404 and r.json()["code"] == "model_not_found"
    with httpx.Client(base_url=server.url, timeout=30) as c:
        viewer = api.post("/api/v1/keys", json={"name": "swaps viewer", "role": "viewer"}).json()["token"]
        r = c.post(f"{base}/fresh/rollback", headers={"Authorization": f"Bearer {viewer}"})
        assert r.status_code == 403 and r.json()["code"] == "role_forbidden"
    assert api.delete(f"{base}/fresh").status_code == 204


def test_a_rollback_to_a_version_no_longer_ready_is_refused(api, swapped):
    base = f"/api/v1/models/{swapped}/aliases"
    assert api.put(f"{base}/green", json={"version": 1}).status_code == 200
    assert api.put(f"{base}/green", json={"version": 2}).status_code == 200  # previous: v1
    assert api.post(f"/api/v1/models/{swapped}/versions/1/archive").json()["state"] == "archived"
    r = api.post(f"{base}/green/rollback")
    assert r.status_code == 409 and r.json()["code"] == "version_not_ready" and "archived" in r.json()["error"]
    assert api.get(f"{base}").json()[0]["version"] == 2
    assert api.post(f"/api/v1/models/{swapped}/versions/1/restore").json()["state"] == "ready"
    assert api.delete(f"{base}/green").status_code == 204
