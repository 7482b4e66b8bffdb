"""Billing state: invoices, submissions and paid periods (as the SQLite billing store's version 1; times in
microseconds since the epoch, as the checks keep them).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_UP: tuple[str, ...] = (
    """CREATE TABLE billing_invoices (
        invoice_id text PRIMARY KEY,
        account_id text NOT NULL,
        kind text,
        opened_us bigint NOT NULL,
        plan_period text,
        plan_tier text,
        currency text,
        approved_attempt text,
        pending_attempt text,
        pending_retry integer,
        pending_us bigint
    )""",
    """CREATE TABLE billing_submissions (
        attempt_id text PRIMARY KEY,
        invoice_id text NOT NULL
    )""",
    """CREATE TABLE billing_paid_periods (
        account_id text PRIMARY KEY,
        started_us bigint NOT NULL,
        plan_period text NOT NULL,
        invoice_id text NOT NULL
    )""",
)
_TABLES: tuple[str, ...] = ("billing_paid_periods", "billing_submissions", "billing_invoices")


def upgrade() -> None:
    for statement in _UP:
        op.execute(statement)


def downgrade() -> None:
    for table in _TABLES:
        op.execute(f"DROP TABLE {table}")
