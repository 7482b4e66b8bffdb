"""One PostgreSQL database shared by the stores of an instance: a bounded pool of connections.

A store borrows a connection for one unit of work (:meth:`Database.transaction`): it commits when the block
ends and rolls back when it raises, so no store ever leaves a transaction open on a pooled connection. The
URL's password never reaches a message or a log (:func:`redact`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from core.urls import redact as redact  # noqa: PLC0414 (re-exported: the stores and `riskgate db` use it)
from serving.errors import ConfigurationError, ServingError

logger = logging.getLogger(__name__)

#: How long a unit of work waits for a free connection before it fails (seconds).
CHECKOUT_TIMEOUT_S: Final = 10.0
#: How long opening the pool waits for its first connection (seconds): a database that is down stops start-up.
CONNECT_TIMEOUT_S: Final = 10.0
_SCHEMES: Final = ("postgresql://", "postgres://")


class DatabaseUnavailableError(ServingError):
    """The database could not be reached, or gave no connection in time."""

    http_status = 503
    code = "database_unavailable"


def check_url(url: str) -> str:
    """``url`` if it names a PostgreSQL database, else a :class:`ConfigurationError` saying what to use."""
    if not url.startswith(_SCHEMES):
        raise ConfigurationError(
            f"RISKGATE_DATABASE_URL={redact(url)!r} is not a PostgreSQL URL: use "
            "postgresql://user:password@host:5432/database (or leave it unset for the SQLite files)"
        )
    return url


class Database:
    """A pool of at most ``size`` connections to the PostgreSQL database at ``url``."""

    def __init__(self, url: str, size: int = 8, *, name: str = "riskgate") -> None:
        self.url = check_url(url)
        self.pool = ConnectionPool(
            self.url,
            min_size=1,
            max_size=max(1, size),
            timeout=CHECKOUT_TIMEOUT_S,
            name=name,
            kwargs={"autocommit": False, "application_name": name},
            open=False,
        )
        try:
            self.pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
        except PoolTimeout as error:
            self.pool.close()
            raise DatabaseUnavailableError(
                f"PostgreSQL at {redact(self.url)} gave no connection within {CONNECT_TIMEOUT_S:.0f} s: "
                "is it running and reachable, and are the user, password and database right?"
            ) from error

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
        """A pooled connection inside one transaction: committed when the block ends, rolled back on error."""
        try:
            with self.pool.connection() as connection:
                yield connection
        except PoolTimeout as error:
            raise DatabaseUnavailableError(
                f"no PostgreSQL connection free within {CHECKOUT_TIMEOUT_S:.0f} s "
                f"({self.pool.max_size} in the pool: RISKGATE_DATABASE_POOL_SIZE)"
            ) from error

    def ping(self) -> bool:
        """Whether the database answers a trivial query now."""
        try:
            with self.transaction() as connection:
                connection.execute("SELECT 1").fetchone()
        except Exception:  # any failure means: not ready
            logger.exception("PostgreSQL readiness probe failed (%s)", redact(self.url))
            return False
        return True

    def close(self) -> None:
        self.pool.close()
