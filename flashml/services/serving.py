"""A version's serving configuration: from its manifest, auto-tuned at publication, changed by PATCH.

The stored config is one flat dict: ``device`` (None: the server's) plus every ``BatchingConfig`` field.
"""

from __future__ import annotations

import asyncio
from typing import Any

from flashml.errors import BadRequestError
from flashml.runtime.autotune import batchable, performance_card
from flashml.runtime.batching import BatchingConfig
from flashml.runtime.devices import parse_device
from flashml.runtime.pool import LoadedModel
from flashml.settings import Settings
from flashml.signature import Signature

DEFAULT_MAX_BATCH = 32  # batching on, when the first dimension is dynamic and auto-tune is off
RELOAD_FIELDS = ("device", "instance_count")  # changing these needs new sessions


def split(config: dict[str, Any]) -> tuple[str | None, BatchingConfig]:
    """(device, batching) from a stored or patched flat config; BadRequestError names a bad field."""
    rest = dict(config)
    device = rest.pop("device", None)
    if device is not None:
        try:
            device = parse_device(device)
        except ValueError:
            raise BadRequestError(f"`device` must be cpu, auto, cuda or cuda:N (got {device!r}).",
                                  code="bad_batching_config") from None
    return device, BatchingConfig.from_dict(rest)


def join(device: str | None, batching: BatchingConfig) -> dict[str, Any]:
    return {"device": device, **batching.to_dict()}


def initial_config(manifest_batching: dict[str, Any], signature: Signature, settings: Settings
                   ) -> tuple[dict[str, Any], bool]:
    """The config a new version starts with, and whether auto-tune should fill in the rest."""
    given = dict(manifest_batching)
    given.setdefault("max_queue_size", settings.max_queue_size)
    device, batching = split(given)
    if not batchable(signature):
        if batching.max_batch_size:
            raise BadRequestError("[batching] max_batch_size needs every input's first dimension to be dynamic "
                                  "(the batch axis); this model's is fixed.", code="bad_batching_config")
        return join(device, batching), False
    if "max_batch_size" in given:
        return join(device, batching), False
    if settings.autotune:
        return join(device, batching), True
    return join(device, BatchingConfig.from_dict({**batching.to_dict(), "max_batch_size": DEFAULT_MAX_BATCH})), False


async def autotune(loaded: LoadedModel, config: dict[str, Any], manifest_batching: dict[str, Any],
                   settings: Settings) -> tuple[dict[str, Any], dict[str, Any]]:
    """Measure the loaded version, apply what it picks (never over what the manifest set): (config, card)."""
    card = await asyncio.to_thread(performance_card, loaded.executors[0], loaded.signature,
                                   settings.latency_budget_ms, loaded.device)
    chosen = {k: v for k, v in card["chosen"].items() if k not in manifest_batching}
    device, batching = split({**config, **chosen})
    loaded.reconfigure(batching)
    return join(device, batching), card


def patched(current: dict[str, Any], changes: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The config after a PATCH, and whether it needs the version reloaded (new sessions)."""
    if not isinstance(changes, dict) or not changes:
        raise BadRequestError("Send a JSON object with the fields to change.", code="bad_batching_config")
    new = {**current, **changes}
    device, batching = split(new)
    config = join(device, batching)
    return config, any(config.get(f) != current.get(f) for f in RELOAD_FIELDS)
