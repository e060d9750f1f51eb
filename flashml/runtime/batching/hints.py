"""What a bundle's ``[batching]`` table fixes, checked once when the manifest is read.

The settings it names stay as given; auto-tune (or the defaults) chooses the rest at publication. Checking the
table here, before the bundle's model is checked, warmed up and published, makes a typo cost a second, not the
whole validation. What needs the model's signature (padding that names an input) is checked later, by
``registry.serving.check_fits``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flashml.runtime.batching.config import BatchingConfig, bad_config, is_whole_number
from flashml.runtime.devices import parse_device


def config_device(value: Any) -> str | None:
    """A serving config's ``device`` (None: the server's), normalized; BadRequestError names the field."""
    if value is None:
        return None
    try:
        return parse_device(value)
    except (TypeError, ValueError):
        raise bad_config(f"`device` must be cpu, auto, cuda or cuda:N (got {value!r}).", "device") from None


@dataclass(frozen=True)
class BatchingHints:
    """A manifest's batching settings: ``config`` holds them on top of the defaults, ``given`` names the ones the
    manifest set (plus ``max_batch_size`` where only ``preferred_batch_sizes`` was: their largest is the cap)."""

    config: BatchingConfig = field(default_factory=BatchingConfig)
    device: str | None = None
    given: frozenset[str] = frozenset()
    table: dict[str, Any] = field(default_factory=dict)  # the table as written, for the stored manifest

    @classmethod
    def from_table(cls, table: dict[str, Any]) -> BatchingHints:
        """Check a ``[batching]`` table; BadRequestError (code ``bad_batching_config``) names a bad field."""
        if not isinstance(table, dict):
            raise bad_config("Batching settings must be an object.", "batching")
        values = dict(table)
        device = config_device(values.pop("device", None))
        preferred = values.get("preferred_batch_sizes")
        if "max_batch_size" not in values and isinstance(preferred, list) and preferred \
                and all(is_whole_number(s) for s in preferred):
            values["max_batch_size"] = max(preferred)  # sizes to cut at, none given larger: the largest is the cap
        config = BatchingConfig.from_dict(values)
        given = frozenset(values) | ({"device"} if "device" in table else frozenset())
        return cls(config, device, given, dict(table))

    def sets(self, name: str) -> bool:
        """True when the manifest fixed this setting (auto-tune leaves it alone)."""
        return name in self.given

    def filled(self, defaults: dict[str, Any]) -> BatchingHints:
        """These hints with ``defaults`` for the settings the manifest left out (a task's padding, say)."""
        missing = {name: value for name, value in defaults.items() if name not in self.given}
        if not missing:
            return self
        return BatchingHints.from_table({**self.table, **missing})
