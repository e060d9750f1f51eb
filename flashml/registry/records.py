"""What the registry answers with: typed records of models, versions, aliases, serving configs and uploads.

The JSON API returns them as they are (Litestar writes them and derives the OpenAPI schemas from them), the
console renders them and the CLI prints them. Fields that only some records carry (a loaded version's
device and counters, a validating version's progress) are ``UNSET`` otherwise and left out of the JSON.
Nested documents that are free-form by nature (a validation report, a performance card) stay dicts.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from flashml.records import Record


class ServingConfig(Record):
    """A version's serving config: where it runs and how requests are batched (``flashml.runtime.batching``)."""

    device: str | None = None  # None: the server's device
    max_batch_size: int = 0  # rows per batch; 0: each request runs alone
    max_queue_delay_us: int = 0
    preferred_batch_sizes: list[int] = msgspec.field(default_factory=list)
    max_queue_size: int = 256
    default_timeout_us: int = 0
    instance_count: int = 1
    padded_inputs: dict[str, dict[str, Any]] = msgspec.field(default_factory=dict)
    padded_outputs: dict[str, int] = msgspec.field(default_factory=dict)
    batch_buckets: list[int] = msgspec.field(default_factory=list)


class BatcherStats(Record):
    """A loaded version's counters since it was loaded."""

    queued: int
    queued_rows: int
    in_flight: int
    instances: int
    requests: int
    batches: int
    rows: int
    histogram: dict[int, int]  # rows per batch -> batches that had them
    rejected: int
    timed_out: int
    failed: int
    cancelled: int
    inline_batches: int
    chained_batches: int
    wide_batches: int


class VersionRecord(Record):
    """One version of a model: its state, what validation found, its serving config and, loaded, its counters."""

    model: str
    version: int
    state: str  # validating, ready, failed or archived
    created_by: str
    created_at: float
    updated_at: float
    source_name: str | None
    size_bytes: int | None
    sha256: str | None
    signature: dict[str, Any] | None
    manifest: dict[str, Any] | None
    report: dict[str, Any] | None
    errors: list[dict[str, Any]] | None
    config: ServingConfig | None
    performance: dict[str, Any] | None
    loaded: bool
    pinned: bool
    warnings: list[str]
    progress: list[dict[str, Any]] | UnsetType = UNSET  # while validating: the steps done so far
    aliases: list[str] | UnsetType = UNSET  # in a model record: the aliases pointing at this version
    unloaded_for_memory: bool | UnsetType = UNSET
    device: str | UnsetType = UNSET  # loaded only, like the fields below
    providers: list[str] | UnsetType = UNSET
    last_used_at: float | None | UnsetType = UNSET
    memory_bytes: int | None | UnsetType = UNSET
    host_memory_bytes: int | None | UnsetType = UNSET
    gpu_memory_bytes: int | None | UnsetType = UNSET
    stats: BatcherStats | UnsetType = UNSET


class ConfigView(Record):
    """A version's serving config with its performance card, and, loaded, where it runs and its counters."""

    model: str
    version: int
    config: ServingConfig | None
    performance: dict[str, Any] | None
    warnings: list[str]
    device: str | UnsetType = UNSET
    providers: list[str] | UnsetType = UNSET
    stats: BatcherStats | UnsetType = UNSET


class VersionSummary(Record):
    """A version in the list of models."""

    version: int
    state: str
    warnings: int  # how many the version's report holds


class ServingInfo(Record):
    """Which version answers a call that names none: the ``production`` alias's target when it is set (one version
    or a split), else the newest ready version. Inference picks from the same resolution
    (``AliasService.serving``), so what a page says serves is what answers."""

    version: int | None  # the one version that answers; None for a split
    versions: dict[str, int]  # version number -> percent of such calls ({"3": 100} for one version)
    alias: str | None  # "production" when the alias decides; None when the newest ready version does


class ModelSummary(Record):
    name: str
    created_by: str
    created_at: float
    latest_ready: int | None
    serving: ServingInfo | None  # None: no version is ready, a call without a version is refused
    versions: list[VersionSummary]


class AliasGuard(Record):
    """When a split's canary is rolled back automatically."""

    max_error_rate: float | None = None
    max_p99_ms: float | None = None
    window_s: float = 60.0
    min_requests: int = 20


class AliasShadow(Record):
    """A candidate version that also runs a share of the requests, its answers compared, never returned."""

    version: int
    percent: float


class AliasRecord(Record):
    """A named pointer at one version, or a weighted split between versions."""

    model: str
    alias: str
    version: int | None  # the one version, or None for a split
    versions: dict[str, int]  # version number -> weight in percent
    guard: dict[str, Any] | None
    shadow: dict[str, Any] | None
    previous: dict[str, Any] | None  # the target before the last change (what a rollback goes back to)
    updated_by: str
    updated_at: float


class ResponseCacheView(Record):
    enabled: bool
    max_entries: int
    max_bytes: int
    entries: int
    bytes: int
    hits: int
    misses: int
    hit_rate: float | None


class PredictionLogView(Record):
    """A model's prediction log (``flashml.monitoring``): its settings (the server's limits filled in) and what
    it keeps now, every version together."""

    enabled: bool
    sample_rate: float
    mode: str  # full | summary
    redact_inputs: bool
    retention_s: float
    max_bytes: int
    limit_retention_s: float  # the settings prediction_log_retention_s and prediction_log_max_bytes
    limit_max_bytes: int
    records: int  # predictions in its files
    bytes: int
    oldest_at: float | None
    newest_at: float | None
    written: int  # since the server started
    dropped: int  # since the server started: offered while the queue was full


class DeviceMemory(Record):
    device: str
    budget_bytes: int | None
    used_bytes: int
    loaded: int


class MemoryView(Record):
    devices: list[DeviceMemory]
    unloaded: int  # versions unloaded to make room


class ModelRecord(Record):
    """A model with every version, its aliases, its response cache, the devices' memory and its prediction log."""

    name: str
    created_by: str
    created_at: float
    latest_ready: int | None
    serving: ServingInfo | None
    versions: list[VersionRecord]
    aliases: list[AliasRecord]
    response_cache: ResponseCacheView
    memory: MemoryView
    prediction_log: PredictionLogView | UnsetType = UNSET  # filled by the API and the console, not the registry


class UploadRecord(Record):
    """A direct upload: the bytes go to the store (or FlashML's own upload URL), then complete publishes them."""

    id: str
    model: str
    filename: str
    size_bytes: int
    part_bytes: int | None
    sha256: str | None
    state: str
    version: int | None
    error: dict[str, Any] | None
    created_at: float
    expires_at: float


class UploadPart(Record):
    part: int
    url: str
    offset: int
    size: int


class UploadTicket(UploadRecord, kw_only=True):
    """A direct upload just started: where to send the bytes (one URL, or one per part), then complete it."""

    url: str | None
    parts: list[UploadPart] | None
    method: str
    storage: str  # local or s3
    complete_url: str
