"""Client: every management action of a FlashML server, one method each, answers as typed records."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from flashml.auth.records import AuditEvent, Identity, KeyRecord, NewKeyRecord, UserRecord
from flashml.client.connection import resolve_connection
from flashml.client.errors import ClientError
from flashml.client.records import MetricsReport
from flashml.client.transport import Progress, Transport, _no_progress, file_sha256
from flashml.jobs.records import DatasetRecord, JobCreated, JobRecord, LogEntry, ScheduleRecord
from flashml.monitoring.drift_records import DriftCheck, DriftConfigView, DriftReport
from flashml.registry.records import (
    AliasRecord,
    ConfigView,
    ModelRecord,
    ModelSummary,
    PredictionLogView,
    ResponseCacheView,
    VersionRecord,
)


def _q(part: str) -> str:
    return quote(part, safe="")


def _given(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


class Client:
    """A FlashML server's management API.

    ``Client("http://127.0.0.1:8000", key)``, or ``Client.from_environment()`` to read the same flags' variables and
    profiles as the ``flashml`` command. Use it in a ``with`` block (or call ``close()``). Every failed call raises
    ClientError; methods that move files take ``progress(stage, done_bytes, total_bytes)``.
    """

    def __init__(self, server: str = "http://127.0.0.1:8000", key: str | None = None, *, timeout: float = 30.0,
                 verify: bool | str = True) -> None:
        self.server = server.rstrip("/")
        self._t = Transport(self.server, key, timeout, verify)

    @classmethod
    def from_environment(cls, profile: str | None = None, **kwargs: Any) -> Client:
        """A client for FLASHML_SERVER / FLASHML_KEY, else the profile (``profile``, FLASHML_PROFILE or [default])."""
        conn = resolve_connection(profile=profile)
        return cls(conn.server, conn.key, **kwargs)

    def close(self) -> None:
        self._t.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- identity, audit, metrics ----

    def whoami(self) -> Identity:
        """The key (or session) this client calls with: its name, role, models and limits."""
        return self._t.call("GET", "/api/v1/me", Identity)

    def audit(self, limit: int = 100) -> list[AuditEvent]:
        """The newest ``limit`` audit events, newest first (viewers and maintainers see model events only)."""
        return self._t.call("GET", "/api/v1/audit", list[AuditEvent], params={"limit": limit})

    def metrics(self, model: str | None = None) -> MetricsReport:
        """Requests, errors and latency of the last hour (of one model when given), and what runs where."""
        return self._t.call("GET", "/api/v1/metrics", MetricsReport, params=_given(model=model))

    # ---- API keys ----

    def create_key(self, name: str, role: str = "inference", *, models: list[str] | None = None,
                   rate_limit_per_s: float | None = None, burst: int | None = None, daily_quota: int | None = None,
                   weight: int | None = None) -> NewKeyRecord:
        """A new key; its ``token`` (the secret) is in this answer only."""
        body = _given(name=name, role=role, models=models, rate_limit_per_s=rate_limit_per_s, burst=burst,
                      daily_quota=daily_quota, weight=weight)
        return self._t.call("POST", "/api/v1/keys", NewKeyRecord, json=body)

    def list_keys(self) -> list[KeyRecord]:
        return self._t.call("GET", "/api/v1/keys", list[KeyRecord])

    def get_key(self, key_id: int) -> KeyRecord:
        return self._t.call("GET", f"/api/v1/keys/{int(key_id)}", KeyRecord)

    def set_key_limits(self, key_id: int, **limits: float | int | None) -> KeyRecord:
        """Change ``rate_limit_per_s``, ``burst``, ``daily_quota`` or ``weight``; a None value clears that limit."""
        return self._t.call("PATCH", f"/api/v1/keys/{int(key_id)}", KeyRecord, json=limits)

    def revoke_key(self, key_id: int) -> KeyRecord:
        return self._t.call("DELETE", f"/api/v1/keys/{int(key_id)}", KeyRecord)

    # ---- console users ----

    def list_users(self) -> list[UserRecord]:
        return self._t.call("GET", "/api/v1/users", list[UserRecord])

    def get_user(self, name: str) -> UserRecord:
        return self._t.call("GET", f"/api/v1/users/{_q(name)}", UserRecord)

    def create_user(self, name: str, password: str, role: str = "viewer") -> UserRecord:
        return self._t.call("POST", "/api/v1/users", UserRecord, json={"name": name, "password": password,
                                                                       "role": role})

    def set_user_disabled(self, name: str, disabled: bool) -> UserRecord:
        """Disable a user (their sessions end at once) or enable them again."""
        return self._t.call("PATCH", f"/api/v1/users/{_q(name)}", UserRecord, json={"disabled": disabled})

    def set_user_role(self, name: str, role: str) -> UserRecord:
        return self._t.call("PATCH", f"/api/v1/users/{_q(name)}", UserRecord, json={"role": role})

    def delete_user(self, name: str) -> None:
        self._t.call("DELETE", f"/api/v1/users/{_q(name)}")

    def reset_password(self, name: str, password: str) -> UserRecord:
        """An admin sets a user's password; the user's sessions end."""
        return self._t.call("POST", f"/api/v1/users/{_q(name)}/password", UserRecord, json={"password": password})

    def unlock_user(self, name: str) -> UserRecord:
        """Clear a user's failed sign-ins."""
        return self._t.call("POST", f"/api/v1/users/{_q(name)}/unlock", UserRecord)

    def change_password(self, name: str, current_password: str, new_password: str) -> None:
        """A person changes their own password, proven by the current one (no API key needed)."""
        self._t.call("POST", "/api/v1/account/password", json={"name": name, "current_password": current_password,
                                                                "new_password": new_password})

    # ---- models ----

    def list_models(self) -> list[ModelSummary]:
        return self._t.call("GET", "/api/v1/models", list[ModelSummary])

    def get_model(self, model: str) -> ModelRecord:
        """A model with its versions, aliases, response cache, memory and prediction log."""
        return self._t.call("GET", f"/api/v1/models/{_q(model)}", ModelRecord)

    def delete_model(self, model: str, *, force: bool = False) -> None:
        """Delete a model and all its versions (``force``: even while aliases or jobs use them)."""
        self._t.call("DELETE", f"/api/v1/models/{_q(model)}", params={"force": "true"} if force else None)

    def push_model(self, file: str | Path, model: str, progress: Progress = _no_progress,
                   wait: bool = True, poll_s: float = 1.0) -> VersionRecord:
        """Upload an .onnx file or a .tar.gz/.zip bundle as MODEL's next version (a direct upload: in parts when
        big, straight to S3 when the server stores there) and, with ``wait``, poll until it is validated."""
        path = Path(file)
        size = path.stat().st_size
        digest = file_sha256(path, progress)
        up = self._t.call("POST", "/api/v1/uploads", dict[str, Any],
                          json={"model": model, "filename": path.name, "size": size, "sha256": digest})
        pieces = up["parts"] or [{"part": None, "url": up["url"], "offset": 0, "size": size}]
        done = [0]
        progress("uploading", 0, size)
        for piece in pieces:
            self._t.stream_file("PUT", piece["url"], path, piece["offset"], piece["size"], progress, done, size,
                                auth=False)
        try:
            record = self._t.call("POST", up["complete_url"], VersionRecord)
        except ClientError as exc:  # a version that failed validation: its record says why
            if exc.status == 422 and isinstance(exc.details, dict) and "version" in exc.details:
                import msgspec

                return msgspec.convert(exc.details["version"], VersionRecord)
            raise
        while wait and record.state == "validating":
            time.sleep(poll_s)
            record = self.get_version(model, record.version)
        return record

    def set_response_cache(self, model: str, enabled: bool | None = None,
                           max_entries: int | None = None) -> ResponseCacheView:
        return self._patch_model(model, "response_cache", ResponseCacheView,
                                 _given(enabled=enabled, max_entries=max_entries))

    def set_prediction_log(self, model: str, **change: Any) -> PredictionLogView:
        """Change the prediction log: ``enabled``, ``sample_rate``, ``mode``, ``redact_inputs``, ``retention_s``,
        ``max_bytes``."""
        return self._patch_model(model, "prediction_log", PredictionLogView, change)

    def set_drift(self, model: str, **change: Any) -> DriftConfigView:
        """Change drift monitoring: ``enabled``, ``reference``, ``reference_dataset``, ``reference_size``,
        ``window_size``, ``window_s``, ``min_predictions``, ``threshold``, ``rollback``."""
        return self._patch_model(model, "drift", DriftConfigView, change)

    def _patch_model(self, model: str, part: str, type: Any, change: dict[str, Any]) -> Any:
        return self._t.call("PATCH", f"/api/v1/models/{_q(model)}", type, json={part: change})

    def drift(self, model: str, version: int | None = None) -> DriftReport:
        """A version's drift scores over time (default: the newest version with scores)."""
        return self._t.call("GET", f"/api/v1/models/{_q(model)}/drift", DriftReport, params=_given(version=version))

    def check_drift(self, model: str) -> DriftCheck:
        return self._t.call("POST", f"/api/v1/models/{_q(model)}/drift/check", DriftCheck)

    def export_predictions(self, model: str, dest: str | Path, *, version: int | None = None, format: str = "jsonl",
                           since: float | None = None, until: float | None = None,
                           progress: Progress = _no_progress) -> Path:
        """Download MODEL's logged predictions (JSON Lines or Parquet), oldest first, to ``dest``."""
        params = _given(format=format, version=version, since=since, until=until)
        return self._t.download(f"/api/v1/models/{_q(model)}/predictions", Path(dest), progress, params)

    # ---- versions ----

    def list_versions(self, model: str) -> list[VersionRecord]:
        return self._t.call("GET", f"/api/v1/models/{_q(model)}/versions", list[VersionRecord])

    def get_version(self, model: str, version: int) -> VersionRecord:
        return self._t.call("GET", self._version(model, version), VersionRecord)

    def delete_version(self, model: str, version: int, *, force: bool = False) -> None:
        self._t.call("DELETE", self._version(model, version), params={"force": "true"} if force else None)

    def archive_version(self, model: str, version: int) -> VersionRecord:
        """Stop serving a version (it stays stored; restore_version serves it again)."""
        return self._t.call("POST", self._version(model, version) + "/archive", VersionRecord)

    def restore_version(self, model: str, version: int) -> VersionRecord:
        return self._t.call("POST", self._version(model, version) + "/restore", VersionRecord)

    def pin_version(self, model: str, version: int, pinned: bool = True) -> VersionRecord:
        """Pin a version (never unloaded to make room) or unpin it."""
        return self._t.call("PATCH", self._version(model, version), VersionRecord, json={"pinned": pinned})

    def get_config(self, model: str, version: int) -> ConfigView:
        """A version's serving config, performance card and live counters."""
        return self._t.call("GET", self._version(model, version) + "/config", ConfigView)

    def set_config(self, model: str, version: int, **changes: Any) -> ConfigView:
        """Change a version's serving config live (``max_batch_size``, ``device``, ``instance_count``, ...)."""
        return self._t.call("PATCH", self._version(model, version) + "/config", ConfigView, json=changes)

    @staticmethod
    def _version(model: str, version: int) -> str:
        return f"/api/v1/models/{_q(model)}/versions/{int(version)}"

    # ---- aliases ----

    def list_aliases(self, model: str) -> list[AliasRecord]:
        return self._t.call("GET", f"/api/v1/models/{_q(model)}/aliases", list[AliasRecord])

    def set_alias(self, model: str, alias: str, version: int | None = None, *, versions: dict[str, int] | None = None,
                  guard: dict[str, Any] | None = None, shadow: dict[str, Any] | None = None) -> AliasRecord:
        """Point ALIAS at one ready ``version``, or split it (``versions={"3": 95, "4": 5}``), with an optional
        canary ``guard`` and ``shadow`` ({"version": 5, "percent": 20})."""
        body = _given(version=version, versions=versions, guard=guard, shadow=shadow)
        return self._t.call("PUT", f"/api/v1/models/{_q(model)}/aliases/{_q(alias)}", AliasRecord, json=body)

    def delete_alias(self, model: str, alias: str) -> None:
        self._t.call("DELETE", f"/api/v1/models/{_q(model)}/aliases/{_q(alias)}")

    def rollback_alias(self, model: str, alias: str) -> AliasRecord:
        return self._t.call("POST", f"/api/v1/models/{_q(model)}/aliases/{_q(alias)}/rollback", AliasRecord)

    def alias_shadow(self, model: str, alias: str) -> dict[str, Any]:
        """How an alias's shadow version's answers compare with the served ones."""
        return self._t.call("GET", f"/api/v1/models/{_q(model)}/aliases/{_q(alias)}/shadow", dict[str, Any])

    # ---- datasets ----

    def push_dataset(self, file: str | Path, progress: Progress = _no_progress) -> DatasetRecord:
        """Upload a .csv, .jsonl, .npy, .npz or .parquet file, or a .zip of images, for batch jobs."""
        path = Path(file)
        size = path.stat().st_size
        resp = self._t.stream_file("POST", "/api/v1/datasets", path, 0, size, progress, [0], size, auth=True,
                                   params={"filename": path.name})
        import msgspec

        return msgspec.json.decode(resp.content, type=DatasetRecord)

    def list_datasets(self) -> list[DatasetRecord]:
        return self._t.call("GET", "/api/v1/datasets", list[DatasetRecord])

    def get_dataset(self, dataset_id: str) -> DatasetRecord:
        return self._t.call("GET", f"/api/v1/datasets/{_q(dataset_id)}", DatasetRecord)

    def delete_dataset(self, dataset_id: str) -> None:
        self._t.call("DELETE", f"/api/v1/datasets/{_q(dataset_id)}")

    # ---- jobs and schedules ----

    def run_job(self, model: str, dataset: str, *, version: str | int | None = None, output_format: str = "csv",
                chunk_rows: int | None = None, on_bad_row: str = "skip", mapping: dict[str, str] | None = None,
                cron: str | None = None, interval_s: float | None = None, timezone: str = "UTC") -> JobCreated:
        """Score a dataset now (the answer's ``job``), or on a schedule with ``cron`` or ``interval_s`` (its
        ``schedule``)."""
        body = _given(model=model, dataset=dataset, version=None if version is None else str(version),
                      output_format=output_format, chunk_rows=chunk_rows, on_bad_row=on_bad_row, mapping=mapping)
        if cron or interval_s:
            body["schedule"] = _given(cron=cron, interval_s=interval_s, timezone=timezone)
        return self._t.call("POST", "/api/v1/jobs", JobCreated, json=body)

    def list_jobs(self) -> list[JobRecord]:
        return self._t.call("GET", "/api/v1/jobs", list[JobRecord])

    def get_job(self, job_id: int) -> JobRecord:
        return self._t.call("GET", f"/api/v1/jobs/{int(job_id)}", JobRecord)

    def job_log(self, job_id: int) -> list[LogEntry]:
        """A job's log: bad rows with their row numbers, and events."""
        return self._t.call("GET", f"/api/v1/jobs/{int(job_id)}/log", list[LogEntry])

    def wait_job(self, job_id: int, poll_s: float = 1.0,
                 on_progress: Callable[[JobRecord], None] | None = None) -> JobRecord:
        """Poll a job until it is no longer queued or running; its last record."""
        job = self.get_job(job_id)
        while job.state in ("queued", "running"):
            time.sleep(poll_s)
            job = self.get_job(job_id)
            if on_progress:
                on_progress(job)
        return job

    def download_result(self, job_id: int, dest: str | Path, progress: Progress = _no_progress) -> Path:
        """Save a succeeded job's result file to ``dest``."""
        return self._t.download(f"/api/v1/jobs/{int(job_id)}/result", Path(dest), progress)

    def cancel_job(self, job_id: int) -> JobRecord:
        return self._control(job_id, "cancel")

    def pause_job(self, job_id: int) -> JobRecord:
        return self._control(job_id, "pause")

    def resume_job(self, job_id: int) -> JobRecord:
        return self._control(job_id, "resume")

    def retry_job(self, job_id: int) -> JobRecord:
        return self._control(job_id, "retry")

    def _control(self, job_id: int, action: str) -> JobRecord:
        return self._t.call("POST", f"/api/v1/jobs/{int(job_id)}/{action}", JobRecord)

    def list_schedules(self) -> list[ScheduleRecord]:
        return self._t.call("GET", "/api/v1/schedules", list[ScheduleRecord])

    def delete_schedule(self, schedule_id: int) -> None:
        self._t.call("DELETE", f"/api/v1/schedules/{int(schedule_id)}")
