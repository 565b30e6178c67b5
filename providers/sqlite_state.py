"""The local stand-ins keep their state in SQLite: one file each, or memory in tests."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def open_sqlite(path: Path | None, schema: str) -> sqlite3.Connection:
    """Open (creating it and its folder) the database at `path`, or one in memory."""
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    target = str(path) if path is not None else ":memory:"
    # The server may run the app on another thread than the one that built it.
    conn = sqlite3.connect(target, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.executescript(schema)
    return conn


class SqliteState:
    """A stand-in's state; `schema` is the subclass's tables. Opened on first use."""

    schema = ""

    def upgrade(self, conn: sqlite3.Connection) -> None:
        """Bring a state file written by an older version up to `schema` (CREATE IF NOT
        EXISTS leaves existing tables as they were)."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None

    def open(self) -> None:
        """Open the database now, so a bad state path fails at startup."""
        _ = self.conn

    @property
    def conn(self) -> sqlite3.Connection:
        """The open connection, opened on first use."""
        if self._conn is None:
            conn = open_sqlite(self._path, self.schema)
            with conn:
                self.upgrade(conn)
            self._conn = conn
        return self._conn

    def close(self) -> None:
        """Close the connection; an in-memory state is gone afterwards."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
