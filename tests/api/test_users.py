"""The users API (/api/v1/users) and a person's own password change (/api/v1/account/password), in process: each
action, each refusal with its code, sessions ended at once, the last enabled admin kept, the sign-in brake on
wrong current passwords, and the audit trail with its actor.

Two apps of their own (not the shared one): the last-admin rule counts every admin user of an app, and the brake
counts every failed sign-in of the test client's one address."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers.in_process import AppClient, InProcessApp
from tests.helpers.server_process import login_token

PASSWORD = "users api password 1"
RECORD_FIELDS = {"name", "role", "created_at", "disabled", "locked"}


@pytest.fixture(scope="module")
def users_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessApp]:
    with InProcessApp(tmp_path_factory.mktemp("users") / "data") as running:
        yield running


@pytest.fixture(scope="module")
def admin_api(users_app: InProcessApp) -> AppClient:
    return users_app.client(users_app.create_key("users admin", "admin"))


def _create(api: AppClient, name: str, role: str = "viewer", password: str = PASSWORD) -> dict:
    r = api.post("/api/v1/users", json={"name": name, "password": password, "role": role})
    assert r.status_code == 201, r.text
    return r.json()


def _sign_in(app: InProcessApp, name: str, password: str = PASSWORD) -> AppClient:
    client = app.client()
    r = client.post("/login", data={**login_token(client), "name": name, "password": password})
    assert r.status_code == 303, r.text
    return client


def _sign_in_status(app: InProcessApp, name: str, password: str) -> int:
    client = app.client()
    return client.post("/login", data={**login_token(client), "name": name, "password": password}).status_code


def _session_works(client: AppClient) -> bool:
    r = client.get("/api/v1/me")
    assert r.status_code in (200, 401), r.text
    return r.status_code == 200


def _events(api: AppClient, action: str) -> list[dict]:
    return [e for e in api.get("/api/v1/audit", params={"limit": 1000}).json() if e["action"] == action]


def test_an_admin_creates_lists_and_reads_users(admin_api):
    created = _create(admin_api, "api-ann", "maintainer")
    assert set(created) == RECORD_FIELDS
    assert created["name"] == "api-ann" and created["role"] == "maintainer"
    assert created["disabled"] is False and created["locked"] is False and created["created_at"] > 0
    listed = admin_api.get("/api/v1/users")
    assert listed.status_code == 200
    assert created in listed.json() and all(set(u) == RECORD_FIELDS for u in listed.json())
    assert admin_api.get("/api/v1/users/api-ann").json() == created
    # The role is optional (viewer, as in the console's form).
    assert admin_api.post("/api/v1/users", json={"name": "api-vic", "password": PASSWORD}).json()["role"] == "viewer"
    event = _events(admin_api, "user.create")[0]
    assert event["target"] == "user:api-vic" and event["actor"] == "test/key:users admin"


def test_creating_refuses_bad_input_with_its_code(admin_api):
    _create(admin_api, "api-taken")
    cases = [
        ({"name": "-starts-with-dash", "password": PASSWORD}, 400, "bad_name"),
        ({"name": "has space", "password": PASSWORD}, 400, "bad_name"),
        ({"name": "x" * 65, "password": PASSWORD}, 400, "bad_name"),
        ({"name": "api-short", "password": "short"}, 400, "weak_password"),
        ({"name": "api-role", "password": PASSWORD, "role": "inference"}, 400, "bad_role"),
        ({"name": "api-taken", "password": PASSWORD}, 409, "user_exists"),
        ({"name": "api-nopw"}, 400, "invalid_request"),
        ({"name": "api-type", "password": 12345678}, 400, "invalid_request"),
        ({"name": "api-extra", "password": PASSWORD, "admin": True}, 400, "invalid_request"),
    ]
    for body, status, code in cases:
        r = admin_api.post("/api/v1/users", json=body)
        assert (r.status_code, r.json()["code"]) == (status, code), (body, r.text)
        assert r.json()["error"] and "Traceback" not in r.text
    r = admin_api.post("/api/v1/users", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["code"] == "malformed_request"
    names = {u["name"] for u in admin_api.get("/api/v1/users").json()}
    assert not names & {"-starts-with-dash", "has space", "api-short", "api-role", "api-nopw", "api-type",
                        "api-extra"}


def test_unknown_users_are_404_everywhere(admin_api):
    for method, path, body in [("GET", "/api/v1/users/api-nobody", None),
                               ("PATCH", "/api/v1/users/api-nobody", {"disabled": True}),
                               ("PATCH", "/api/v1/users/api-nobody", {"role": "viewer"}),
                               ("DELETE", "/api/v1/users/api-nobody", None),
                               ("POST", "/api/v1/users/api-nobody/password", {"password": PASSWORD}),
                               ("POST", "/api/v1/users/api-nobody/unlock", None)]:
        r = admin_api.request(method, path, json=body)
        assert r.status_code == 404 and r.json()["code"] == "user_not_found", (method, path, r.text)
        assert "api-nobody" in r.json()["error"]


def test_keys_below_admin_and_no_key_are_refused(users_app, admin_api):
    _create(admin_api, "api-target")
    calls = [("GET", "/api/v1/users", None), ("POST", "/api/v1/users", {"name": "api-sneak", "password": PASSWORD}),
             ("GET", "/api/v1/users/api-target", None), ("PATCH", "/api/v1/users/api-target", {"disabled": True}),
             ("DELETE", "/api/v1/users/api-target", None),
             ("POST", "/api/v1/users/api-target/password", {"password": "taken over 123"}),
             ("POST", "/api/v1/users/api-target/unlock", None)]
    for role in ("maintainer", "viewer", "inference"):
        client = users_app.client(users_app.create_key(f"users {role}", role))
        for method, path, body in calls:
            r = client.request(method, path, json=body)
            assert r.status_code == 403 and r.json()["code"] == "role_forbidden", (role, method, path, r.text)
    anonymous = users_app.client()
    for method, path, body in calls:
        assert anonymous.request(method, path, json=body).status_code == 401
    # A maintainer's console session is refused too.
    _create(admin_api, "api-maint-session", "maintainer")
    session = _sign_in(users_app, "api-maint-session")
    r = session.get("/api/v1/users")
    assert r.status_code == 403 and r.json()["code"] == "role_forbidden"
    target = admin_api.get("/api/v1/users/api-target").json()
    assert target["disabled"] is False
    assert "api-sneak" not in {u["name"] for u in admin_api.get("/api/v1/users").json()}
    assert _sign_in_status(users_app, "api-target", PASSWORD) == 303  # the password was not changed


def test_disabling_ends_the_sessions_at_once_and_enabling_lets_back_in(users_app, admin_api):
    _create(admin_api, "api-dora", "maintainer")
    first, second = _sign_in(users_app, "api-dora"), _sign_in(users_app, "api-dora")
    assert _session_works(first) and _session_works(second)
    r = admin_api.patch("/api/v1/users/api-dora", json={"disabled": True})
    assert r.status_code == 200 and r.json()["disabled"] is True and set(r.json()) == RECORD_FIELDS
    assert not _session_works(first) and not _session_works(second)  # no cache grace: at once
    assert first.get("/api/v1/me").json()["code"] == "session_expired"
    assert _sign_in_status(users_app, "api-dora", PASSWORD) == 401
    event = _events(admin_api, "user.disable")[0]
    assert event["target"] == "user:api-dora" and event["actor"] == "test/key:users admin"
    assert event["detail"]["sessions_ended"] == 2
    r = admin_api.patch("/api/v1/users/api-dora", json={"disabled": False})
    assert r.status_code == 200 and r.json()["disabled"] is False
    assert _events(admin_api, "user.enable")[0]["target"] == "user:api-dora"
    assert _session_works(_sign_in(users_app, "api-dora"))


def test_changing_the_role_counts_at_once_for_open_sessions(users_app, admin_api):
    _create(admin_api, "api-rolf", "viewer")
    session = _sign_in(users_app, "api-rolf")
    assert session.get("/api/v1/me").json()["user"]["role"] == "viewer"
    r = admin_api.patch("/api/v1/users/api-rolf", json={"role": "maintainer"})
    assert r.status_code == 200 and r.json()["role"] == "maintainer"
    assert session.get("/api/v1/me").json()["user"]["role"] == "maintainer"
    event = _events(admin_api, "user.role")[0]
    assert event["target"] == "user:api-rolf" and event["detail"] == {"from": "viewer", "to": "maintainer"}
    # Both fields at once.
    r = admin_api.patch("/api/v1/users/api-rolf", json={"role": "viewer", "disabled": True})
    assert r.status_code == 200 and (r.json()["role"], r.json()["disabled"]) == ("viewer", True)


def test_patch_refuses_bad_input(admin_api):
    _create(admin_api, "api-patchy")
    cases = [({}, "nothing_to_change"), ({"role": "owner"}, "bad_role"), ({"role": "inference"}, "bad_role"),
             ({"disabled": "yes"}, "invalid_request"), ({"disabled": 1}, "invalid_request"),
             ({"name": "renamed"}, "invalid_request"), ({"role": None}, "invalid_request")]
    for body, code in cases:
        r = admin_api.patch("/api/v1/users/api-patchy", json=body)
        assert r.status_code == 400 and r.json()["code"] == code, (body, r.text)
    assert admin_api.get("/api/v1/users/api-patchy").json()["role"] == "viewer"


def test_the_last_enabled_admin_cannot_be_removed(users_app, admin_api):
    # The only admin users of this app are made here (API keys are not users).
    _create(admin_api, "api-solo", "admin")
    for method, body, doing in [("PATCH", {"disabled": True}, "disabling"),
                                ("PATCH", {"role": "maintainer"}, "making"),
                                ("PATCH", {"role": "viewer", "disabled": True}, "making"),
                                ("DELETE", None, "deleting")]:
        r = admin_api.request(method, "/api/v1/users/api-solo", json=body)
        assert r.status_code == 409 and r.json()["code"] == "last_admin", (method, body, r.text)
        assert doing in r.json()["error"] and "only enabled admin" in r.json()["error"]
    assert admin_api.get("/api/v1/users/api-solo").json() == {**admin_api.get("/api/v1/users/api-solo").json(),
                                                              "role": "admin", "disabled": False}
    # A disabled admin does not count.
    _create(admin_api, "api-second", "admin")
    assert admin_api.patch("/api/v1/users/api-second", json={"disabled": True}).status_code == 200
    assert admin_api.delete("/api/v1/users/api-solo").json()["code"] == "last_admin"
    # With a second enabled admin, the first may go; then the second is the last.
    assert admin_api.patch("/api/v1/users/api-second", json={"disabled": False}).status_code == 200
    assert admin_api.patch("/api/v1/users/api-solo", json={"role": "maintainer"}).status_code == 200
    assert admin_api.patch("/api/v1/users/api-solo", json={"role": "admin"}).status_code == 200
    assert admin_api.delete("/api/v1/users/api-solo").status_code == 204
    assert admin_api.delete("/api/v1/users/api-second").json()["code"] == "last_admin"
    assert admin_api.patch("/api/v1/users/api-second", json={"disabled": True}).json()["code"] == "last_admin"
    # Resetting the last admin's password or enabling them again is no removal.
    assert admin_api.post("/api/v1/users/api-second/password", json={"password": PASSWORD}).status_code == 200
    assert admin_api.patch("/api/v1/users/api-second", json={"disabled": False}).status_code == 200


def test_deleting_ends_the_sessions_and_the_audit_keeps_the_name(users_app, admin_api):
    _create(admin_api, "api-del", "maintainer")
    session = _sign_in(users_app, "api-del")
    assert _session_works(session)
    r = admin_api.delete("/api/v1/users/api-del")
    assert r.status_code == 204 and r.content == b""
    assert not _session_works(session)
    assert admin_api.get("/api/v1/users/api-del").json()["code"] == "user_not_found"
    assert admin_api.delete("/api/v1/users/api-del").status_code == 404
    assert _sign_in_status(users_app, "api-del", PASSWORD) == 401
    assert _events(admin_api, "user.delete")[0]["target"] == "user:api-del"
    assert any(e["target"] == "user:api-del" for e in _events(admin_api, "user.create"))
    assert any(e["actor"] == "api-del" for e in _events(admin_api, "user.login"))
    # The name is free again.
    assert _create(admin_api, "api-del")["role"] == "viewer"


def test_an_admin_resets_a_password_and_the_sessions_end(users_app, admin_api):
    _create(admin_api, "api-reset", "maintainer")
    session = _sign_in(users_app, "api-reset")
    r = admin_api.post("/api/v1/users/api-reset/password", json={"password": "brand new password 1"})
    assert r.status_code == 200 and set(r.json()) == RECORD_FIELDS and r.json()["name"] == "api-reset"
    assert not _session_works(session)
    assert _sign_in_status(users_app, "api-reset", PASSWORD) == 401
    assert _session_works(_sign_in(users_app, "api-reset", "brand new password 1"))
    event = _events(admin_api, "user.password_reset")[0]
    assert event["target"] == "user:api-reset" and event["actor"] == "test/key:users admin"
    assert "brand new" not in str(event)
    for body, code in [({"password": "short"}, "weak_password"), ({}, "invalid_request"),
                       ({"password": 123456789}, "invalid_request"),
                       ({"password": PASSWORD, "x": 1}, "invalid_request")]:
        r = admin_api.post("/api/v1/users/api-reset/password", json=body)
        assert r.status_code == 400 and r.json()["code"] == code, (body, r.text)
    assert _sign_in_status(users_app, "api-reset", "brand new password 1") == 303


def test_a_person_changes_their_own_password(users_app, admin_api):
    _create(admin_api, "api-pat", "viewer")
    other = _sign_in(users_app, "api-pat")
    anonymous = users_app.client()  # no key, no session: the current password is the proof
    r = anonymous.post("/api/v1/account/password",
                       json={"name": "api-pat", "current_password": PASSWORD, "new_password": "my own password 2"})
    assert r.status_code == 204 and r.content == b""
    assert not _session_works(other)
    assert _sign_in_status(users_app, "api-pat", PASSWORD) == 401
    assert _sign_in_status(users_app, "api-pat", "my own password 2") == 303
    event = _events(admin_api, "user.password_change")[0]
    assert event["actor"] == "api-pat" and event["target"] == "user:api-pat"
    assert "my own" not in str(event)


def test_a_password_change_refuses_bad_input(users_app, admin_api):
    _create(admin_api, "api-bad", "viewer")
    _create(admin_api, "api-off", "viewer")
    admin_api.patch("/api/v1/users/api-off", json={"disabled": True})
    anonymous = users_app.client()
    good = {"name": "api-bad", "current_password": PASSWORD, "new_password": "another password 3"}
    cases = [({**good, "new_password": "short"}, 400, "weak_password"),
             ({**good, "current_password": "wrong password"}, 401, "login_failed"),
             ({**good, "name": "api-nobody"}, 401, "login_failed"),  # no 404: names do not leak
             ({**good, "name": "api-off"}, 401, "login_failed"),  # a disabled user cannot change theirs
             ({"name": "api-bad", "new_password": "another password 3"}, 400, "invalid_request"),
             ({**good, "current_password": None}, 400, "invalid_request"),
             ({**good, "role": "admin"}, 400, "invalid_request")]
    for body, status, code in cases:
        r = anonymous.post("/api/v1/account/password", json=body)
        assert (r.status_code, r.json()["code"]) == (status, code), (body, r.text)
    assert _sign_in_status(users_app, "api-bad", PASSWORD) == 303  # unchanged
    failed = _events(admin_api, "user.password_change_failed")
    assert {e["target"] for e in failed} >= {"user:api-bad", "user:api-nobody", "user:api-off"}


@pytest.fixture(scope="module")
def brake_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessApp]:
    with InProcessApp(tmp_path_factory.mktemp("brake") / "data") as running:
        yield running


def test_wrong_current_passwords_meet_the_sign_in_brake_and_unlock_clears_it(brake_app):
    admin = brake_app.client(brake_app.create_key("brake admin", "admin"))
    _create(admin, "api-guessed", "viewer")
    anonymous = brake_app.client()
    wrong = {"name": "api-guessed", "current_password": "a wrong guess", "new_password": "taken over 1234"}
    for _ in range(5):
        assert anonymous.post("/api/v1/account/password", json=wrong).json()["code"] == "login_failed"
    assert admin.get("/api/v1/users/api-guessed").json()["locked"] is True
    # Now even the right password is refused, here and at the sign-in form: one brake for both.
    right = {**wrong, "current_password": PASSWORD}
    r = anonymous.post("/api/v1/account/password", json=right)
    assert r.status_code == 429 and r.json()["code"] == "login_rate_limited"
    assert 0 < int(r.headers["Retry-After"]) <= 300 and r.json()["details"]["scope"] == "account"
    assert _sign_in_status(brake_app, "api-guessed", PASSWORD) == 429
    # An admin's unlock clears it (the same as `flashml users unlock`).
    r = admin.post("/api/v1/users/api-guessed/unlock")
    assert r.status_code == 200 and r.json()["locked"] is False and r.json()["name"] == "api-guessed"
    unlock = [e for e in admin.get("/api/v1/audit").json() if e["action"] == "user.unlock"][0]
    assert unlock["target"] == "user:api-guessed" and unlock["actor"] == "test/key:brake admin"
    assert anonymous.post("/api/v1/account/password", json=right).status_code == 204
    assert _sign_in_status(brake_app, "api-guessed", "taken over 1234") == 303


def test_the_openapi_document_describes_the_users_api(users_app):
    doc = users_app.client().get("/schema/openapi.json").json()
    paths = doc["paths"]
    assert set(paths["/api/v1/users"]) >= {"get", "post"}
    assert set(paths["/api/v1/users/{name}"]) >= {"get", "patch", "delete"}
    assert "post" in paths["/api/v1/users/{name}/password"] and "post" in paths["/api/v1/users/{name}/unlock"]
    assert "409" in paths["/api/v1/users"]["post"]["responses"]
    assert {"201", "400", "401", "403", "409"} <= set(paths["/api/v1/users"]["post"]["responses"])
    assert {"200", "400", "401", "403", "404", "409"} <= set(paths["/api/v1/users/{name}"]["patch"]["responses"])
    assert {"204", "401", "403", "404", "409"} <= set(paths["/api/v1/users/{name}"]["delete"]["responses"])
    change = paths["/api/v1/account/password"]["post"]
    assert {"204", "400", "401", "429"} <= set(change["responses"]) and "403" not in change["responses"]
    assert "security" not in change or change["security"] in ([], [{}])
    record = doc["components"]["schemas"]["UserRecord"]
    assert set(record["properties"]) == RECORD_FIELDS and set(record["required"]) == RECORD_FIELDS
    body = change["requestBody"]["content"]["application/json"]["schema"]
    body = doc["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]] if "$ref" in body else body
    assert set(body["required"]) == {"name", "current_password", "new_password"}
