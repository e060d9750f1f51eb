"""Baseline: the schema of the last release without migrations (git a17f706).

A database that release made is stamped at this revision instead of running it (flashml.db.migrate).

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from alembic import op

from flashml.db.migrations.baseline_schema import metadata

revision = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    metadata.create_all(op.get_bind())


def downgrade() -> None:
    metadata.drop_all(op.get_bind())
