"""BatchingConfig: round trips, PATCH merges and the sentences that name a bad field."""

from __future__ import annotations

import numpy as np
import pytest

from flashml.errors import BadRequestError
from flashml.runtime.batching import BatchingConfig, PadSpec, request_length
from flashml.runtime.batching.config import parse_batch_sizes

FULL = {"max_batch_size": 8, "max_queue_delay_us": 500, "preferred_batch_sizes": [4, 2], "max_queue_size": 10,
        "default_timeout_us": 1000, "instance_count": 2, "padded_inputs": {"ids": {"axis": 1, "value": -1}},
        "padded_outputs": {"logits": 1}}


def test_defaults_never_batch():
    cfg = BatchingConfig()
    assert cfg.max_batch_size == 0 and cfg.instance_count == 1 and cfg.max_queue_size == 256
    assert BatchingConfig.from_dict({}) == cfg


def test_round_trip_and_normalised_preferred_sizes():
    cfg = BatchingConfig.from_dict(FULL)
    assert cfg.preferred_batch_sizes == (2, 4)
    assert cfg.padded_inputs == {"ids": PadSpec(1, -1)}
    assert BatchingConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.to_dict()["padded_inputs"] == {"ids": {"axis": 1, "value": -1}}


def test_merged_changes_fields_and_validates():
    cfg = BatchingConfig.from_dict(FULL)
    changed = cfg.merged({"max_queue_delay_us": 0, "instance_count": 3})
    assert changed.max_queue_delay_us == 0 and changed.instance_count == 3 and changed.max_batch_size == 8
    assert cfg.max_queue_delay_us == 500  # frozen: the original is untouched
    with pytest.raises(BadRequestError) as err:
        cfg.merged({"max_batch_size": 2})  # preferred size 4 no longer fits
    assert "preferred" in err.value.message


@pytest.mark.parametrize(("changes", "field"), [
    ({"max_batch_sise": 4}, "max_batch_sise"),
    ({"max_batch_size": "8"}, "max_batch_size"),
    ({"max_batch_size": True}, "max_batch_size"),
    ({"max_queue_delay_us": -1}, "max_queue_delay_us"),
    ({"max_queue_size": 1.5}, "max_queue_size"),
    ({"default_timeout_us": -5}, "default_timeout_us"),
    ({"instance_count": 0}, "instance_count"),
    ({"instance_count": 65}, "instance_count"),
    ({"max_batch_size": 4, "preferred_batch_sizes": [8]}, "preferred_batch_sizes"),
    ({"preferred_batch_sizes": [1]}, "preferred_batch_sizes"),  # batching is off
    ({"max_batch_size": 4, "preferred_batch_sizes": "4"}, "preferred_batch_sizes"),
    ({"padded_inputs": {"ids": {"axis": 0, "value": 0}}}, "padded_inputs"),
    ({"padded_inputs": {"ids": {"axis": 1, "value": "pad"}}}, "padded_inputs"),
    ({"padded_inputs": {"ids": {"axes": 1}}}, "padded_inputs"),
    ({"padded_inputs": [1]}, "padded_inputs"),
    ({"padded_inputs": {"ids": {"axis": 1}}, "padded_outputs": {"y": 0}}, "padded_outputs"),
    ({"padded_outputs": {"y": 1}}, "padded_outputs"),  # no padded input gives the length
])
def test_bad_values_name_their_field(changes, field):
    with pytest.raises(BadRequestError) as err:
        BatchingConfig.from_dict(changes)
    assert err.value.code == "bad_batching_config"
    assert err.value.status == 400
    assert field in err.value.message
    with pytest.raises(BadRequestError):
        BatchingConfig().merged(changes)


def test_not_an_object():
    with pytest.raises(BadRequestError):
        BatchingConfig.from_dict([("max_batch_size", 4)])  # type: ignore[arg-type]


def test_request_length_uses_first_padded_input():
    cfg = BatchingConfig(max_batch_size=4, padded_inputs={"ids": PadSpec(1, 0), "mask": PadSpec(1, 0)})
    assert request_length({"mask": np.zeros((1, 7)), "ids": np.zeros((1, 5))}, cfg) == 5
    assert request_length({"other": np.zeros((1, 5))}, cfg) is None
    assert request_length({"ids": np.zeros((1, 5))}, BatchingConfig()) is None


def test_preferred_sizes_as_typed_in_a_form_or_on_the_command_line():
    assert parse_batch_sizes(" 4, 8,16 ") == [4, 8, 16]
    assert parse_batch_sizes("") == [] and parse_batch_sizes(" , ") == []
    for bad in ("4,x", "-4", "4.5"):
        with pytest.raises(ValueError, match="whole numbers separated by commas"):
            parse_batch_sizes(bad)
