"""Tables. Times are UNIX seconds (float) in UTC; JSON columns hold plain dicts and lists."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

users = Table(
    "users", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("role", String(16), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("disabled", Integer, nullable=False, default=0),
    Column("unlocked_at", Float, nullable=True),  # an admin's unlock: failed sign-ins before it do not count
)

api_keys = Table(
    "api_keys", metadata,
    Column("id", Integer, primary_key=True),
    Column("key_id", String(32), nullable=False, unique=True),  # public part of the token, for lookup
    Column("secret_hash", String(64), nullable=False),  # sha256 hex of the whole token
    Column("name", String(128), nullable=False),
    Column("role", String(16), nullable=False),
    Column("models", JSON, nullable=True),  # None: every model
    Column("created_by", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("last_used_at", Float, nullable=True),
    Column("revoked_at", Float, nullable=True),
    # Limits (flashml.auth.limits). None: unlimited; burst None: max(1, ceil(rate)).
    Column("rate_limit_per_s", Float, nullable=True),
    Column("burst", Integer, nullable=True),
    Column("daily_quota", Integer, nullable=True),
    Column("weight", Integer, nullable=False, default=1, server_default="1"),  # share under contention
)

key_usage = Table(
    "key_usage", metadata,  # admitted inference requests per key and UTC day, for the daily quota
    Column("key_pk", Integer, primary_key=True),
    Column("day", String(10), primary_key=True),  # YYYY-MM-DD, UTC
    Column("count", Integer, nullable=False, default=0),
)

setup_tokens = Table(
    "setup_tokens", metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("used_at", Float, nullable=True),
)

sessions = Table(
    "sessions", metadata,  # console sign-ins; the cookie holds a random token, this table only its hash
    Column("id", String(64), primary_key=True),  # sha256 hex of the cookie token
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),  # slides forward while the session is used
    Column("last_seen_at", Float, nullable=False),
    Column("csrf_token", String(64), nullable=False),
)

models = Table(
    "models", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("created_by", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("response_cache", JSON, nullable=True),  # {"enabled": true, "max_entries": 1000}; None: off
    # {"enabled", "sample_rate", "mode", "redact_inputs", "retention_s", "max_bytes"}; None: off (monitoring/)
    Column("prediction_log", JSON, nullable=True),
    Column("drift", JSON, nullable=True),  # drift monitoring (monitoring/drift_config.py); None: off
)

versions = Table(
    "versions", metadata,
    Column("id", Integer, primary_key=True),
    Column("model_id", Integer, ForeignKey("models.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("state", String(16), nullable=False),  # validating | ready | failed | archived
    Column("created_by", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("source_name", String(255), nullable=False),
    Column("size_bytes", Integer, nullable=False, default=0),
    Column("sha256", String(64), nullable=True),
    Column("signature", JSON, nullable=True),
    Column("manifest", JSON, nullable=True),
    Column("report", JSON, nullable=True),  # validation steps, checks, warm-up figures
    Column("errors", JSON, nullable=True),  # [{code, error}] when failed
    Column("config", JSON, nullable=True),  # runtime config: device, instances, batching (PATCH-able)
    Column("perf", JSON, nullable=True),  # performance card: latency/throughput per batch size (auto-tune)
    Column("pinned", Boolean, nullable=False, default=False, server_default="0"),  # never unloaded for memory
    UniqueConstraint("model_id", "version"),
)

audit = Table(
    "audit", metadata,
    Column("id", Integer, primary_key=True),
    Column("at", Float, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(255), nullable=False, default=""),
    Column("detail", JSON, nullable=True),
)

aliases = Table(
    "aliases", metadata,  # named pointers at versions (production, staging, ...); resolved in memory
    Column("id", Integer, primary_key=True),
    Column("model_id", Integer, ForeignKey("models.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("versions", JSON, nullable=False),  # {"3": 100}, or a split {"3": 95, "4": 5}; weights sum to 100
    Column("guard", JSON, nullable=True),  # a split's automatic rollback thresholds (services/canary_guard.py)
    Column("shadow", JSON, nullable=True),  # {"version": 5, "percent": 20}: mirrored in the background
    Column("previous", JSON, nullable=True),  # the target before the last change (a PUT body): rollback's
    Column("updated_by", String(128), nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("model_id", "name"),
)

upload_sessions = Table(
    "upload_sessions", metadata,  # direct uploads: the bytes go to the store, then /complete publishes them
    Column("id", String(32), primary_key=True),  # random, public: names the upload in URLs
    Column("token_hash", String(64), nullable=False),  # sha256 of the secret in FlashML's own upload URL
    Column("model", String(128), nullable=False),
    Column("filename", String(255), nullable=False),
    Column("size_bytes", Integer, nullable=False),
    Column("sha256", String(64), nullable=True),  # what the client says the bytes hash to (checked at complete)
    Column("user", String(64), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("object_key", String(255), nullable=False),  # incoming/<id> in the artifact store
    Column("multipart_id", String(255), nullable=True),  # the store's multipart upload, for big files
    Column("part_bytes", Integer, nullable=True),  # size of every part but the last
    Column("state", String(16), nullable=False),  # pending | completing | done | failed | expired
    Column("version", Integer, nullable=True),  # the version it became (done, or failed validation)
    Column("error", JSON, nullable=True),  # {code, error} when failed
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

datasets = Table(
    "datasets", metadata,  # uploaded datasets for batch jobs; the bytes live in the store under datasets/<id>/
    Column("id", String(32), primary_key=True),  # random hex, public
    Column("name", String(255), nullable=False),  # the uploaded file's name
    Column("format", String(8), nullable=False),  # csv | jsonl | npy | npz | parquet
    Column("size_bytes", Integer, nullable=False),
    Column("rows", Integer, nullable=False),
    Column("columns", JSON, nullable=False),  # [{"name", "shape"?}] as read at upload
    Column("object_key", String(255), nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("created_at", Float, nullable=False),
)

job_schedules = Table(
    "job_schedules", metadata,  # a job spec that APScheduler runs again and again (cron or interval)
    Column("id", Integer, primary_key=True),
    Column("spec", JSON, nullable=False),  # model, version, dataset, output_format, chunk_rows, on_bad_row, mapping
    Column("cron", String(128), nullable=True),
    Column("interval_s", Float, nullable=True),
    Column("timezone", String(64), nullable=False, default="UTC"),
    Column("created_by", String(128), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("last_run_at", Float, nullable=True),
    Column("last_job_id", Integer, nullable=True),
)

jobs = Table(
    "jobs", metadata,  # one run of a batch scoring job over a dataset
    Column("id", Integer, primary_key=True),
    Column("model", String(128), nullable=False),
    Column("version", String(64), nullable=True),  # as asked: a number, an alias, or None (the served version)
    Column("resolved_version", Integer, nullable=True),  # the version number that scores it (set at start)
    Column("dataset_id", String(32), nullable=False),
    Column("output_format", String(8), nullable=False),  # csv | jsonl | npy | npz | parquet
    Column("chunk_rows", Integer, nullable=False),
    Column("on_bad_row", String(8), nullable=False),  # skip | fail
    Column("mapping", JSON, nullable=False),  # {input name: column name}
    Column("schedule_id", Integer, nullable=True),
    Column("state", String(16), nullable=False),  # queued | running | paused | succeeded | failed | cancelled
    Column("rows_total", Integer, nullable=False),
    Column("rows_done", Integer, nullable=False, default=0),  # rows of finished chunks (bad ones included)
    Column("rows_bad", Integer, nullable=False, default=0),
    Column("error", JSON, nullable=True),  # {code, error} when failed
    Column("result_key", String(255), nullable=True),
    Column("result_bytes", Integer, nullable=True),
    Column("created_by", String(128), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float, nullable=True),  # this run's start (rows/s and ETA count from it)
    Column("run_rows_base", Integer, nullable=False, default=0),  # rows_done when this run started
    Column("finished_at", Float, nullable=True),
    Column("updated_at", Float, nullable=False),
    # Several nodes: the node running the job and how long its claim holds; the node renews it while it works,
    # and any node requeues a job whose lease ran out (its node was killed). None while not running.
    Column("node", String(200), nullable=True),
    Column("lease_until", Float, nullable=True),
)

job_chunks = Table(
    "job_chunks", metadata,  # checkpoints: a row here means the chunk's object is complete in the store
    Column("job_id", Integer, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("chunk", Integer, primary_key=True),
    Column("rows", Integer, nullable=False),
    Column("rows_bad", Integer, nullable=False),
    Column("object_key", String(255), nullable=False),
    Column("done_at", Float, nullable=False),
)

job_log = Table(
    "job_log", metadata,  # a job's errors and events, with the dataset row number where there is one
    Column("id", Integer, primary_key=True),
    Column("job_id", Integer, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("at", Float, nullable=False),
    Column("level", String(8), nullable=False),  # info | error
    Column("row", Integer, nullable=True),
    Column("message", Text, nullable=False),
)

drift_scores = Table(
    "drift_scores", metadata,  # one row per feature and round of the drift check (monitoring/drift_service.py)
    Column("id", Integer, primary_key=True),
    Column("model", String(128), nullable=False),
    Column("version", Integer, nullable=False),
    # "x[0]" (column 0 of input x), "output" (the predictions): named after the model's tensors, of any length
    Column("feature", Text, nullable=False),
    Column("kind", String(16), nullable=False),  # numeric (PSI, Kolmogorov-Smirnov) | classes (PSI, chi-square)
    Column("score", Float, nullable=False),  # PSI of the current window against the reference
    Column("statistic", Float, nullable=True),  # the two-sample test's statistic (KS D, chi-square)
    Column("p_value", Float, nullable=True),
    Column("at", Float, nullable=False),
    Index("drift_scores_series", "model", "version", "at"),
)

housekeeping_runs = Table(
    "housekeeping_runs", metadata,  # the last run of each housekeeping task on the scheduler
    Column("task", String(32), primary_key=True),
    Column("last_run_at", Float, nullable=False),
    Column("duration_s", Float, nullable=False),
    Column("removed", Integer, nullable=False, default=0),
    Column("error", Text, nullable=True),
)

# ---- several nodes on one database (flashml/cluster) ----

changes = Table(
    "changes", metadata,  # the change feed: every node reads what other nodes changed (db/changes.py kinds)
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("node", String(200), nullable=False),  # the node that made the change
    Column("kind", String(40), nullable=False),
    Column("model", String(200), nullable=True),
    Column("number", Integer, nullable=True),
    Column("name", String(200), nullable=True),  # an alias or a user name
    Column("key_id", Integer, nullable=True),
    Column("address", String(64), nullable=True),  # the client address of a sign-in
    Index("changes_at", "at"),
)

nodes = Table(
    "nodes", metadata,  # the nodes sharing this database, each beating its heartbeat every sync_interval_s
    Column("node_id", String(200), primary_key=True),
    Column("address", String(200), nullable=False),  # host:port it serves on
    Column("started_at", Float, nullable=False),
    Column("seen_at", Float, nullable=False),
)

leases = Table(
    "leases", metadata,  # named leases (the leader of background work): held by one node until `until`
    Column("name", String(100), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("until", Float, nullable=False),
)

cluster_secrets = Table(
    "cluster_secrets", metadata,  # random keys every node must share (the sign-in form's CSRF key)
    Column("name", String(100), primary_key=True),
    Column("value", String(200), nullable=False),
)
