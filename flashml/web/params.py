"""Path parameters shared by the JSON API and the console."""

from __future__ import annotations

from typing import Annotated

from litestar.params import Parameter

# Row ids and version numbers are SQLite (and PostgreSQL BIGINT) integers: a larger number in a path names
# nothing, and handing it to the database fails with an OverflowError (a 500) instead of a clear 400.
MAX_ROW_ID = 2**63 - 1

RowId = Annotated[int, Parameter(ge=0, le=MAX_ROW_ID, description="A whole number (a row id or version).")]
