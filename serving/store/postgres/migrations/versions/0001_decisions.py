"""The decision log: decisions, outcomes, fraud reports and erasures (as the SQLite log's version 3).

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_UP = (
    """CREATE TABLE decisions (
        attempt_id text PRIMARY KEY,
        decided_at timestamptz NOT NULL,
        occurred_at timestamptz NOT NULL,
        occurred_us bigint NOT NULL,
        account_key text,
        method_key text,
        kind text,
        fingerprint text,
        action text NOT NULL,
        rule text NOT NULL,
        decided_by text NOT NULL DEFAULT 'policy',
        fallback boolean NOT NULL,
        fraud_probability double precision,
        failure_probability double precision,
        fraud_level text,
        fraud_model text,
        failure_model text,
        plan_tier text,
        plan_period text,
        method_type text,
        card_funding text,
        card_country text,
        amount double precision,
        currency text,
        answer text NOT NULL,
        features bytea,
        attributes text,
        fields text,
        erased_at timestamptz
    )""",
    "CREATE INDEX decisions_account ON decisions (account_key) WHERE account_key IS NOT NULL",
    "CREATE INDEX decisions_method ON decisions (method_key) WHERE method_key IS NOT NULL",
    # covers the trends and drift scores (attempt_id: the join to outcomes and reports), read index-only
    "CREATE INDEX decisions_time ON decisions (occurred_us) INCLUDE (attempt_id, action, fraud_probability, "
    "failure_probability, amount, currency, kind, plan_tier, plan_period, method_type, card_funding, "
    "card_country, fraud_model, failure_model)",
    """CREATE TABLE outcomes (
        attempt_id text PRIMARY KEY,
        occurred_at timestamptz NOT NULL,
        status text NOT NULL,
        decline_code text,
        received_at timestamptz NOT NULL
    )""",
    """CREATE TABLE fraud_reports (
        report_id text PRIMARY KEY,
        attempt_id text NOT NULL,
        reported_at timestamptz NOT NULL,
        report_type text NOT NULL,
        received_at timestamptz NOT NULL
    )""",
    "CREATE INDEX fraud_reports_attempt ON fraud_reports (attempt_id)",
    """CREATE TABLE erasures (
        account_key text NOT NULL,
        erased_at timestamptz NOT NULL,
        decisions integer NOT NULL,
        online_events integer NOT NULL
    )""",
)


def upgrade() -> None:
    for statement in _UP:
        op.execute(statement)


def downgrade() -> None:
    for table in ("erasures", "fraud_reports", "outcomes", "decisions"):
        op.execute(f"DROP TABLE {table}")
