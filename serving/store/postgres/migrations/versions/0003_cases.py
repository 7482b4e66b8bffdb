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

_UP: tuple[str, ...] = (
    """CREATE TABLE review_values (
        attempt_id text PRIMARY KEY,
        vals text NOT NULL
    )""",
    """CREATE TABLE review_claims (
        attempt_id text PRIMARY KEY,
        claimed_by text NOT NULL,
        claimed_at timestamptz NOT NULL,
        until timestamptz NOT NULL
    )""",
    """CREATE TABLE review_resolutions (
        attempt_id text PRIMARY KEY,
        outcome text NOT NULL,
        note text NOT NULL,
        resolved_by text NOT NULL,
        resolved_at timestamptz NOT NULL,
        report_id text
    )""",
    # the queue's order, on review decisions only (other decisions never pay for it)
    "CREATE INDEX decisions_review ON decisions (decided_at, attempt_id) WHERE action = 'review'",
    # when the queue started: review decisions logged before (none, in a database made by this schema) are
    # not cases
    """CREATE TABLE review_queue (
        only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
        since timestamptz NOT NULL
    )""",
    "INSERT INTO review_queue (since) VALUES (now())",
)
# dropped by downgrade, last created first (after the index on the decisions)
_TABLES: tuple[str, ...] = ("review_queue", "review_resolutions", "review_claims", "review_values")


def upgrade() -> None:
    for statement in _UP:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP INDEX decisions_review")
    for table in _TABLES:
        op.execute(f"DROP TABLE {table}")
