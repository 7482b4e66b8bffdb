"""Rules and lists: the rules, their versions, lists, items and the lists' change log.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_UP: tuple[str, ...] = ()  # TO BE WRITTEN by the operations store's PostgreSQL implementation
_TABLES: tuple[str, ...] = ()  # dropped by downgrade, last created first


def upgrade() -> None:
    for statement in _UP:
        op.execute(statement)


def downgrade() -> None:
    for table in _TABLES:
        op.execute(f"DROP TABLE {table}")
