"""Every management command group of the CLI against the real server over HTTP, as a person or a script types
it: the connection from flags, FLASHML_SERVER/FLASHML_KEY or a profile file; a table by default and the API's
records with --json; and the bad inputs (no server there, a refused key, an unknown profile, no key at all)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import onnx_models
from tests.helpers.jobs import csv_dataset
from tests.helpers.server_process import free_port

pytestmark = pytest.mark.server

CONNECTION_VARS = ("FLASHML_SERVER", "FLASHML_KEY", "FLASHML_URL", "FLASHML_API_KEY", "FLASHML_PROFILE",
                   "FLASHML_PROFILES", "FLASHML_DATA_DIR")


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None, input: str | None = None,
        check: bool = True) -> subprocess.CompletedProcess:
    """`flashml ARGS` in ``cwd`` (a folder with no data directory) with only the connection variables given."""
    base = {k: v for k, v in os.environ.items() if k not in CONNECTION_VARS}
    base["FLASHML_PROFILES"] = str(cwd / "no-profiles.toml")
    proc = subprocess.run([sys.executable, "-m", "flashml", *args], cwd=cwd, env={**base, **(env or {})},
                          input=input, capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"flashml {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def header(out: str) -> list[str]:
    return out.splitlines()[0].split()


def rows(out: str) -> list[list[str]]:
    return [line.split() for line in out.splitlines()[1:]]


@pytest.fixture()
def env(server, admin_key) -> dict[str, str]:
    return {"FLASHML_SERVER": server.url, "FLASHML_KEY": admin_key}


def test_keys_remotely_from_the_environment(server, env, tmp_path):
    made = json.loads(cli("keys", "create", "--name", "remote cli", "--role", "viewer", "--rate-limit", "5",
                          "--json", cwd=tmp_path, env=env).stdout)
    assert made["role"] == "viewer" and made["token"].startswith("fml_") and made["rate_limit_per_s"] == 5
    key_id = str(made["id"])
    listed = cli("keys", "list", cwd=tmp_path, env=env)
    assert header(listed.stdout)[:5] == ["ID", "NAME", "ROLE", "MODELS", "STATE"]
    assert "Server: " + server.url in listed.stderr  # says where it acted: no data directory here
    assert any(r[0] == key_id and r[1:3] == ["remote", "cli"] and r[3:7] == ["viewer", "all", "models", "active"]
               for r in rows(listed.stdout)), listed.stdout
    as_json = json.loads(cli("keys", "list", "--json", cwd=tmp_path, env=env).stdout)
    assert made["id"] in {k["id"] for k in as_json} and all("token" not in k for k in as_json)
    shown = json.loads(cli("keys", "show", key_id, "--json", cwd=tmp_path, env=env).stdout)
    assert shown["name"] == "remote cli" and shown["used_today"] == 0
    limited = cli("keys", "limit", key_id, "--daily-quota", "100", "--rate-limit", "none", cwd=tmp_path, env=env)
    assert limited.stdout.strip() == f"Key {key_id} (remote cli): 0/100 today."
    whoami = cli("whoami", cwd=tmp_path, env={"FLASHML_SERVER": server.url, "FLASHML_KEY": made["token"]})
    assert '"remote cli": viewer, all models' in whoami.stdout
    assert cli("keys", "revoke", key_id, cwd=tmp_path, env=env).stdout.strip() == f"Revoked key {key_id}."
    refused = cli("whoami", cwd=tmp_path, env={"FLASHML_SERVER": server.url, "FLASHML_KEY": made["token"]},
                  check=False)
    assert refused.returncode == 1 and "HTTP 401" in refused.stderr
    assert "refused the API key (from FLASHML_KEY)" in refused.stderr
    audit = json.loads(cli("audit", "--action", "key.*", "--target", f"key:{key_id}", "--json", cwd=tmp_path,
                           env=env).stdout)
    assert [e["action"] for e in audit] == ["key.revoke", "key.limits", "key.create"]
    assert all(e["actor"].endswith("key:e2e admin") for e in audit)


def test_a_maintainer_key_cannot_make_an_admin_key(server, env, tmp_path):
    made = json.loads(cli("keys", "create", "--name", "remote maint", "--role", "maintainer", "--json",
                          cwd=tmp_path, env=env).stdout)
    proc = cli("keys", "create", "--name", "x", "--role", "admin", cwd=tmp_path, check=False,
               env={"FLASHML_SERVER": server.url, "FLASHML_KEY": made["token"]})
    assert proc.returncode == 1 and "HTTP 403" in proc.stderr


def test_users_remotely_with_a_profile(server, admin_key, api, tmp_path):
    profiles = tmp_path / "profiles.toml"
    profiles.write_text(f'[ops]\nserver = "{server.url}"\nkey = "{admin_key}"\n')
    profiles.chmod(0o600)
    env = {"FLASHML_PROFILES": str(profiles)}
    made = cli("users", "create", "remote-ann", "--role", "maintainer", "--password-stdin", "--profile", "ops",
               cwd=tmp_path, env=env, input="first-password-1\n")
    assert made.stdout.strip() == "Created maintainer remote-ann." and "warning" not in made.stderr
    env["FLASHML_PROFILE"] = "ops"
    listed = cli("users", "list", cwd=tmp_path, env=env).stdout
    assert header(listed) == ["NAME", "ROLE", "STATE", "CREATED", "(UTC)"]
    assert ["remote-ann", "maintainer", "active"] in [r[:3] for r in rows(listed)]
    assert json.loads(cli("users", "show", "remote-ann", "--json", cwd=tmp_path, env=env).stdout) | {
        "created_at": 0} == {"name": "remote-ann", "role": "maintainer", "created_at": 0, "disabled": False,
                             "locked": False}
    assert cli("users", "disable", "remote-ann", cwd=tmp_path, env=env).stdout.strip() == "Disabled remote-ann."
    assert api.get("/api/v1/users/remote-ann").json()["disabled"] is True
    assert json.loads(cli("users", "enable", "remote-ann", "--json", cwd=tmp_path, env=env).stdout)["disabled"] is False
    reset = cli("users", "reset-password", "remote-ann", "--password-stdin", cwd=tmp_path, env=env,
                input="second-password-2\n")
    assert reset.stdout.strip() == "Set a new password for remote-ann."

    # passwd needs no key: the current password proves who it is. A wrong one is refused with the server's code.
    keyless = {"FLASHML_SERVER": server.url}
    wrong = cli("users", "passwd", "remote-ann", "--password-stdin", cwd=tmp_path, env=keyless,
                input="not-the-password\nthird-password-3\n", check=False)
    assert wrong.returncode == 1 and "HTTP 401" in wrong.stderr and "login_failed" in wrong.stderr
    done = cli("users", "passwd", "remote-ann", "--password-stdin", cwd=tmp_path, env=keyless,
               input="second-password-2\nthird-password-3\n")
    assert done.stdout.strip() == "Changed the password of remote-ann."
    with httpx.Client(base_url=server.url) as browser:
        browser.get("/login")
        signed_in = browser.post("/login", data={"name": "remote-ann", "password": "third-password-3",
                                                 "csrf_token": browser.cookies["flashml_csrf"]})
        assert signed_in.status_code in (302, 303), signed_in.text
    unlocked = json.loads(cli("users", "unlock", "remote-ann", "--json", cwd=tmp_path, env=env).stdout)
    assert unlocked["name"] == "remote-ann" and unlocked["locked"] is False
    assert cli("users", "delete", "remote-ann", cwd=tmp_path, env=env).stdout.strip() == "Deleted remote-ann."
    missing = cli("users", "show", "remote-ann", cwd=tmp_path, env=env, check=False)
    assert missing.returncode == 1 and "HTTP 404" in missing.stderr and "user_not_found" in missing.stderr
    actions = [e["action"] for e in json.loads(cli("audit", "--target", "user:remote-ann", "--json", cwd=tmp_path,
                                                   env=env).stdout)]
    assert actions[:2] == ["user.delete", "user.unlock"]  # the sign-in above comes between
    assert {"user.password_change", "user.password_reset", "user.enable", "user.disable", "user.create"} <= set(actions)


def test_models_and_versions_remotely_as_tables_and_json(server, env, tmp_path):
    model = "remote-cli-add"
    path = onnx_models.add_model(tmp_path / "add.onnx")
    pushed = cli("models", "push", str(path), "--name", model, cwd=tmp_path, env=env)
    assert pushed.stdout.startswith(f"{model} v1 is ready.") and "Uploading add.onnx" in pushed.stderr
    second = json.loads(cli("models", "push", str(path), "--name", model, "--json", cwd=tmp_path, env=env).stdout)
    assert second["version"] == 2 and second["state"] == "ready"
    listed = cli("models", "list", cwd=tmp_path, env=env).stdout
    assert header(listed) == ["MODEL", "SERVING", "VERSIONS"]
    assert [model, "v2", "v1:ready,", "v2:ready"] in rows(listed)
    assert model in {m["name"] for m in json.loads(cli("models", "list", "--json", cwd=tmp_path, env=env).stdout)}
    shown = cli("models", "show", model, cwd=tmp_path, env=env).stdout
    assert "a call without a version gets v2 100% (newest ready)" in shown
    assert json.loads(cli("models", "show", model, "--json", cwd=tmp_path, env=env).stdout)["name"] == model

    versions = cli("versions", "list", model, cwd=tmp_path, env=env).stdout
    assert header(versions)[:3] == ["VERSION", "STATE", "LOADED"]
    assert [r[:2] for r in rows(versions)] == [["v1", "ready"], ["v2", "ready"]]
    one = cli("versions", "show", model, "1", cwd=tmp_path, env=env).stdout
    assert one.startswith(f"{model} v1: ready") and "FP32" in one
    assert cli("versions", "archive", model, "2", cwd=tmp_path, env=env).stdout.strip() == f"{model} v2: archived"
    assert json.loads(cli("versions", "show", model, "2", "--json", cwd=tmp_path, env=env).stdout)["state"] == \
        "archived"
    assert cli("versions", "restore", model, "2", "--json", cwd=tmp_path, env=env).stdout.count('"ready"') == 1
    assert cli("versions", "delete", model, "1", cwd=tmp_path, env=env).stdout.strip() == f"Deleted {model} v1."
    assert [r[0] for r in rows(cli("versions", "list", model, cwd=tmp_path, env=env).stdout)] == ["v2"]
    pinned = json.loads(cli("models", "pin", model, "2", "--json", cwd=tmp_path, env=env).stdout)
    assert pinned["pinned"] is True
    cli("models", "alias", "set", model, "prod", "2", cwd=tmp_path, env=env)
    aliases = json.loads(cli("models", "alias", "list", model, "--json", cwd=tmp_path, env=env).stdout)
    assert [(a["alias"], a["version"]) for a in aliases] == [("prod", 2)]
    gone = cli("versions", "show", model, "9", cwd=tmp_path, env=env, check=False)
    assert gone.returncode == 1 and "version_not_found" in gone.stderr
    assert cli("models", "delete", model, "--force", cwd=tmp_path, env=env).stdout.strip() == \
        f"Deleted model {model}."
    assert model not in cli("models", "list", cwd=tmp_path, env=env).stdout


def test_datasets_jobs_and_schedules_remotely(server, env, adder, tmp_path):
    data = tmp_path / "remote.csv"
    data.write_bytes(csv_dataset(6))
    ds = json.loads(cli("datasets", "push", str(data), "--json", cwd=tmp_path, env=env).stdout)
    assert ds["rows"] == 6
    listed = cli("datasets", "list", cwd=tmp_path, env=env).stdout
    assert header(listed)[:4] == ["ID", "NAME", "FORMAT", "ROWS"] and [ds["id"], "remote.csv", "csv", "6"] in [
        r[:4] for r in rows(listed)]
    shown = cli("datasets", "show", ds["id"], cwd=tmp_path, env=env).stdout
    assert shown.startswith(f"{ds['id']}: remote.csv, csv, 6 rows") and "COLUMN" in shown
    assert json.loads(cli("datasets", "show", ds["id"], "--json", cwd=tmp_path, env=env).stdout)["id"] == ds["id"]

    job = json.loads(cli("jobs", "run", "--model", adder, "--version", "1", "--dataset", ds["id"], "--wait",
                         "--json", cwd=tmp_path, env=env).stdout)
    assert job["state"] == "succeeded" and job["rows_done"] == 6
    jobs = cli("jobs", "list", cwd=tmp_path, env=env).stdout
    assert header(jobs)[:3] == ["ID", "STATE", "MODEL"] and [str(job["id"]), "succeeded"] in [r[:2] for r in
                                                                                              rows(jobs)]
    assert job["id"] in {j["id"] for j in json.loads(cli("jobs", "list", "--json", cwd=tmp_path, env=env).stdout)}
    log = cli("jobs", "log", str(job["id"]), cwd=tmp_path, env=env)
    if log.stdout:  # a clean job may have logged nothing: then a sentence on stderr and nothing on stdout
        assert header(log.stdout)[:4] == ["AT", "(UTC)", "LEVEL", "ROW"]
    else:
        assert f"job {job['id']} has logged nothing" in log.stderr
    assert isinstance(json.loads(cli("jobs", "log", str(job["id"]), "--json", cwd=tmp_path, env=env).stdout), list)
    both = json.loads(cli("jobs", "show", str(job["id"]), "--json", cwd=tmp_path, env=env).stdout)
    assert both["job"]["id"] == job["id"] and isinstance(both["log"], list)
    saved = cli("jobs", "result", str(job["id"]), "-o", str(tmp_path / "r.csv"), cwd=tmp_path, env=env)
    assert "result saved to" in saved.stdout and (tmp_path / "r.csv").read_text().count("\n") == 7
    refused = cli("jobs", "cancel", str(job["id"]), cwd=tmp_path, env=env, check=False)
    assert refused.returncode == 1 and "bad_job_state" in refused.stderr

    sched = json.loads(cli("jobs", "run", "--model", adder, "--dataset", ds["id"], "--cron", "0 3 * * 1-5",
                           "--json", cwd=tmp_path, env=env).stdout)["schedule"]
    table = cli("schedules", "list", cwd=tmp_path, env=env).stdout
    assert header(table)[:4] == ["ID", "MODEL", "DATASET", "WHEN"]
    assert any(r[0] == str(sched["id"]) and r[1] == adder for r in rows(table)), table
    assert sched["id"] in {s["id"] for s in json.loads(cli("schedules", "list", "--json", cwd=tmp_path,
                                                           env=env).stdout)}
    assert cli("schedules", "delete", str(sched["id"]), cwd=tmp_path, env=env).stdout.strip() == \
        f"Deleted schedule {sched['id']}."
    assert sched["id"] not in {s["id"] for s in json.loads(cli("schedules", "list", "--json", cwd=tmp_path,
                                                               env=env).stdout)}
    cli("datasets", "delete", ds["id"], cwd=tmp_path, env=env)


def test_metrics_audit_and_whoami(server, env, api, adder, tmp_path):
    assert api.post(f"/v2/models/{adder}/infer", json={"inputs": [
        {"name": "a", "shape": [1, 1], "datatype": "FP32", "data": [1]},
        {"name": "b", "shape": [1, 1], "datatype": "FP32", "data": [2]}]}).status_code in (200, 400)
    summary = cli("metrics", cwd=tmp_path, env=env).stdout
    assert summary.startswith("all models, last ") and "requests" in summary and "p99" in summary
    report = json.loads(cli("metrics", "--model", adder, "--json", cwd=tmp_path, env=env).stdout)
    assert report["model"] == adder and report["summary"]["requests"] >= 1
    audit = cli("audit", "--limit", "5", cwd=tmp_path, env=env).stdout
    assert header(audit) == ["AT", "(UTC)", "ACTOR", "ACTION", "TARGET", "DETAIL"]
    assert len(audit.splitlines()) <= 6 and "\u2026" not in audit  # piped: every value whole (cut on a terminal)
    events = json.loads(cli("audit", "--since", str(time.time() + 3600), "--json", cwd=tmp_path, env=env).stdout)
    assert events == []
    me = json.loads(cli("whoami", "--json", cwd=tmp_path, env=env).stdout)
    assert me["key"]["name"] == "e2e admin" and me["key"]["role"] == "admin"


def test_bad_connections_say_what_to_fix(server, admin_key, tmp_path):
    nowhere = f"http://127.0.0.1:{free_port()}"
    down = cli("models", "list", "--server", nowhere, "--key", admin_key, cwd=tmp_path, check=False)
    assert down.returncode == 1 and "Traceback" not in down.stderr
    assert f"cannot reach {nowhere}" in down.stderr and "Is the server running there?" in down.stderr
    for group in (["keys", "list"], ["users", "list"], ["whoami"], ["audit"]):
        bad = cli(*group, "--server", server.url, "--key", "fml_000000000000_nope", cwd=tmp_path, check=False)
        assert bad.returncode == 1 and "HTTP 401" in bad.stderr and "refused the API key (from flag)" in bad.stderr
    unknown = cli("models", "list", "--profile", "staging", cwd=tmp_path, check=False)
    assert unknown.returncode == 2 and "no profile [staging]" in unknown.stderr
    unknown = cli("keys", "list", cwd=tmp_path, env={"FLASHML_PROFILE": "staging"}, check=False)
    assert unknown.returncode == 2 and "no profile [staging]" in unknown.stderr
    keyless = cli("jobs", "list", "--server", server.url, cwd=tmp_path, check=False)
    assert keyless.returncode == 2 and "No API key" in keyless.stderr
    keyless = cli("keys", "list", "--server", server.url, cwd=tmp_path, check=False)
    assert keyless.returncode == 2 and "No API key" in keyless.stderr and "--data-dir" in keyless.stderr


def test_a_profile_file_others_can_read_is_warned_about_and_still_used(server, admin_key, tmp_path):
    profiles = tmp_path / "profiles.toml"
    profiles.write_text(f'[default]\nserver = "{server.url}"\nkey = "{admin_key}"\n')
    profiles.chmod(0o644)
    proc = cli("whoami", cwd=tmp_path, env={"FLASHML_PROFILES": str(profiles)})
    assert '"e2e admin": admin' in proc.stdout
    assert f"warning: {profiles} may be read by other users" in proc.stderr and "chmod 600" in proc.stderr


def test_flags_beat_the_environment_and_older_names_still_work(server, admin_key, tmp_path):
    wrong = {"FLASHML_SERVER": f"http://127.0.0.1:{free_port()}", "FLASHML_KEY": "fml_wrong"}
    proc = cli("whoami", "--server", server.url, "--key", admin_key, cwd=tmp_path, env=wrong)
    assert '"e2e admin"' in proc.stdout
    old = cli("whoami", cwd=tmp_path, env={"FLASHML_URL": server.url, "FLASHML_API_KEY": admin_key})
    assert '"e2e admin"' in old.stdout
    assert '"e2e admin"' in cli("whoami", "--url", server.url, "--key", admin_key, cwd=tmp_path).stdout
    # FLASHML_URL never named a server for keys and users: they stay on the (missing) local data directory.
    local = cli("keys", "list", cwd=tmp_path, env={"FLASHML_URL": server.url, "FLASHML_API_KEY": admin_key},
                check=False)
    assert local.returncode == 1 and "holds no FlashML database" in local.stderr


def test_users_and_keys_in_process_on_a_data_directory(tmp_path):
    data = ["--data-dir", str(tmp_path / "data")]
    cli("users", "create", "boss", "--admin", "--password-stdin", *data, "--create", cwd=tmp_path,
        input="boss-password-1\n")
    cli("users", "create", "dee", "--password-stdin", *data, cwd=tmp_path, input="dee-password-1\n")
    # --data-dir wins over a named server: the bootstrap works whatever the environment says.
    env = {"FLASHML_SERVER": f"http://127.0.0.1:{free_port()}", "FLASHML_KEY": "fml_x"}
    listed = cli("users", "list", *data, cwd=tmp_path, env=env).stdout
    assert [r[:3] for r in rows(listed)] == [["boss", "admin", "active"], ["dee", "viewer", "active"]]
    assert cli("users", "disable", "dee", *data, cwd=tmp_path).stdout.strip() == "Disabled dee."
    assert json.loads(cli("users", "show", "dee", "--json", *data, cwd=tmp_path).stdout)["disabled"] is True
    last = cli("users", "disable", "boss", *data, cwd=tmp_path, check=False)
    assert last.returncode == 1 and "only enabled admin" in last.stderr
    cli("users", "reset-password", "dee", "--password-stdin", *data, cwd=tmp_path, input="dee-password-2\n")
    wrong = cli("users", "passwd", "dee", "--password-stdin", *data, cwd=tmp_path, input="nope\nx-password-99\n",
                check=False)
    assert wrong.returncode == 1 and "Wrong user name or password" in wrong.stderr
    cli("users", "enable", "dee", *data, cwd=tmp_path)  # a disabled user cannot prove their password
    cli("users", "passwd", "dee", "--password-stdin", *data, cwd=tmp_path, input="dee-password-2\ndee-password-3\n")
    assert cli("users", "unlock", "dee", *data, cwd=tmp_path).stdout.strip() == "Unlocked dee."
    cli("users", "delete", "dee", *data, cwd=tmp_path)
    assert [r[0] for r in rows(cli("users", "list", *data, cwd=tmp_path).stdout)] == ["boss"]
    key = json.loads(cli("keys", "create", "--name", "local", "--json", *data, cwd=tmp_path).stdout)
    assert key["token"].startswith("fml_")
    assert json.loads(cli("keys", "show", str(key["id"]), "--json", *data, cwd=tmp_path).stdout)["name"] == "local"
    unknown = cli("users", "show", "nobody", *data, cwd=tmp_path, check=False)
    assert unknown.returncode == 1 and "nobody" in unknown.stderr
