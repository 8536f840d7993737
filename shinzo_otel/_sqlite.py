"""SQLite plumbing shared by the embedded store and the admin session state file."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

BUSY_TIMEOUT_SECONDS: Final = 5.0
"""How long a writer waits for another process's write lock before failing."""

_WAL_RETRY_SECONDS: Final = 0.005


def _enable_wal(connection: sqlite3.Connection) -> None:
    """Switch `connection`'s database to WAL mode, waiting up to `BUSY_TIMEOUT_SECONDS` for it.

    SQLite answers `PRAGMA journal_mode = WAL` with SQLITE_BUSY at once, without calling the busy
    handler, while another connection is switching the same new file (several exporters starting
    together), so the busy timeout alone does not cover it: the pragma is retried until the deadline.

    Raises:
        sqlite3.OperationalError: still locked at the deadline, or any other error at once.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
    while True:
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if not str(error).startswith("database is locked") or time.monotonic() >= deadline:
                raise
        time.sleep(_WAL_RETRY_SECONDS)


@contextmanager
def transaction(connection: sqlite3.Connection) -> Iterator[None]:
    """`BEGIN IMMEDIATE` ... `COMMIT` (rollback on any exception) on an autocommit connection.

    IMMEDIATE takes the write lock up front, so a concurrent writer (another process on the same
    file) waits on the busy timeout instead of failing in the middle of the transaction.
    """
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        connection.rollback()
        raise
    connection.commit()


class ForkSafeConnection:
    """One lazily opened read-write connection (autocommit, WAL) to `path`, reopened in a child
    process after a fork: a connection must not cross a fork (sqlite.org/howtocorrupt.html 2.6).

    Args:
        path: the database file; missing parent directories are created.
        prepare: run once on each new connection (pragmas, schema creation or check); if it raises,
            the connection is closed and the error propagates.

    Not locked: the owner serializes access.
    """

    def __init__(self, path: Path, prepare: Callable[[sqlite3.Connection], None]) -> None:
        self._path = path
        self._prepare = prepare
        self._connection: sqlite3.Connection | None = None
        self._pid = 0

    def get(self) -> sqlite3.Connection:
        """The connection of this process, opened and prepared on first use."""
        if self._connection is not None and self._pid == os.getpid():
            return self._connection
        self._path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(
            self._path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
        )
        try:
            _enable_wal(connection)
            self._prepare(connection)
        except BaseException:
            connection.close()
            raise
        self._connection, self._pid = connection, os.getpid()
        return connection

    def close(self) -> None:
        """Close this process's connection (a parent's connection is left alone)."""
        if self._connection is not None and self._pid == os.getpid():
            self._connection.close()
        self._connection = None
