"""PostgreSQL: what the service keeps, shared by every instance of a fleet (``RISKGATE_DATABASE_URL``).

:mod:`.database` holds the connection pool; :mod:`.schema` applies and checks the versioned schema (Alembic
migrations in ``migrations/versions``). Each store's PostgreSQL implementation sits beside its SQLite one and
satisfies the same Protocol.
"""
