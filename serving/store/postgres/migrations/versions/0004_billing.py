"""Billing state: open invoices, submissions and paid periods.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_UP: tuple[str, ...] = ()  # TO BE WRITTEN by the billing store's PostgreSQL implementation
_TABLES: tuple[str, ...] = ()  # dropped by downgrade, last created first


def upgrade() -> None:
    for statement in _UP:
        op.execute(statement)


def downgrade() -> None:
    for table in _TABLES:
        op.execute(f"DROP TABLE {table}")
