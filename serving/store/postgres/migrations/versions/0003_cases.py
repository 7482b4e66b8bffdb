"""The review queue: case values, claims and resolutions beside the decisions.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_UP: tuple[str, ...] = ()  # TO BE WRITTEN by the cases store's PostgreSQL implementation
_TABLES: tuple[str, ...] = ()  # dropped by downgrade, last created first


def upgrade() -> None:
    for statement in _UP:
        op.execute(statement)


def downgrade() -> None:
    for table in _TABLES:
        op.execute(f"DROP TABLE {table}")
