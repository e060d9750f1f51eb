"""What this node does with each kind of change another node made: the services' apply methods, which re-read
the thing the change names from the database (the jobs and keys parts register theirs in the composition)."""

from __future__ import annotations

from flashml.cluster.node import ClusterNode
from flashml.db import changes
from flashml.monitoring.drift_service import DriftService
from flashml.monitoring.prediction_log_settings import PredictionLogSettings
from flashml.registry.service import RegistryService

INTERRUPTED_EVERY_S = 30.0


def follow_registry(node: ClusterNode, registry: RegistryService, prediction_log: PredictionLogSettings,
                    drift: DriftService) -> None:
    """Versions (ready, archived, restored, pinned, their serving config, deleted), models, aliases and each
    model's settings: what every node must serve alike."""
    node.on(changes.VERSION, lambda c: registry.apply_version(c["model"], c["number"]))
    node.on(changes.VERSION_DELETED, lambda c: registry.apply_version_deleted(c["model"], c["number"]))
    node.on(changes.MODEL_DELETED, lambda c: registry.apply_model_deleted(c["model"]))
    node.on(changes.ALIAS, lambda c: registry.aliases.apply_alias(c["model"], c["name"]))
    node.on(changes.RESPONSE_CACHE, lambda c: registry.response_caches.apply(c["model"]))
    node.on(changes.PREDICTION_LOG, lambda c: prediction_log.apply(c["model"]))
    node.on(changes.DRIFT, lambda c: drift.apply(c["model"]))
    # A node killed while it validated an upload leaves the version validating: the leader marks it failed.
    node.when_leader("failing the validations of stopped nodes", registry.fail_interrupted, INTERRUPTED_EVERY_S)
