"""A version's serving configuration: from its manifest, auto-tuned at publication, changed by PATCH.

The stored config is one flat dict: ``device`` (None: the server's) plus every ``BatchingConfig`` field.

Before publication nothing runs a version in the server at a batch size its upload's sandbox did not run first
(``batches_to_prove``, ``registry.probe.BatchPlan``): auto-tune measures up to the largest that ran there, and
a config over it is brought down to it (``within_proof``).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from flashml.errors import BadRequestError
from flashml.runtime.autotune import (
    MAX_MEASURED_BATCH,
    batch_buckets,
    batchable,
    compare_split,
    performance_card,
    plans_per_shape,
    split_candidate,
)
from flashml.runtime.batching import BatchingConfig
from flashml.runtime.batching.config import bad_config
from flashml.runtime.batching.hints import BatchingHints, config_device
from flashml.runtime.pool import LoadedModel, ModelPool
from flashml.runtime.sessions import wide_instance
from flashml.settings import Settings
from flashml.signature import Signature

DEFAULT_MAX_BATCH = 32  # batching on, when the first dimension is dynamic and auto-tune is off
RELOAD_FIELDS = ("device", "instance_count", "batch_buckets")  # changing these needs new sessions
# Auto-tune compares one CPU instance of all the cores with this many sharing them (each of the cores / this many
# threads; a lone batch still gets all the cores: Batcher's wide instance). Two already take the threads' waits
# for each other out of a busy server; more would hold more copies of the model for less.
SPLIT_INSTANCES = 2
# On a GPU, two instances (each its own session and CUDA stream): while one's batch runs on the GPU, the other
# gathers, copies and binds the next, so the GPU does not wait for the host between batches (Triton's advice).
GPU_INSTANCES = 2


def split(config: dict[str, Any]) -> tuple[str | None, BatchingConfig]:
    """(device, batching) from a stored or patched flat config; BadRequestError names a bad field."""
    rest = dict(config)
    device = config_device(rest.pop("device", None))
    return device, BatchingConfig.from_dict(rest)


def check_fits(batching: BatchingConfig, signature: Signature) -> None:
    """Refuse settings this model cannot be served with: merged batches or padding that would fail it."""
    if batching.max_batch_size and signature.unbatched:
        raise bad_config("max_batch_size needs a row of every output per input row; this model has an output "
                         "without one (its warm-up at 1 and 3 rows showed it), so its answers could not be cut "
                         "apart per request: use 0.", "max_batch_size")
    if batching.max_batch_size and not batchable(signature):
        raise bad_config("max_batch_size needs every input's first dimension to be dynamic (the batch axis); "
                         "this model's is fixed, so its requests cannot be merged: use 0.", "max_batch_size")
    for name, pad in batching.padded_inputs.items():
        spec = signature.input(name)
        if spec is None:
            raise bad_config(f"padded_inputs names {name!r}, which is not an input of this model (its inputs: "
                             f"{', '.join(t.name for t in signature.inputs)}).", "padded_inputs")
        if pad.axis >= len(spec.shape) or spec.shape[pad.axis] != -1:
            raise bad_config(f"padded_inputs.{name}.axis {pad.axis} is not a dynamic axis of {name} "
                             f"(shape {spec.shape}, -1 marks a dynamic one).", "padded_inputs")
    for name, axis in batching.padded_outputs.items():
        spec = signature.output(name)
        if spec is None:
            raise bad_config(f"padded_outputs names {name!r}, which is not an output of this model (its "
                             f"outputs: {', '.join(t.name for t in signature.outputs)}).", "padded_outputs")
        if spec.shape and axis >= len(spec.shape):
            raise bad_config(f"padded_outputs.{name} is axis {axis}, but {name} has {len(spec.shape)} axes.",
                             "padded_outputs")


def batches_to_prove(hints: BatchingHints, settings: Settings) -> tuple[list[int], float]:
    """The batch sizes the sandbox runs a new version at before the server may (ascending), and the latency
    past which it stops as auto-tune would (0: never). Where the manifest sets ``max_batch_size`` (or
    ``preferred_batch_sizes``), that size and its ``batch_buckets``, which the GPU warm-ups run; else every size
    auto-tune may measure (1, 2, 4, ... ``MAX_MEASURED_BATCH``), or ``DEFAULT_MAX_BATCH`` with auto-tune off.
    The powers of two below the largest say where to cap batching when a larger one fails."""
    budget = 0.0
    if hints.sets("max_batch_size"):
        top = hints.config.max_batch_size
    elif settings.autotune:
        top, budget = MAX_MEASURED_BATCH, 2 * settings.latency_budget_ms  # a first run at a new shape is slower
    else:
        top = DEFAULT_MAX_BATCH
    sizes = {1, top, *hints.config.batch_buckets} | {1 << i for i in range(max(top, 1).bit_length())}
    return sorted(s for s in sizes if 1 <= s <= max(top, 1)), budget


def within_proof(config: dict[str, Any], largest: int) -> dict[str, Any]:
    """``config`` batching at most ``largest`` rows, the largest batch the sandbox ran (0 or 1: batching off):
    ``max_batch_size`` down to it, preferred sizes and buckets over it dropped."""
    if (config.get("max_batch_size") or 0) <= largest:
        return config
    top = largest if largest >= 2 else 0
    buckets = [b for b in config.get("batch_buckets") or [] if b <= top]
    return {**config, "max_batch_size": top,
            "preferred_batch_sizes": [s for s in config.get("preferred_batch_sizes") or [] if s <= top],
            "batch_buckets": sorted({*buckets, top}) if buckets else []}


def join(device: str | None, batching: BatchingConfig) -> dict[str, Any]:
    return {"device": device, **batching.to_dict()}


def initial_config(hints: BatchingHints, signature: Signature, settings: Settings, *, ran: bool = True
                   ) -> tuple[dict[str, Any], bool]:
    """The config a new version starts with, and whether auto-tune should fill in the rest. ``ran``: made-up inputs
    ran the model at upload; where none did, auto-tune has no shape to measure at, and batching stays off
    unless the manifest sets it."""
    batching = hints.config
    if not hints.sets("max_queue_size"):
        batching = replace(batching, max_queue_size=settings.max_queue_size)
    check_fits(batching, signature)
    if not batchable(signature) or hints.sets("max_batch_size"):
        return join(hints.device, batching), False
    if not ran:
        return join(hints.device, batching), False  # max_batch_size 0: each request runs alone, at its own shape
    if settings.autotune:
        return join(hints.device, batching), True
    return join(hints.device, replace(batching, max_batch_size=DEFAULT_MAX_BATCH)), False


async def autotune(loaded: LoadedModel, config: dict[str, Any], hints: BatchingHints,
                   settings: Settings, pool: ModelPool, max_batch: int = MAX_MEASURED_BATCH
                   ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Measure the loaded version, at most ``max_batch`` rows (the largest batch the upload's sandbox ran), and
    pick what to apply (never over what the manifest set): (config, card).

    Batching applies at once. On a CPU, where the chosen batch keeps the cores busy, auto-tune also measures
    ``SPLIT_INSTANCES`` instances sharing the cores against the one it loaded and keeps them unless they served
    clearly less (``autotune.SPLIT_KEEP``); a count other than the loaded one needs the version loaded again
    (the caller's job).
    """
    card = await asyncio.to_thread(performance_card, loaded.executors[0], loaded.signature,
                                   settings.latency_budget_ms, loaded.device, max_batch)
    batch = split_candidate(card)
    if (batch and not hints.sets("instance_count") and loaded.config.instance_count == 1
            and wide_instance(settings.intra_op_threads, SPLIT_INSTANCES, loaded.device)):
        trial = await pool.split_trial(loaded, SPLIT_INSTANCES)
        card["instances"] = await asyncio.to_thread(compare_split, loaded.executors[0], trial, loaded.signature,
                                                    batch)
        card["chosen"]["instance_count"] = card["instances"]["instance_count"]
        del trial
    if loaded.on_gpu and batch:
        card["chosen"]["instance_count"] = GPU_INSTANCES
    max_batch = card["chosen"].get("max_batch_size") or 0
    if (loaded.on_gpu and not hints.sets("batch_buckets")
            and not hints.sets("max_batch_size")
            and await asyncio.to_thread(plans_per_shape, loaded.model_path)):
        buckets = batch_buckets(card["points"], max_batch)
        if buckets:
            card["chosen"]["batch_buckets"] = buckets
            if not hints.sets("preferred_batch_sizes"):  # cut batches at the fixed sizes, not between
                card["chosen"]["preferred_batch_sizes"] = [b for b in buckets if b > 1]
    chosen = {k: v for k, v in card["chosen"].items() if not hints.sets(k)}
    device, batching = split({**config, **chosen})
    if batching.instance_count == loaded.config.instance_count:
        loaded.reconfigure(batching)
    return join(device, batching), card


def patched(current: dict[str, Any], changes: dict[str, Any], signature: Signature) -> tuple[dict[str, Any], bool]:
    """The config after a PATCH, and whether it needs the version reloaded (new sessions)."""
    if not isinstance(changes, dict) or not changes:
        raise BadRequestError("Send a JSON object with the fields to change.", code="bad_batching_config")
    new = {**current, **changes}
    device, batching = split(new)
    check_fits(batching, signature)
    config = join(device, batching)
    return config, any(config.get(f) != current.get(f) for f in RELOAD_FIELDS)
