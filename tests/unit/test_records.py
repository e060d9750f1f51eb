"""flashml.records.parse_body: one strict decoder for every JSON body, with each wrong field named in words."""

from __future__ import annotations

from typing import Annotated, Literal

import pytest
from msgspec import UNSET, Meta, UnsetType

from flashml.errors import BadRequestError
from flashml.records import Body, parse_body


class Inner(Body):
    level: Annotated[int, Meta(ge=0)]


class Sample(Body):
    code = "bad_sample"
    hints = {"inner": ("bad_inner", "inner is {\"level\": 0 or more}."),
             "weights[]": ("bad_weight", "each weight is a number."),
             "loose.*": ("bad_loose", "loose takes nothing but a name.")}

    count: int | None = None
    inner: Inner | UnsetType = UNSET
    weights: dict[str, float] = {}
    loose: dict[str, str] = {}
    keyed: dict[Annotated[int, Meta(ge=1)], int] = {}
    kind: Literal["a", "b"] = "a"


def refusal(data) -> BadRequestError:
    with pytest.raises(BadRequestError) as err:
        parse_body(data, Sample)
    return err.value


def test_a_good_body_from_json_or_from_a_form():
    assert parse_body(b'{"count": 3, "inner": {"level": 1}}', Sample) == Sample(count=3, inner=Inner(level=1))
    # a form or the CLI builds a dict; its string keys still make integer keys, as JSON's do
    assert parse_body({"keyed": {"2": 5}}, Sample).keyed == {2: 5}
    assert parse_body({}, Sample).to_dict() == {"count": None, "weights": {}, "loose": {}, "keyed": {}, "kind": "a"}


@pytest.mark.parametrize(("data", "code", "field", "sentence"), [
    (b'{"count": "3"}', "bad_sample", "count", "count must be a whole number, not a string."),  # no `or null`
    (b'{"count": 3.5}', "bad_sample", "count", "count must be a whole number, not a number."),
    (b'{"count": true}', "bad_sample", "count", "count must be a whole number, not true or false."),
    (b'{"colour": 1}', "bad_sample", "colour", "Unknown field(s): colour."),
    (b'{"inner": {}}', "bad_inner", "inner.level", 'inner is {"level": 0 or more}.'),  # the nearest hint wins
    (b'{"inner": {"level": -1}}', "bad_inner", "inner.level", 'inner is {"level": 0 or more}.'),
    (b'{"weights": {"a": "x"}}', "bad_weight", "weights", "each weight is a number."),
    (b'{"weights": []}', "bad_sample", "weights", "weights must be an object, not a list."),  # the map, not a value
    (b'{"loose": {"a": 1}}', "bad_loose", "loose", "loose takes nothing but a name."),  # loose.* (any entry)
    (b'{"loose": 1}', "bad_sample", "loose", "loose must be an object, not a whole number."),
    (b'{"keyed": {"x": 1}}', "bad_sample", "keyed", "each key of keyed must be a whole number, not a string."),
    (b'{"keyed": {"0": 1}}', "bad_sample", "keyed", "each key of keyed must be a whole number >= 1."),
    (b'{"kind": "c"}', "bad_sample", "kind", "kind cannot be 'c'."),
])
def test_a_wrong_field_gets_its_code_and_a_sentence(data, code, field, sentence):
    err = refusal(data)
    assert (err.code, err.details, err.message) == (code, {"field": field}, sentence)


@pytest.mark.parametrize("data", [b"", b"{", b"[]", b"3", b"null", "[" * 50_000])
def test_what_is_not_a_json_object_is_malformed(data):
    err = refusal(data)
    assert err.code == "malformed_request" and err.status == 400 and "JSON" in err.message
