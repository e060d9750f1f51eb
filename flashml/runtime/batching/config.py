"""The dynamic batching settings of one model version, checked the same way for a file, an upload or a PATCH."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from flashml.errors import BadRequestError

MAX_INSTANCES = 64
# A delay this long is a typo, not a tuning choice: every first request would wait a minute.
MAX_DELAY_US = 60_000_000
INT_FIELDS = ("max_batch_size", "max_queue_delay_us", "max_queue_size", "default_timeout_us", "instance_count")


def parse_batch_sizes(text: str) -> list[int]:
    """``preferred_batch_sizes`` as typed in a form or on the command line: "4, 8" (empty: none)."""
    sizes = [s.strip() for s in text.split(",") if s.strip()]
    if not all(s.isdigit() for s in sizes):
        raise ValueError("preferred_batch_sizes must be whole numbers separated by commas, e.g. 4, 8.")
    return [int(s) for s in sizes]


def bad_config(sentence: str, field_name: str) -> BadRequestError:
    return BadRequestError(sentence, code="bad_batching_config", details={"field": field_name})


def is_whole_number(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class PadSpec:
    """A padded input axis (e.g. the token axis 1) and the value that fills it."""

    axis: int
    value: float | int = 0


@dataclass(frozen=True)
class BatchingConfig:
    """Triton-style dynamic batching settings; max_batch_size 0 runs each request alone."""

    max_batch_size: int = 0
    max_queue_delay_us: int = 0
    preferred_batch_sizes: tuple[int, ...] = ()
    max_queue_size: int = 256  # 0 = unbounded, as in Triton
    default_timeout_us: int = 0
    instance_count: int = 1
    padded_inputs: dict[str, PadSpec] = field(default_factory=dict)
    padded_outputs: dict[str, int] = field(default_factory=dict)
    # Fixed batch shapes: each instance holds a session per size, and a batch runs on the smallest that holds it,
    # padded with zero rows. ONNX Runtime's CUDA convolutions plan anew whenever a session's input shape changes
    # (cuDNN 9), which costs milliseconds per layer; a session that always sees one shape plans once.
    batch_buckets: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        for name in INT_FIELDS:
            value = getattr(self, name)
            if not is_whole_number(value):
                raise bad_config(f"Batching setting {name} must be a whole number, not {value!r}.", name)
            if value < 0:
                raise bad_config(f"Batching setting {name} must not be negative (got {value}).", name)
        if not 1 <= self.instance_count <= MAX_INSTANCES:
            raise bad_config(f"Batching setting instance_count must be between 1 and {MAX_INSTANCES} "
                       f"(got {self.instance_count}).", "instance_count")
        if self.max_queue_delay_us > MAX_DELAY_US:
            raise bad_config(f"Batching setting max_queue_delay_us must be at most {MAX_DELAY_US} (one minute).",
                       "max_queue_delay_us")
        object.__setattr__(self, "preferred_batch_sizes", self._check_preferred(self.preferred_batch_sizes))
        object.__setattr__(self, "batch_buckets", self._check_buckets(self.batch_buckets))
        object.__setattr__(self, "padded_inputs", self._check_padded_inputs(self.padded_inputs))
        object.__setattr__(self, "padded_outputs", self._check_padded_outputs(self.padded_outputs))

    def _check_preferred(self, sizes: Any) -> tuple[int, ...]:
        if not isinstance(sizes, list | tuple) or not all(is_whole_number(s) for s in sizes):
            raise bad_config("Batching setting preferred_batch_sizes must be a list of whole numbers.",
                       "preferred_batch_sizes")
        for size in sizes:
            if size < 1 or size > self.max_batch_size:
                raise bad_config(f"Each of preferred_batch_sizes must be between 1 and max_batch_size "
                           f"({self.max_batch_size}); {size} is not.", "preferred_batch_sizes")
        return tuple(sorted(set(sizes)))

    def _check_buckets(self, sizes: Any) -> tuple[int, ...]:
        if not isinstance(sizes, list | tuple) or not all(is_whole_number(s) for s in sizes):
            raise bad_config("Batching setting batch_buckets must be a list of whole numbers.", "batch_buckets")
        buckets = tuple(sorted(set(sizes)))
        if buckets and (buckets[0] < 1 or buckets[-1] != self.max_batch_size):
            raise bad_config(f"batch_buckets must be sizes from 1 up to max_batch_size ({self.max_batch_size}), the "
                             f"largest being max_batch_size itself, so every batch fits one; got {list(buckets)}.",
                             "batch_buckets")
        if len(buckets) > 8:
            raise bad_config("batch_buckets may hold at most 8 sizes: each is a session of the model per instance.",
                             "batch_buckets")
        return buckets

    @staticmethod
    def _check_padded_inputs(padded: Any) -> dict[str, PadSpec]:
        if not isinstance(padded, dict):
            raise bad_config("Batching setting padded_inputs must map input names to {axis, value}.", "padded_inputs")
        out: dict[str, PadSpec] = {}
        for name, spec in padded.items():
            if isinstance(spec, dict):
                unknown = set(spec) - {"axis", "value"}
                if unknown or "axis" not in spec:
                    raise bad_config(f"padded_inputs.{name} must be {{\"axis\": int, \"value\": number}}.",
                               "padded_inputs")
                spec = PadSpec(spec["axis"], spec.get("value", 0))
            if not isinstance(name, str) or not isinstance(spec, PadSpec):
                raise bad_config(f"padded_inputs.{name} must be {{\"axis\": int, \"value\": number}}.", "padded_inputs")
            if not is_whole_number(spec.axis) or spec.axis < 1:
                raise bad_config(f"padded_inputs.{name}.axis must be a whole number of at least 1 "
                           f"(axis 0 is the batch); got {spec.axis!r}.", "padded_inputs")
            if isinstance(spec.value, bool) or not isinstance(spec.value, int | float):
                raise bad_config(f"padded_inputs.{name}.value must be a number; got {spec.value!r}.", "padded_inputs")
            out[name] = spec
        return out

    def _check_padded_outputs(self, padded: Any) -> dict[str, int]:
        if not isinstance(padded, dict):
            raise bad_config("Batching setting padded_outputs must map output names to an axis.", "padded_outputs")
        for name, axis in padded.items():
            if not isinstance(name, str) or not is_whole_number(axis) or axis < 1:
                raise bad_config(f"padded_outputs.{name} must be an axis of at least 1 (axis 0 is the batch); "
                           f"got {axis!r}.", "padded_outputs")
        if padded and not self.padded_inputs:
            raise bad_config("padded_outputs needs padded_inputs: each request's length comes from its padded input.",
                       "padded_outputs")
        return dict(padded)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/TOML-friendly values."""
        out: dict[str, Any] = {name: getattr(self, name) for name in INT_FIELDS}
        out["preferred_batch_sizes"] = list(self.preferred_batch_sizes)
        out["batch_buckets"] = list(self.batch_buckets)
        out["padded_inputs"] = {k: {"axis": v.axis, "value": v.value} for k, v in self.padded_inputs.items()}
        out["padded_outputs"] = dict(self.padded_outputs)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BatchingConfig:
        """Build from plain values; unknown keys and bad values raise BadRequestError."""
        if not isinstance(d, dict):
            raise bad_config("Batching settings must be an object.", "batching")
        known = {f.name for f in fields(cls)}
        unknown = sorted(str(k) for k in d if k not in known)
        if unknown:
            raise bad_config(f"Unknown batching setting {unknown[0]!r}; known ones are {', '.join(sorted(known))}.",
                       unknown[0])
        return cls(**d)

    def merged(self, changes: dict[str, Any]) -> BatchingConfig:
        """This config with the given fields replaced (a PATCH); a dict field is replaced whole."""
        if not isinstance(changes, dict):
            raise bad_config("Batching changes must be an object.", "batching")
        return BatchingConfig.from_dict({**self.to_dict(), **changes})


def request_length(inputs: dict[str, np.ndarray], config: BatchingConfig) -> int | None:
    """A request's length for padding: its size on the pad axis of the first padded input it has."""
    for name, spec in config.padded_inputs.items():
        array = inputs.get(name)
        if array is not None and array.ndim > spec.axis:
            return int(array.shape[spec.axis])
    return None
