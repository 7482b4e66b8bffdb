"""The webhook outbox: events and their deliveries.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_UP: tuple[str, ...] = ()  # TO BE WRITTEN by the outbox store's PostgreSQL implementation
_TABLES: tuple[str, ...] = ()  # dropped by downgrade, last created first


def upgrade() -> None:
    for statement in _UP:
        op.execute(statement)


def downgrade() -> None:
    for table in _TABLES:
        op.execute(f"DROP TABLE {table}")
