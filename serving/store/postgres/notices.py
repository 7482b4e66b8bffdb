"""Change notices between the instances of a fleet: PostgreSQL's NOTIFY, heard by one LISTEN thread each.

An instance that changes what every instance serves (a model reload asked of it, a rule or list change)
sends a notice on a channel (:func:`notify`, inside the change's transaction where there is one: PostgreSQL
delivers it at commit, never for a change rolled back). Each instance runs a :class:`Listener` on a
connection of its own (not the pool's: LISTEN holds it) and calls the channel's handler for each notice.
Notices are a prompt, not the record: a handler re-reads the shared state, so a notice lost while the
connection was down is made good when it comes back (every handler is called once on each (re)connection)
and by the periodic checks that stay on as the fallback.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, Final

import psycopg

from serving.store.postgres.database import redact

logger = logging.getLogger(__name__)

#: Reload the models (``@alias`` moved: ``riskgate promote``, or ``POST /v1/admin/reload`` on any instance).
RELOAD: Final = "riskgate_reload"
#: Serve the rules store's changes (a rule or list changed through any instance or ``riskgate rules load``).
RULES: Final = "riskgate_rules"
#: How long one wait for notices lasts before the thread looks whether it should stop (seconds).
WAIT_S: Final = 0.5
#: Reconnection backoff after the connection drops: first wait, and the most (seconds).
BACKOFF_S: Final = (0.2, 5.0)


def notify(connection: psycopg.Connection[Any], channel: str, payload: str = "") -> None:
    """Send a notice on ``channel`` (inside ``connection``'s transaction: delivered when it commits)."""
    connection.execute("SELECT pg_notify(%s, %s)", (channel, payload))


def notify_url(url: str, channel: str, payload: str = "") -> None:
    """Send a notice on ``channel`` over a short connection of its own (e.g. from a command)."""
    with psycopg.connect(url, autocommit=True) as connection:
        notify(connection, channel, payload)


class Listener:
    """A daemon thread that LISTENs on the handlers' channels and calls each handler with a notice's
    payload; a handler that raises is logged and the thread goes on. Reconnects with backoff."""

    def __init__(self, url: str, handlers: Mapping[str, Callable[[str], None]]) -> None:
        self.url = url
        self.handlers = dict(handlers)
        self.connected = threading.Event()  # set while LISTENing
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="riskgate-notices", daemon=True)
        self._reconnection = False

    def start(self) -> Listener:
        self._thread.start()
        return self

    def _run(self) -> None:
        wait = BACKOFF_S[0]
        while not self._stop.is_set():
            try:
                self._listen()
                wait = BACKOFF_S[0]
            except psycopg.Error as error:
                self.connected.clear()
                if self._stop.is_set():
                    break
                logger.warning(
                    "notices from %s interrupted (%s): reconnecting in %.1f s", redact(self.url), error, wait
                )
                self._stop.wait(wait)
                wait = min(wait * 2, BACKOFF_S[1])

    def _listen(self) -> None:
        with psycopg.connect(self.url, autocommit=True, application_name="riskgate-notices") as connection:
            for channel in self.handlers:
                connection.execute(f'LISTEN "{channel}"')
            self.connected.set()
            if self._reconnection:  # what changed while the connection was down is read now
                for channel in self.handlers:
                    self._handle(channel, "")
            self._reconnection = True
            while not self._stop.is_set():
                for notice in connection.notifies(timeout=WAIT_S):
                    self._handle(notice.channel, notice.payload)

    def _handle(self, channel: str, payload: str) -> None:
        handler = self.handlers.get(channel)
        if handler is None:  # pragma: no cover - only the handlers' channels are listened to
            return
        try:
            handler(payload)
        except Exception:
            logger.exception("handling a notice on %s failed; the periodic check will catch up", channel)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2 * WAIT_S + 5)
        self.connected.clear()
