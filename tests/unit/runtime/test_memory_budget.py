"""Memory budgets: the setting's grammar, and a request that waits too long for a load (in-process, real
SQLite and ONNX Runtime)."""

from __future__ import annotations

import pytest

from flashml.auth.principal import Principal
from flashml.composition import open_services
from flashml.errors import FlashMLError
from flashml.runtime.memory_budget import ANY, budget_for, parse_budget
from flashml.settings import SettingsError, load_settings
from tests.helpers.in_process import publish_offset_versions, run


def test_budget_grammar():
    assert parse_budget("") == {}
    assert parse_budget("8GiB") == {ANY: 8 << 30}
    assert parse_budget("cpu=512MiB, cuda:0=1.5GiB") == {"cpu": 512 << 20, "cuda:0": 3 << 29}
    assert parse_budget("cpu=1000") == {"cpu": 1000}
    assert budget_for({"cuda": 5}, "cuda:0") == 5 and budget_for({"cpu": 5}, "cuda:0") is None
    for bad in ("lots", "8GB", "gpu=1GiB", "cpu=", "cpu=1GiB,"):
        with pytest.raises(ValueError):
            parse_budget(bad)
    with pytest.raises(SettingsError, match="memory_budget"):
        load_settings({"memory_budget": "8 TB"}, env={})
    with pytest.raises(SettingsError, match="load_timeout_s"):
        load_settings({"load_timeout_s": -1}, env={})


async def _timeout_then_answer(tmp_path) -> tuple[FlashMLError, int]:
    settings = load_settings({"data_dir": str(tmp_path / "data"), "device": "cpu", "autotune": False,
                              "memory_budget": "1", "load_timeout_s": 0}, env={})
    services = await open_services(settings)
    try:
        registry = services.registry
        await publish_offset_versions(registry, tmp_path)
        assert registry.memory.unloaded == {("m", 1)}
        principal = Principal(1, "key-one", "k", "inference", None, "t")
        with pytest.raises(FlashMLError) as refused:
            await services.inference.resolve(principal, "m", "1")
        await registry.memory._loading[("m", 1)]  # the load goes on after the caller gave up
        loaded = await services.inference.resolve(principal, "m", "1")
        return refused.value, loaded.version
    finally:
        await services.close()


def test_a_request_waits_at_most_load_timeout_s(tmp_path):
    refused, answered = run(_timeout_then_answer(tmp_path))
    assert refused.status == 504 and refused.code == "load_timeout" and "load_timeout_s" in refused.message
    assert answered == 1
