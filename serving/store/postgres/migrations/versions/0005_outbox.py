"""The webhook outbox: events and their deliveries (as the SQLite outbox's version 1, times as timestamptz).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_UP: tuple[str, ...] = (
    """CREATE TABLE outbox_events (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id text NOT NULL UNIQUE,
        type text NOT NULL,
        body bytea NOT NULL,
        created_at timestamptz NOT NULL,
        key text,
        fanned boolean NOT NULL DEFAULT false
    )""",
    "CREATE UNIQUE INDEX outbox_events_key ON outbox_events (type, key) WHERE key IS NOT NULL",
    "CREATE INDEX outbox_events_unfanned ON outbox_events (seq) WHERE NOT fanned",
    """CREATE TABLE outbox_deliveries (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        event_seq bigint NOT NULL REFERENCES outbox_events (seq),
        endpoint text NOT NULL,
        state text NOT NULL,
        attempts integer NOT NULL DEFAULT 0,
        last_status integer,
        last_error text,
        next_try timestamptz,
        claimed_until timestamptz,
        settled_at timestamptz,
        UNIQUE (event_seq, endpoint)
    )""",
    "CREATE INDEX outbox_deliveries_due ON outbox_deliveries (next_try) WHERE state = 'pending'",
)
_TABLES: tuple[str, ...] = ("outbox_deliveries", "outbox_events")  # dropped by downgrade, last created first


def upgrade() -> None:
    for statement in _UP:
        op.execute(statement)


def downgrade() -> None:
    for table in _TABLES:
        op.execute(f"DROP TABLE {table}")
