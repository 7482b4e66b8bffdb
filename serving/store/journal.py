"""The service's journal: every decision, appended to a file before it is answered.

With write-behind (the default for one process over SQLite), a decision is durable once its journal record
is written: one ``write`` to a file (the operating system keeps it through a kill of the process; with
``fsync`` also through a power loss) instead of two SQLite commits. The decision log and the online store
take the records into SQLite later, in batches (:mod:`serving.store.writebehind`), each with the journal
position
it completes; a restart applies the records after those positions again, then the files they came from are
deleted.

Layout: ``<directory>/<first position, 16 digits>.log`` segments; a new segment starts at every flush, and a
segment is deleted once everything in it is in SQLite. A record is framed as ``length (4 bytes) | CRC-32 of
position and payload (4) | position (8) | payload``; a torn or corrupt record ends its segment (it can only
be the last one a killed process was writing, and its decision was never answered).

Only one process may write a state directory's journal: :class:`Journal` holds an exclusive ``flock`` on
``<directory>/LOCK`` while open, and a process that shares the state through SQLite alone (``--workers N``)
holds it shared (:func:`shared_lock`), so the two modes are never mixed on one state directory.
"""

from __future__ import annotations

import base64
import fcntl
import logging
import os
import struct
import threading
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import fields
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import orjson

from core.errors import RiskgateError
from serving.store.base import DecisionRecord

logger = logging.getLogger(__name__)

_HEADER: Final = struct.Struct("<IIQ")  # payload length, CRC-32, position
_SUFFIX: Final = ".log"


class JournalError(RiskgateError, RuntimeError):
    """The journal cannot be opened or written (locked by another process, disk full, ...)."""


def _lock(directory: Path, mode: int) -> int:
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / "LOCK", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise JournalError(
            f"the state directory's journal {directory} is in use by another riskgate process: one process "
            "serves a state directory with write-behind (RISKGATE_WRITE_BEHIND=true, the default); several "
            "processes (`riskgate serve --workers N`) share it through SQLite with write-behind off"
        ) from None
    return fd


def shared_lock(directory: Path) -> int:
    """Hold the journal's lock shared (a process writing SQLite directly); returns the fd to close."""
    return _lock(directory, fcntl.LOCK_SH)


class Journal:
    """Append-only, segmented, position-numbered records (see module)."""

    def __init__(self, directory: Path, fsync: bool = False) -> None:
        self.directory = directory
        self.fsync = fsync
        self._lock_fd = _lock(directory, fcntl.LOCK_EX)
        self._mutex = threading.Lock()
        #: closed segments (a restart finds only those) and the last position in each
        self._closed_last = {path: _last_in(path) for path in sorted(directory.glob(f"*{_SUFFIX}"))}
        self.last = max(self._closed_last.values(), default=0)
        self._fd: int | None = None
        self._current: Path | None = None

    def append(self, payload: bytes) -> int:
        """Write one record; returns its position. Durable when this returns (see ``fsync``)."""
        with self._mutex:
            position = self.last + 1
            if self._fd is None:
                self._open_segment(position)
            header = _HEADER.pack(len(payload), _crc(position, payload), position)
            try:
                _write_all(self._fd, header + payload)  # type: ignore[arg-type]
                if self.fsync:
                    os.fdatasync(self._fd)  # type: ignore[arg-type]
            except OSError as error:
                raise JournalError(f"cannot write the journal {self._current}: {error}") from error
            self.last = position
            return position

    def advance(self, position: int) -> None:
        """Number the next record after ``position`` at least (positions never repeat: SQLite remembers the
        last one it holds after the journal's segments are gone)."""
        with self._mutex:
            self.last = max(self.last, position)

    def rotate(self) -> int:
        """Start a new segment at the next append; returns the last position written so far.

        Everything up to the returned position lives in closed segments, which :meth:`release` deletes once
        SQLite holds it.
        """
        with self._mutex:
            if self._fd is not None and self._current is not None:
                os.close(self._fd)
                self._closed_last[self._current] = self.last
                self._fd, self._current = None, None
            return self.last

    def release(self, through: int) -> int:
        """Delete the closed segments whose records are all at or before ``through``; returns how many."""
        with self._mutex:
            done = [path for path, last in self._closed_last.items() if last <= through]
            for path in done:
                path.unlink(missing_ok=True)
                del self._closed_last[path]
            return len(done)

    def replay(self) -> Iterator[tuple[int, bytes]]:
        """Every record still in the journal, in position order (what a restart applies again)."""
        for path in sorted(self._closed_last):
            yield from _records(path)

    def close(self) -> None:
        with self._mutex:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            os.close(self._lock_fd)

    def _open_segment(self, first: int) -> None:
        path = self.directory / f"{first:016d}{_SUFFIX}"
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._current = path  # released only once rotate() has closed it


def _last_in(path: Path) -> int:
    return max((position for position, _ in _records(path)), default=0)


def _crc(position: int, payload: bytes) -> int:
    return zlib.crc32(payload, zlib.crc32(position.to_bytes(8, "little")))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _records(path: Path) -> Iterator[tuple[int, bytes]]:
    """The intact records of one segment; a torn or corrupt record ends it (logged)."""
    data = path.read_bytes()
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, crc, position = _HEADER.unpack_from(data, offset)
        payload = data[offset + _HEADER.size : offset + _HEADER.size + length]
        if len(payload) < length or _crc(position, payload) != crc:
            logger.warning("journal %s: record at byte %d torn or corrupt; the rest is ignored", path, offset)
            return
        yield position, payload
        offset += _HEADER.size + length
    if offset != len(data):
        logger.warning("journal %s: %d trailing bytes of a torn record ignored", path, len(data) - offset)


# -- a decision as a journal record (whatever store takes it later) --------------------

_RECORD_FIELDS: Final = tuple(f.name for f in fields(DecisionRecord))


def journal_payload(
    decision: DecisionRecord, decided_at: str, attempt: Mapping[str, object] | None, answer: bytes
) -> bytes:
    """A decision (``answer``: its answer as JSON) and the attempt it answered, as one journal record."""
    values: dict[str, Any] = {name: getattr(decision, name) for name in _RECORD_FIELDS}
    values["answer"] = orjson.Fragment(answer)
    if decision.features is not None:
        values["features"] = base64.b64encode(decision.features).decode()
    record: dict[str, Any] = {"decided_at": decided_at, "decision": values, "attempt": attempt}
    if attempt is not None:  # the attempt's times (occurred_at, time attributes) come back as datetimes
        times = [name for name, value in attempt.items() if isinstance(value, datetime)]
        if times != _ATTEMPT_TIMES:
            record["times"] = times
    return orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY)


_ATTEMPT_TIMES: Final = ["occurred_at"]  # an attempt's times unless its record lists them ("times")


def from_journal(payload: bytes) -> tuple[DecisionRecord, str, dict[str, Any] | None]:
    """``(decision, decided_at, attempt)`` of a journal record (the attempt's times as datetimes)."""
    record = orjson.loads(payload)
    values = dict(record["decision"])
    values["occurred_at"] = datetime.fromisoformat(values["occurred_at"])
    if values.get("features") is not None:
        values["features"] = base64.b64decode(values["features"])
    attempt = record.get("attempt")
    if attempt is not None:
        for name in record.get("times", _ATTEMPT_TIMES):
            attempt[name] = datetime.fromisoformat(attempt[name])
    return DecisionRecord(**values), str(record["decided_at"]), attempt
