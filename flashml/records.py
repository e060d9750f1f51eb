"""The base of every typed record the services answer with (``registry.records``, ``auth.records``, ...)."""

from __future__ import annotations

import re
from typing import Any, ClassVar, TypeVar

import msgspec

from flashml.errors import BadRequestError


class Record(msgspec.Struct, kw_only=True):
    """Keyword construction; msgspec leaves ``UNSET`` fields out of the JSON, and Litestar derives the OpenAPI
    schema from the fields."""

    def to_dict(self) -> dict[str, Any]:
        """Plain values (the JSON the API sends), for code that stores, logs or compares them."""
        return msgspec.to_builtins(self)


# ---- request bodies ----

_TYPE_WORDS = {"int": "a whole number", "float": "a number", "str": "a string", "bool": "true or false",
               "object": "an object", "array": "a list", "null": "null"}
_EXPECTED = re.compile(r"^Expected `([^`]+)`(?:, got `([^`]+)`)?(?: (.+?))?$")
_FIELD = re.compile(r"^Object (missing required|contains unknown) field `([^`]+)`$")


class Body(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A JSON request body, decoded strictly (``"1"`` is not the number 1, unknown fields are refused) by
    ``parse_body``. The API documents its fields in the OpenAPI document; the console and the CLI build the same
    body from their forms, so all three are checked by one set of rules.

    ``code`` is the error code of a field the ``hints`` do not name (an unknown one, one of the wrong type; a body
    that is not a JSON object is ``malformed_request``);
    ``hints`` gives a field (``"guard"``, a nested ``"guard.max_p99_ms"``, any field of it ``"guard.*"``,
    ``"versions[]"`` for the values of a map) its own code and the sentence that says what it must be."""

    code: ClassVar[str] = "malformed_request"
    hints: ClassVar[dict[str, tuple[str, str]]] = {}

    def to_dict(self) -> dict[str, Any]:
        """The fields that were sent (``UNSET`` ones are left out), as plain values."""
        return msgspec.to_builtins(self)


B = TypeVar("B", bound=Body)


def parse_body(data: bytes | str | dict[str, Any], kind: type[B]) -> B:
    """``data`` (raw JSON, or the object a form or the CLI built) as a ``kind``, or a BadRequestError whose code
    and sentence say which field is wrong and how (``details.field`` names it)."""
    try:
        if isinstance(data, bytes | str):
            return msgspec.json.decode(data, type=kind, strict=True)
        return msgspec.convert(data, kind, strict=True, str_keys=True)
    except msgspec.ValidationError as exc:
        raise _refusal(kind, str(exc)) from None
    except msgspec.DecodeError as exc:
        raise BadRequestError(f"The body is not valid JSON ({exc}).", code="malformed_request") from None
    except RecursionError:
        raise BadRequestError("The body's JSON is nested too deeply.", code="malformed_request") from None


def _refusal(kind: type[Body], message: str) -> BadRequestError:
    """msgspec's ``Expected `int`, got `str` - at `$.guard.window_s``` as our code and a sentence for people."""
    problem, _, where = message.partition(" - at ")
    path = where.strip("`").removeprefix("$").lstrip(".").replace("[...]", "[]")
    key = "` in `" in path  # a map's key: `key` in `$.versions`
    if key:
        path = path.split("` in `")[1].removeprefix("$").lstrip(".") + "{}"
    field = _FIELD.match(problem)
    if field:
        path = f"{path}.{field[2]}".lstrip(".")
    if not path:
        return BadRequestError("The body must be a JSON object.", code="malformed_request")
    for prefix in _prefixes(path):
        if prefix in kind.hints:
            code, sentence = kind.hints[prefix]
            return BadRequestError(sentence, code=code, details={"field": path.removesuffix("[]").removesuffix("{}")})
    name = path.removesuffix("[]").removesuffix("{}")
    details = {"field": name}
    name = name.replace("[]", ".<name>")  # padded_inputs[].axis: the axis of any one entry
    if key:
        name = f"each key of {name}"
    if field:
        sentence = (f"{name} is missing." if field[1] == "missing required" else f"Unknown field(s): {name}.")
    else:
        sentence = f"{name} {_reworded(problem)}."
    return BadRequestError(sentence, code=kind.code, details=details)


def _prefixes(path: str) -> list[str]:
    """``a.b[]`` -> ``a.b[]``, ``a.b.*``, ``a.b``, ``a.*``, ``a``: the most specific hint wins (``a.*``: anything
    inside a, a field or an entry)."""
    out = [path]
    while True:
        if path.endswith(("[]", "{}")):
            path = path[:-2]
            out.append(f"{path}.*")
        elif "." in path:
            path = path.rsplit(".", 1)[0]
            out.append(f"{path}.*")
        else:
            return out
        out.append(path)


def _reworded(problem: str) -> str:
    if problem.startswith("Invalid enum value "):
        return f"cannot be {problem.removeprefix('Invalid enum value ')}"
    match = _EXPECTED.match(problem)
    if match is None:
        return f"is wrong: {problem}"
    expected, got, bound = match[1], match[2], match[3]
    # An optional field's `| null` goes without saying: leaving the field out is the way to send nothing.
    words = " or ".join(_TYPE_WORDS.get(t, t) for t in (t.strip() for t in expected.split("|")) if t != "null")
    if got:
        return f"must be {words}, not {_TYPE_WORDS.get(got, got)}"
    return f"must be {words} {bound}" if bound else f"must be {words}"
