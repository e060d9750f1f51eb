"""The JSON bodies the registry takes: what to point an alias at, a serving-config change, a pin, a model's
response cache, a direct upload to start.

Each is decoded strictly by ``flashml.records.parse_body`` (the API from the request, the console and the CLI
from their forms), so a field of the wrong type is refused with the code and sentence its ``hints`` give, and
the OpenAPI document shows these fields as they are. Rules between fields (weights that sum to 100, a guard only
on a split, a batch size the model can take) stay with the services that apply them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import UNSET, Meta, UnsetType

from flashml.records import Body

VersionNumber = Annotated[int, Meta(ge=1, description="a version number")]
VersionKey = Annotated[str, Meta(pattern="^[0-9]+$", description="a version number, as JSON keys are strings")]
Weight = Annotated[int, Meta(ge=1, le=100, description="percent of the requests")]
GUARD_SHAPE = ('"guard" is an object with max_error_rate (0 to 1), max_p99_ms, max_drift (a PSI above 0), window_s '
               "(1 to 3600) and min_requests (1 or more).")
SHADOW_SHAPE = ('"shadow" is {"version": 5, "percent": 20}: the candidate version and the share of requests '
                "(above 0, up to 100) it also runs.")


class GuardBody(Body):
    """A split only: roll the canary back to the stable (heaviest) version when it crosses a threshold."""

    max_error_rate: Annotated[float, Meta(ge=0, le=1, description="share of failed requests, 0 to 1")] | None = None
    max_p99_ms: Annotated[float, Meta(gt=0, description="p99 latency in milliseconds")] | None = None
    max_drift: Annotated[float, Meta(gt=0, description="the canary's highest drift score (PSI); judged by the drift "
                                                       "check, when the model's drift monitoring allows rollback")] \
        | None = None
    window_s: Annotated[float, Meta(ge=1, le=3600, description="seconds of traffic the check looks at")] = 60.0
    min_requests: Annotated[int, Meta(ge=1, description="requests the canary answers before it is judged")] = 20


class ShadowBody(Body):
    """Also run this share of the alias's requests on a candidate version, in the background, and compare."""

    version: VersionNumber
    percent: Annotated[float, Meta(gt=0, le=100, description="percent of the requests, above 0")]


class AliasUpdate(Body):
    """PUT .../aliases/{alias}: ``{"version": 3}``, or a split ``{"versions": {"3": 95, "4": 5}}`` whose weights
    sum to 100; every version must be ready."""

    code = "bad_alias_body"
    hints = {
        "versions[]": ("bad_alias_weights", "The weight of each version is a whole number from 1 to 100."),
        "guard": ("bad_alias_guard", GUARD_SHAPE),
        "guard.max_error_rate": ("bad_alias_guard", "max_error_rate is a share of requests from 0 to 1."),
        "guard.max_p99_ms": ("bad_alias_guard", "max_p99_ms is a number of milliseconds above 0."),
        "guard.max_drift": ("bad_alias_guard", "max_drift is a drift score (PSI) above 0, e.g. 0.25."),
        "guard.window_s": ("bad_alias_guard", "window_s is from 1 to 3600 seconds."),
        "guard.min_requests": ("bad_alias_guard", "min_requests is a whole number of at least 1."),
        "shadow": ("bad_alias_shadow", SHADOW_SHAPE),
        "shadow.version": ("bad_alias_shadow", 'The shadow "version" must be a version number (1 or more).'),
        "shadow.percent": ("bad_alias_shadow", 'The shadow "percent" is above 0 and up to 100.'),
    }

    version: VersionNumber | UnsetType = UNSET
    versions: dict[VersionKey, Weight] | UnsetType = UNSET
    guard: GuardBody | None = None
    shadow: ShadowBody | None = None


class PaddedInput(Body):
    axis: Annotated[int, Meta(ge=0)]
    value: float = 0


class ConfigChange(Body):
    """PATCH .../versions/{v}/config: any of these fields; the others keep their values. ``device``,
    ``instance_count`` and ``batch_buckets`` reload the version's sessions (requests in flight finish first);
    the rest apply at once."""

    code = "bad_batching_config"

    device: Annotated[str | None, Meta(description="cpu, auto, cuda or cuda:N; null: the server's")] | UnsetType \
        = UNSET
    instance_count: int | UnsetType = UNSET
    max_batch_size: Annotated[int, Meta(description="rows per batch; 0: never batch")] | UnsetType = UNSET
    max_queue_delay_us: int | UnsetType = UNSET
    preferred_batch_sizes: list[int] | UnsetType = UNSET
    batch_buckets: Annotated[list[int], Meta(description="fixed batch sizes, the largest max_batch_size: a "
                                                        "session per size")] | UnsetType = UNSET
    max_queue_size: int | UnsetType = UNSET
    default_timeout_us: int | UnsetType = UNSET
    padded_inputs: Annotated[dict[str, PaddedInput], Meta(
        description='{"input_ids": {"axis": 1, "value": 0}}')] | UnsetType = UNSET
    padded_outputs: Annotated[dict[str, int], Meta(description='{"logits": 1}')] | UnsetType = UNSET

    def changes(self) -> dict[str, Any]:
        """The fields sent, as the flat config stores them."""
        return self.to_dict()


class PinChange(Body):
    """PATCH .../versions/{v}: a pinned version is never unloaded to make room for others."""

    code = "bad_version_patch"
    hints = {"pinned": ("bad_version_patch", 'Send {"pinned": true} or {"pinned": false}.')}

    pinned: bool


class ResponseCacheChange(Body):
    enabled: bool
    max_entries: Annotated[int, Meta(ge=1, description="answers kept (at most response_cache_max_entries)")] \
        | UnsetType = UNSET


class DriftChange(Body):
    """A model's drift monitoring (``monitoring/drift_config.py``); fields left out keep their values."""

    enabled: bool | UnsetType = UNSET
    reference: Annotated[str, Meta(pattern="^(first|dataset)$", description=(
        "first: the first reference_size logged predictions of each version; dataset: reference_dataset's rows"))] \
        | UnsetType = UNSET
    reference_dataset: Annotated[str | None, Meta(description="a dataset id (uploaded for batch jobs)")] \
        | UnsetType = UNSET
    reference_size: Annotated[int, Meta(ge=10, le=100000, description="rows in the reference")] | UnsetType = UNSET
    window_size: Annotated[int, Meta(ge=10, le=100000, description="the current window: the last this many logged "
                                                                    "predictions")] | UnsetType = UNSET
    window_s: Annotated[float, Meta(gt=0, description="and only those of the last this many seconds")] | None \
        | UnsetType = UNSET
    min_predictions: Annotated[int, Meta(ge=1, description="predictions the current window needs to be scored")] \
        | UnsetType = UNSET
    threshold: Annotated[float, Meta(gt=0, description="the drift score (PSI) that raises an alert")] \
        | UnsetType = UNSET
    rollback: Annotated[bool, Meta(description="a guarded canary whose drift passes the guard's max_drift goes back "
                                              "to the stable version")] | UnsetType = UNSET


class PredictionLogChange(Body):
    """A model's prediction log (``monitoring/prediction_log.py``); fields left out keep their values."""

    enabled: bool | UnsetType = UNSET
    sample_rate: Annotated[float, Meta(gt=0, le=1, description="the share of requests logged, above 0 and up to 1")] \
        | UnsetType = UNSET
    mode: Annotated[Literal["full", "summary"], Meta(description=(
        "full: inputs and outputs; summary: only their summaries (shape, datatype, per-feature means)"))] \
        | UnsetType = UNSET
    redact_inputs: Annotated[bool, Meta(description="drop raw inputs, keep their summaries")] | UnsetType = UNSET
    retention_s: Annotated[float, Meta(gt=0, description="seconds a logged prediction is kept (at most the setting "
                                                         "prediction_log_retention_s)")] | UnsetType = UNSET
    max_bytes: Annotated[int, Meta(ge=1, description="bytes of logged predictions kept, the oldest removed first (at "
                                                     "most the setting prediction_log_max_bytes)")] | UnsetType = UNSET


PREDICTION_LOG_SHAPE = ('"prediction_log" takes enabled, sample_rate (above 0, up to 1), mode ("full" or "summary"), '
                        "redact_inputs, retention_s and max_bytes.")
DRIFT_SHAPE = ('"drift" takes enabled, reference ("first" or "dataset"), reference_dataset, reference_size, '
               "window_size, window_s, min_predictions, threshold and rollback.")


class ModelChange(Body):
    """PATCH /api/v1/models/{model}: the model's response cache, drift monitoring and prediction log (send one or
    more)."""

    code = "bad_model_patch"
    hints = {"response_cache.enabled": ("bad_response_cache", '"response_cache" takes "enabled" (true or false) '
                                                              'and optionally "max_entries".'),
             "response_cache.max_entries": ("bad_response_cache", '"max_entries" is a whole number from 1 up to '
                                                                  "the setting response_cache_max_entries."),
             "response_cache.*": ("bad_response_cache", '"response_cache" takes "enabled" (true or false) and '
                                                       'optionally "max_entries".'),
             "drift": ("bad_drift_config", DRIFT_SHAPE),
             "drift.enabled": ("bad_drift_config", '"enabled" is true or false.'),
             "drift.reference": ("bad_drift_config", '"reference" is "first" (the first logged predictions) or '
                                                     '"dataset" (with reference_dataset).'),
             "drift.reference_dataset": ("bad_drift_config", '"reference_dataset" is the id of an uploaded dataset.'),
             "drift.reference_size": ("bad_drift_config", '"reference_size" is a whole number from 10 to 100000.'),
             "drift.window_size": ("bad_drift_config", '"window_size" is a whole number from 10 to 100000.'),
             "drift.window_s": ("bad_drift_config", '"window_s" is a number of seconds above 0, or null.'),
             "drift.min_predictions": ("bad_drift_config", '"min_predictions" is a whole number of at least 1.'),
             "drift.threshold": ("bad_drift_config", '"threshold" is a drift score (PSI) above 0, e.g. 0.2.'),
             "drift.rollback": ("bad_drift_config", '"rollback" is true or false.'),
             "drift.*": ("bad_drift_config", DRIFT_SHAPE),
             "prediction_log": ("bad_prediction_log", PREDICTION_LOG_SHAPE),
             "prediction_log.enabled": ("bad_prediction_log", '"enabled" is true or false.'),
             "prediction_log.sample_rate": ("bad_prediction_log", '"sample_rate" is the share of requests logged: '
                                                                  "a number above 0 and up to 1."),
             "prediction_log.mode": ("bad_prediction_log", '"mode" is "full" (inputs and outputs) or "summary" '
                                                           "(only their summaries)."),
             "prediction_log.redact_inputs": ("bad_prediction_log", '"redact_inputs" is true or false.'),
             "prediction_log.retention_s": ("bad_prediction_log", '"retention_s" is a number of seconds above 0, up '
                                                                  "to the setting prediction_log_retention_s."),
             "prediction_log.max_bytes": ("bad_prediction_log", '"max_bytes" is a whole number of bytes of at least '
                                                                "1, up to the setting prediction_log_max_bytes."),
             "prediction_log.*": ("bad_prediction_log", PREDICTION_LOG_SHAPE)}

    response_cache: ResponseCacheChange | UnsetType = UNSET
    drift: DriftChange | UnsetType = UNSET
    prediction_log: PredictionLogChange | UnsetType = UNSET


class UploadStart(Body):
    """POST /api/v1/uploads: the file to come; the answer says where to PUT it."""

    hints = {"model": ("bad_model_name", "model names the model the file becomes a version of."),
             "filename": ("bad_filename", "filename is the upload's file name (1 to 255 characters, no folders)."),
             "size": ("bad_size", "size is the file's size in bytes, a whole number above 0."),
             "sha256": ("bad_sha256", "sha256 is the file's SHA-256 as 64 hexadecimal digits.")}

    model: str
    filename: str
    size: Annotated[int, Meta(gt=0, description="bytes")]
    sha256: Annotated[str, Meta(description="64 hex digits; checked at complete")] | None = None
