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

_UP: tuple[str, ...] = (
    # one row: the change counter; every write takes its row lock first, so writers queue one at a time
    """CREATE TABLE operations_counter (
        only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
        version bigint NOT NULL
    )""",
    "INSERT INTO operations_counter (version) VALUES (0)",
    """CREATE TABLE rules (
        name text PRIMARY KEY,
        action text NOT NULL,
        expression text NOT NULL,
        enabled boolean NOT NULL,
        description text NOT NULL,
        version integer NOT NULL,
        position bigint NOT NULL
    )""",
    """CREATE TABLE rule_versions (
        name text NOT NULL,
        version integer NOT NULL,
        change text NOT NULL,
        action text NOT NULL,
        expression text NOT NULL,
        enabled boolean NOT NULL,
        description text NOT NULL,
        changed_by text NOT NULL,
        changed_at timestamptz NOT NULL,
        reason text NOT NULL,
        PRIMARY KEY (name, version)
    )""",
    """CREATE TABLE lists (
        name text PRIMARY KEY,
        field text NOT NULL,
        changed bigint NOT NULL,
        description text NOT NULL,
        created_by text NOT NULL,
        created_at timestamptz NOT NULL,
        reason text NOT NULL
    )""",
    # items in value order as SQLite gives them (bytewise), whatever the database's locale
    """CREATE TABLE list_items (
        list text NOT NULL,
        value text COLLATE "C" NOT NULL,
        reason text NOT NULL,
        expires_at timestamptz,
        added_by text NOT NULL,
        added_at timestamptz NOT NULL,
        PRIMARY KEY (list, value)
    )""",
    """CREATE TABLE list_log (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        list text NOT NULL,
        change text NOT NULL,
        value text,
        changed_by text NOT NULL,
        changed_at timestamptz NOT NULL,
        reason text NOT NULL
    )""",
    "CREATE INDEX list_log_list ON list_log (list, id)",
)
# dropped by downgrade, last created first
_TABLES: tuple[str, ...] = ("list_log", "list_items", "lists", "rule_versions", "rules", "operations_counter")


def upgrade() -> None:
    for statement in _UP:
        op.execute(statement)


def downgrade() -> None:
    for table in _TABLES:
        op.execute(f"DROP TABLE {table}")
