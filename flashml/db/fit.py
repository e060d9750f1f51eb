"""Strings cut to their column's length before they are written.

PostgreSQL refuses a value longer than its VARCHAR(n) column (SQLite stores it whole), and some values are not
bounded where they are made: an actor joins a key's name (up to 128 characters) to the name of whoever made the key,
who may be a key made by another key; a file name comes from a query string. Cut here, where every writer passes, a
long name reads the same on both engines instead of failing the request on one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import String, Table


def fit(table: Table, values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` with each string longer than its String(n) column of ``table`` cut to n characters."""
    out = dict(values)
    for name, value in values.items():
        column = table.c.get(name)
        length = column.type.length if column is not None and isinstance(column.type, String) else None
        if isinstance(value, str) and length is not None and len(value) > length:
            out[name] = value[:length]
    return out
