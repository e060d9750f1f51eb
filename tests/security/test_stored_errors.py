"""A failed version's reasons are stored and echoed on every read: whatever the upload made them quote (a
megabyte-long node name in ONNX Runtime's refusal, say), they stay a few KB."""

from __future__ import annotations

import json

from flashml.composition import open_services
from flashml.db.models import MAX_ERROR_CHARS, bounded_errors
from flashml.settings import load_settings
from tests.helpers.in_process import run
from tests.helpers.onnx_models import long_node_name_model


def test_bounded_errors_cuts_text_details_and_count():
    errors = [{"code": "c", "error": "e" * 10**6, "details": {"member": "m" * 10**6, "list": list(range(10**5)),
                                                              "deep": {"a": {"b": {"c": {"d": "x"}}}}}}] * 50
    out = bounded_errors(errors)
    assert len(json.dumps(out)) < 40_000 and len(out) == 10
    assert out[0]["error"].startswith("e" * 100) and len(out[0]["error"]) <= MAX_ERROR_CHARS + 3
    assert out[0]["code"] == "c" and len(out[0]["details"]["list"]) == 20
    assert bounded_errors(None) is None
    short = [{"code": "x", "error": "plain", "details": {"member": "a.txt"}}]
    assert bounded_errors(short) == short


async def _upload_long_name(tmp_path) -> tuple[dict, dict]:
    settings = load_settings({"data_dir": str(tmp_path / "data"), "device": "cpu", "autotune": False}, env={})
    services = await open_services(settings)
    path = long_node_name_model(tmp_path / "m.onnx")

    async def body():
        yield path.read_bytes()

    try:
        record, done = await services.registry.upload("long", body(), source_name="m.onnx", actor="t",
                                                      content_length=None)
        assert done
        return record.to_dict(), (await services.registry.get_version("long", 1)).to_dict()
    finally:
        await services.close()


def test_an_error_quoting_a_megabyte_name_is_stored_short(tmp_path):
    record, again = run(_upload_long_name(tmp_path))
    assert record["state"] == "failed" and record["errors"][0]["code"]
    assert "nnnnnnnnnn" in record["errors"][0]["error"]  # it did quote the name, cut short
    for version in (record, again):
        assert len(json.dumps(version["errors"])) < 8_000
