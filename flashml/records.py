"""The base of every typed record the services answer with (``registry.records``, ``auth.records``, ...)."""

from __future__ import annotations

from typing import Any

import msgspec


class Record(msgspec.Struct, kw_only=True):
    """Keyword construction; msgspec leaves ``UNSET`` fields out of the JSON, and Litestar derives the OpenAPI
    schema from the fields."""

    def to_dict(self) -> dict[str, Any]:
        """Plain values (the JSON the API sends), for code that stores, logs or compares them."""
        return msgspec.to_builtins(self)
