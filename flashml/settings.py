"""Every FlashML setting, declared once with its default and a help line.

A setting comes from, strongest first: a CLI flag, a ``FLASHML_<NAME>`` environment variable, the TOML
file named by ``--config`` / ``FLASHML_CONFIG``, then the default below. ``flashml settings`` prints the
table that docs/settings.md carries (python -m docs.generate); a test fails when the two disagree.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import socket
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_PREFIX = "FLASHML_"
RESOLVED_ENV = "FLASHML_RESOLVED_SETTINGS"  # how `flashml serve` hands settings to the Granian worker

MiB = 1024 * 1024
GiB = 1024 * MiB


def _s(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Settings:
    host: str = _s("127.0.0.1", "Address to listen on. Use 0.0.0.0 to serve the LAN.")
    port: int = _s(8000, "TCP port to listen on.")
    data_dir: Path = _s(Path("flashml-data"), "Folder for all state: the SQLite database and the model store.")
    database_url: str = _s("", "The metadata database: empty for the embedded SQLite file in data_dir (one node), or "
                               "postgresql+asyncpg://USER@HOST:5432/DB for PostgreSQL, which several nodes share. Keep "
                               "the password out of it: asyncpg reads PGPASSWORD and ~/.pgpass.")
    node_id: str = _s("", "This node's name among several sharing database_url (job leases, the leader of background "
                          "work, the nodes list); empty: HOST-NAME:PORT. Keep it the same across restarts.")
    sync_interval_s: float = _s(1.0, "How often this node reads the shared change feed (new versions, aliases, revoked "
                                     "keys, ...), beats its heartbeat and renews its leases.")
    public_url: str = _s("", "Base URL printed in links (setup link); defaults to http://HOST:PORT.")
    tls_certificate: str = _s("", "A PEM certificate file: serve HTTPS directly (with tls_key); cookies get Secure.")
    tls_key: str = _s("", "The PEM private key file of tls_certificate.")
    trusted_proxies: tuple[str, ...] = _s((), "Proxy addresses or networks (10.0.0.0/8) whose X-Forwarded-Proto and "
                                              "X-Forwarded-For are believed (Secure cookies, client address).")
    http_threads: int = _s(0, "Granian's I/O threads, which read request bodies; 0: one per four cores, 1 to 4 "
                            "(images at a GPU's rate need more than one; on a small box more take cores from models).")
    max_connections: int = _s(4096, "Open client connections served at once; more wait in the listen backlog. Above "
                               "Granian's default 1024 so that idle connections cannot lock clients out (each costs "
                               "some KiB); the open-files limit is raised to fit it.")
    header_timeout_s: float = _s(15.0, "Longest a connection may take to send a request's headers, and longest a "
                                 "kept-alive connection may sit idle: then it is closed (idle clients hold nothing).")
    body_timeout_s: float = _s(30.0, "Longest wait for the next piece of a request body; a stalled upload is answered "
                               "408 and its connection freed.")
    device: str = _s("auto", "Where models run: auto (CUDA when it works, else CPU), cpu, or cuda / cuda:N.")
    intra_op_threads: int = _s(0, "ONNX Runtime threads per execution instance; 0: the cores split among instances.")
    inline_run_us: int = _s(500, "A batch expected to take less CPU time than this runs on the event loop, not a "
                             "worker thread (the hand-off costs more than a tiny model's run); 0: never.")
    tensorrt: bool = _s(False, "On CUDA devices, try ONNX Runtime's TensorRT provider first (engines cached).")
    tensorrt_fp16: bool = _s(False, "Let TensorRT build FP16 engines (faster, slightly less exact).")
    autotune: bool = _s(True, "At publication, measure batch sizes and pick batching settings for the budget.")
    latency_budget_ms: float = _s(50.0, "Latency a batch may add at most; auto-tune picks batch size and delay for it.")
    max_queue_size: int = _s(256, "Requests that may wait per model version; more are refused with 503.")
    max_upload_bytes: int = _s(4 * GiB, "Largest model upload accepted, in bytes (413 above it).")
    max_request_bytes: int = _s(64 * MiB, "Largest inference request body, in bytes (413 above it).")
    max_request_strings: int = _s(1_000_000, "Most BYTES (string) elements one inference request may carry (413 "
                                  "above it): each is a Python object, and 15.7 million cost 9.6 s of CPU to read.")
    predict_max_items: int = _s(64, "Most images or texts one predict call may carry (413 above it).")
    predict_max_image_pixels: int = _s(40_000_000, "Largest image predict decodes, in pixels (413 above it).")
    bundle_max_members: int = _s(1000, "Most files a bundle archive may hold.")
    bundle_max_bytes: int = _s(16 * GiB, "Most bytes a bundle may unpack to.")
    bundle_max_ratio: float = _s(200.0, "Highest unpacked-to-packed size ratio of a bundle (zip bombs).")
    allowed_op_domains: tuple[str, ...] = _s(
        ("", "ai.onnx", "ai.onnx.ml", "com.microsoft"),
        "Operator domains a model may use; anything else is refused (no custom-op libraries).",
    )
    validation_timeout_s: float = _s(300.0, "Longest a model's load and warm-up may take before it is killed.")
    validation_memory_bytes: int = _s(8 * GiB, "Most memory (RSS) the validation subprocess may use.")
    upload_wait_s: float = _s(60.0, "How long an upload waits for validation before answering 202 to poll.")
    in_use_window_s: float = _s(300.0, "A version that answered a request this recently is in use: delete needs force.")
    memory_budget: str = _s("", "Memory loaded versions may hold per device: 8GiB, cpu=8GiB,cuda:0=20GiB, or empty.")
    load_timeout_s: float = _s(30.0, "How long a request waits for a version unloaded for memory to load (then 504).")
    canary_check_interval_s: float = _s(5.0, "How often guarded canary splits are checked against their thresholds.")
    response_cache_max_entries: int = _s(100000, "The most answers one model's response cache may be set to keep.")
    response_cache_max_bytes: int = _s(64 * MiB, "The most bytes of answers one model's response cache keeps.")
    shadow_max_concurrency: int = _s(4, "Shadow requests running at once; a mirrored request beyond it is dropped.")
    storage: str = _s("local", "Where artifacts live: local (under data_dir) or s3 (MinIO or any S3-compatible store).")
    s3_endpoint: str = _s("", "The S3 store's host:port, e.g. minio.lan:9000 (storage = s3).")
    s3_bucket: str = _s("flashml", "The bucket for FlashML's artifacts; created when missing.")
    s3_prefix: str = _s("", "A folder inside the bucket for every FlashML object, e.g. prod/ (empty: the root).")
    s3_secure: bool = _s(True, "Talk to the S3 store over TLS (https); --no-s3-secure for plain http.")
    s3_region: str = _s("us-east-1", "The bucket's region (signing; lets presigning work without a network call).")
    s3_credentials_file: str = _s("", "A TOML file with access_key and secret_key; else FLASHML_S3_ACCESS_KEY / "
                                      "FLASHML_S3_SECRET_KEY or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.")
    storage_timeout_s: float = _s(5.0, "Connect timeout to the store: past it, storage calls fail fast with 503.")
    storage_deadline_s: float = _s(60.0, "Longest a storage request may go with nothing moving (connect, each read "
                                         "and write, retries): past it a hung store fails the call with 503. A big "
                                         "transfer that keeps moving is never cut off; 60 s outlasts a busy store's "
                                         "pauses.")
    upload_part_bytes: int = _s(64 * MiB, "Direct uploads over this size go in parts of this size (5 MiB at least).")
    upload_session_ttl_s: float = _s(3600.0, "How long a direct-upload session (and its upload URL) stays valid.")
    housekeeping_interval_s: float = _s(60.0, "How often housekeeping runs: expired uploads, old job outputs, the "
                                              "model cache.")
    max_dataset_bytes: int = _s(1 * GiB, "Largest dataset upload for batch jobs, in bytes (413 above it).")
    dataset_zip_max_files: int = _s(100_000, "Most image files a zip-of-images dataset may hold.")
    dataset_zip_max_bytes: int = _s(16 * GiB, "Most bytes a zip-of-images dataset may unpack to (zip bombs).")
    job_chunk_rows: int = _s(1000, "Rows per chunk of a batch job unless the job says (each chunk is a checkpoint).")
    job_online_share: float = _s(0.2, "While online requests arrive, a batch job keeps the model busy at most this "
                                      "share of the time (1: no limit).")
    job_storage_wait_s: float = _s(1800.0, "How long a batch job waits (retrying with backoff) for a store that "
                                           "cannot be reached before it fails: 30 min outlasts a store restart.")
    job_retention_s: float = _s(7 * 86400.0, "How long a finished job's result file is kept before housekeeping "
                                             "removes it.")
    setup_token_ttl_s: float = _s(86400.0, "How long the first-run setup link stays valid.")
    log_level: str = _s("info", "Log level: debug, info, warning, error. The scheduler's routine runs are logged "
                                "only at debug.")
    log_format: str = _s("text", "Log lines as text, or json: one JSON object per line (the access log included), "
                                 "for a log collector.")
    access_log: bool = _s(True, "One line per request on the flashml.access logger: method, path, status, model, "
                                "version, key name, duration, bytes and request id (never a secret or a payload).")
    metrics_access: str = _s("loopback", "Who may read GET /metrics (Prometheus): loopback (anyone on this machine, "
                                         "a viewer key from elsewhere), key (always a viewer key), or open (anyone).")
    prediction_log_max_bytes: int = _s(1 * GiB, "Most bytes of logged predictions one model may keep; a model's own "
                                                "cap may be lower. The oldest are removed first.")
    prediction_log_retention_s: float = _s(30 * 86400.0, "Longest a logged prediction is kept; a model's own "
                                                         "retention may be shorter.")
    drift_interval_s: float = _s(300.0, "How often the drift scores of monitored versions are computed (in the "
                                        "background, never on the request path).")

    @property
    def db_path(self) -> Path:
        return self.data_dir / "flashml.db"

    @property
    def node_name(self) -> str:
        """node_id, or this host's name and port: distinct for nodes on one host, stable across restarts."""
        return self.node_id or f"{socket.gethostname()}:{self.port}"

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        scheme = "https" if self.tls_certificate else "http"
        return f"{scheme}://{host}:{self.port}"

    def to_json(self) -> str:
        return json.dumps({f.name: _dump(getattr(self, f.name)) for f in dataclasses.fields(self)})

    @classmethod
    def from_json(cls, text: str) -> Settings:
        return _build(json.loads(text))


def _dump(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value


FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


class SettingsError(ValueError):
    """A setting with a bad value or an unknown name."""


def _coerce(name: str, value: Any) -> Any:
    f = FIELDS[name]
    default = f.default
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                return value.strip().lower() in ("1", "true", "yes", "on")
            return bool(value)
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, Path):
            return Path(value).expanduser()
        if isinstance(default, tuple):
            if isinstance(value, str):
                return tuple(v.strip() for v in value.split(",")) if value.strip() else ("",)
            return tuple(str(v) for v in value)
        return str(value)
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"setting {name}: cannot use {value!r} ({exc})") from None


def _build(values: Mapping[str, Any]) -> Settings:
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise SettingsError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    settings = Settings(**{k: _coerce(k, v) for k, v in values.items()})
    _check_storage(settings)
    _check_database(settings)
    _check_tls(settings)
    try:
        from flashml.runtime.devices import parse_device

        parse_device(settings.device)
    except ValueError as exc:
        raise SettingsError(f"setting device: {exc}") from None
    try:
        from flashml.runtime.memory_budget import parse_budget

        parse_budget(settings.memory_budget)
    except ValueError as exc:
        raise SettingsError(f"setting memory_budget: {exc}") from None
    _check_ranges(settings)
    return settings


# Numbers that 0 or less would break (a zero interval, a zero budget, an empty upload limit); where 0 means
# something (none, off, unbounded, every batch in a worker thread) the setting may be 0. Floats must be finite.
_ABOVE_ZERO = ("max_request_strings", "max_connections", "header_timeout_s", "body_timeout_s",
               "latency_budget_ms", "max_upload_bytes", "max_request_bytes", "predict_max_items",
               "predict_max_image_pixels", "bundle_max_members", "bundle_max_bytes", "bundle_max_ratio",
               "validation_timeout_s", "validation_memory_bytes", "canary_check_interval_s", "storage_timeout_s",
               "storage_deadline_s", "job_storage_wait_s", "sync_interval_s",
               "upload_part_bytes", "upload_session_ttl_s", "housekeeping_interval_s", "max_dataset_bytes",
               "dataset_zip_max_files", "dataset_zip_max_bytes", "job_chunk_rows", "job_retention_s",
               "setup_token_ttl_s", "prediction_log_max_bytes", "prediction_log_retention_s", "drift_interval_s")
_ZERO_OR_MORE = ("http_threads", "intra_op_threads", "inline_run_us", "max_queue_size", "upload_wait_s",
                 "in_use_window_s", "load_timeout_s", "response_cache_max_entries", "response_cache_max_bytes",
                 "shadow_max_concurrency")


def _check_ranges(s: Settings) -> None:
    for name, f in FIELDS.items():
        value = getattr(s, name)
        if isinstance(f.default, float) and not math.isfinite(value):
            raise SettingsError(f"setting {name}: must be a finite number, not {value}")
        if name in _ABOVE_ZERO and not value > 0:
            raise SettingsError(f"setting {name}: must be above 0, not {value}")
        if name in _ZERO_OR_MORE and not value >= 0:
            raise SettingsError(f"setting {name}: must be 0 or more, not {value}")
    if not 1 <= s.port <= 65535:
        raise SettingsError(f"setting port: must be a TCP port from 1 to 65535, not {s.port}")
    for name, allowed in (("log_format", ("text", "json")), ("metrics_access", ("loopback", "key", "open"))):
        if getattr(s, name) not in allowed:
            raise SettingsError(f"setting {name}: {getattr(s, name)!r} is not one of {', '.join(allowed)}")
    if not 0 < s.job_online_share <= 1:
        raise SettingsError(f"setting job_online_share: must be above 0 and at most 1, not {s.job_online_share}")


def _check_tls(s: Settings) -> None:
    if bool(s.tls_certificate) != bool(s.tls_key):
        raise SettingsError("settings tls_certificate and tls_key go together: give both files or neither")
    for name in ("tls_certificate", "tls_key"):
        path = getattr(s, name)
        if path and not Path(path).expanduser().is_file():
            raise SettingsError(f"setting {name}: {path} is not a readable file")


def _check_database(s: Settings) -> None:
    # The URL may hold a password: the messages name its scheme only.
    url = s.database_url
    if not url or url.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite:///")):
        return
    scheme = url.split("://", 1)[0] if "://" in url else "(none)"
    if scheme in ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2"):
        raise SettingsError(f"setting database_url: write postgresql+asyncpg://... instead of {scheme}://... "
                            "(FlashML talks to PostgreSQL through asyncpg)")
    raise SettingsError(f"setting database_url: scheme {scheme!r} is not postgresql+asyncpg:// or "
                        "sqlite+aiosqlite:/// (empty: the SQLite file in data_dir)")


def _check_storage(s: Settings) -> None:
    if s.storage not in ("local", "s3"):
        raise SettingsError(f"setting storage: {s.storage!r} is not local or s3")
    if s.storage == "s3" and not s.s3_endpoint:
        raise SettingsError("setting storage = s3 needs s3_endpoint (host:port of the MinIO / S3 server)")


def load_settings(cli: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None,
                  config_file: Path | None = None) -> Settings:
    """Merge defaults, the TOML file, FLASHML_* variables and CLI values (None means not given)."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    config_file = config_file or (Path(env["FLASHML_CONFIG"]) if env.get("FLASHML_CONFIG") else None)
    if config_file is not None:
        try:
            values.update(tomllib.loads(Path(config_file).read_text()))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"cannot read config file {config_file}: {exc}") from None
    for name in FIELDS:
        key = ENV_PREFIX + name.upper()
        if key in env:
            values[name] = env[key]
    for name, value in (cli or {}).items():
        if value is not None:
            values[name] = value
    return _build(values)


def settings_table() -> str:
    """The Markdown table of every setting, as docs/settings.md carries it."""
    rows = ["| Setting | CLI flag (`serve`) | Environment variable | Default | Meaning |", "|---|---|---|---|---|"]
    for f in dataclasses.fields(Settings):
        default = _dump(f.default)
        if isinstance(default, list):
            default = ",".join(default)
        flag = "--" + f.name.replace("_", "-")
        if isinstance(f.default, bool):
            flag = f"{flag}` / `--no-{flag[2:]}"
        rows.append(f"| `{f.name}` | `{flag}` | `{ENV_PREFIX}{f.name.upper()}` | `{default}` | {f.metadata['help']} |")
    return "\n".join(rows)
