"""Failed sign-ins in the change feed: ``changes.address``, the client address a sign-in came from.

Each node's sign-in brake counts failures per address and account; with the failures of the other nodes read from
the feed, guessing through a load balancer is held back as it is on one node (N nodes no longer mean N times the
guesses).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("changes", sa.Column("address", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("changes") as batch:
        batch.drop_column("address")
