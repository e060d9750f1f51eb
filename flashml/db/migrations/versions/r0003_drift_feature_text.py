"""Drift feature names of any length: ``drift_scores.feature`` becomes TEXT.

A feature is named after the model's own tensor (``<input>[<column>]``, ``output:<output>``), and ONNX puts no bound
on a tensor's name. PostgreSQL refused a name over VARCHAR(255) and the whole drift round of that model with it;
SQLite stored it whole. Cutting the name could make two features one, so the column grows instead.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SQLite cannot alter a column's type: batch mode copies the table into one of the new shape (PostgreSQL alters
    # it in place).
    with op.batch_alter_table("drift_scores") as batch:
        batch.alter_column("feature", type_=sa.Text(), existing_type=sa.String(255), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("drift_scores") as batch:
        batch.alter_column("feature", type_=sa.String(255), existing_type=sa.Text(), existing_nullable=False)
