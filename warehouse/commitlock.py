"""The commit lock: several processors share one lake and take turns to commit to it.

DuckLake would detect two overlapping commits and fail one of them, but a processor whose commit
failed has to redo its batch; a lock held only around each commit costs a few ms and makes them
queue instead. Both implementations are freed by the operating system or the server when their
holder dies (a closed descriptor, a closed connection), so a crashed processor never blocks the
others.

- `FileCommitLock`: `flock` on a file beside the lake (one machine, the SQLite catalog).
- `PgCommitLock`: a PostgreSQL session advisory lock in the catalog's database (several machines).
  It uses its own psycopg connection: DuckDB's postgres extension keeps a pool of connections and
  gives no way to run the unlock on the connection that took the lock.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from warehouse.errors import CommitLockStateError, WarehouseIOError, WarehouseLockedError
from warehouse.lake import Location

if TYPE_CHECKING:
    import psycopg

LOCK_FILE = ".commit.lock"
DEFAULT_TIMEOUT_S = 10.0
POLL_S = 0.01  # short against a commit's duration
KEY_PREFIX = b"journey.commit:"


class CommitLock(Protocol):
    """An exclusive lock around one commit, reusable for any number of acquire/release cycles."""

    def acquire(self, timeout_s: float | None = None) -> None:
        """Wait at most timeout_s (the lock's default when None); WarehouseLockedError then."""

    def release(self) -> None:
        """Let the next writer commit."""

    def close(self) -> None:
        """Release if held and free the descriptor or connection."""

    def __enter__(self) -> CommitLock: ...

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        ...


class _Base:
    """The state checks and the context manager both implementations share."""

    def __init__(self, what: str, timeout_s: float) -> None:
        self.what = what  # where the lock lives, for errors
        self.timeout_s = timeout_s
        self.held = False

    def acquire(self, timeout_s: float | None = None) -> None:
        """Wait at most timeout_s (the lock's default when None); WarehouseLockedError then."""
        if self.held:
            # A second acquire would succeed silently on both backends (the lock is per
            # descriptor or per session), hiding a missing release.
            raise CommitLockStateError("the commit lock is already held by this writer",
                                       lock=self.what)
        wait = self.timeout_s if timeout_s is None else timeout_s
        self._acquire(max(0.0, wait))
        self.held = True

    def release(self) -> None:
        """Let the next writer commit."""
        if not self.held:
            raise CommitLockStateError("the commit lock is not held", lock=self.what)
        self.held = False
        self._release()

    def close(self) -> None:
        """Release if held and free the descriptor or connection."""
        self.held = False
        self._close()

    def __enter__(self) -> _Base:
        self.acquire()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.release()

    def _locked(self, timeout_s: float) -> WarehouseLockedError:
        return WarehouseLockedError("another writer holds the commit lock", root=self.what,
                                    timeout_s=timeout_s)

    def _acquire(self, timeout_s: float) -> None:
        raise NotImplementedError

    def _release(self) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError


def flock_within(fd: int, mode: int, timeout_s: float, poll_s: float = POLL_S) -> bool:
    """Take an flock (LOCK_EX or LOCK_SH) on fd, waiting at most timeout_s; whether it was taken.
    flock has no timeout of its own, so it is polled."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(poll_s)


class FileCommitLock(_Base):
    """An exclusive flock on a file; the descriptor stays open between cycles."""

    def __init__(self, path: Path, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        super().__init__(str(path), timeout_s)
        self.path = path
        self._fd: int | None = None

    def _acquire(self, timeout_s: float) -> None:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        if not flock_within(self._fd, fcntl.LOCK_EX, timeout_s):
            raise self._locked(timeout_s)

    def _release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # also drops the flock if it was held
            self._fd = None


def lock_key(conninfo: str) -> int:
    """The advisory lock's signed 64-bit key. Advisory locks are already per database; the
    database name goes in too so that the key reads as this lake's in pg_locks' objid pairs."""
    from psycopg.conninfo import conninfo_to_dict

    dbname = str(conninfo_to_dict(conninfo).get("dbname") or "")
    digest = hashlib.sha256(KEY_PREFIX + dbname.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PgCommitLock(_Base):
    """A session advisory lock on its own connection, kept open between cycles."""

    def __init__(self, conninfo: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        super().__init__("postgres catalog", timeout_s)  # the conninfo may hold a password
        self.conninfo = conninfo
        self.key = lock_key(conninfo)
        # psycopg is imported only by lakes with a PostgreSQL catalog (about 100 ms).
        self._con: psycopg.Connection[tuple[Any, ...]] | None = None

    def _connection(self, timeout_s: float) -> psycopg.Connection[tuple[Any, ...]]:
        import psycopg

        if self._con is None or self._con.closed:
            try:
                self._con = psycopg.connect(
                    self.conninfo, autocommit=True, application_name="journey-commit-lock",
                    connect_timeout=max(2, int(timeout_s) + 1))
            except psycopg.OperationalError as error:
                raise WarehouseIOError("cannot connect to the PostgreSQL catalog for the commit "
                                       "lock", path=self.what, detail=str(error)) from None
        return self._con

    def _acquire(self, timeout_s: float) -> None:
        import psycopg

        con = self._connection(timeout_s)
        try:
            if timeout_s <= 0:  # lock_timeout = 0 would mean "wait for ever"
                row = con.execute("SELECT pg_try_advisory_lock(%s)", [self.key]).fetchone()
                if row is None or not row[0]:
                    raise self._locked(timeout_s)
                return
            # The server does the waiting, and lock_timeout ends it: no polling.
            con.execute(f"SET lock_timeout = {max(1, round(timeout_s * 1000))}")
            con.execute("SELECT pg_advisory_lock(%s)", [self.key])
        except psycopg.errors.LockNotAvailable:
            raise self._locked(timeout_s) from None
        except psycopg.OperationalError as error:
            self._drop()
            raise WarehouseIOError("the commit lock's connection to the PostgreSQL catalog "
                                   "failed", path=self.what, detail=str(error)) from None

    def _release(self) -> None:
        import psycopg

        if self._con is None:
            return  # the connection failed while held: the server has already let go
        try:
            self._con.execute("SELECT pg_advisory_unlock(%s)", [self.key])
        except psycopg.OperationalError:
            self._drop()  # the session is gone, and its locks with it

    def _close(self) -> None:
        self._drop()

    def _drop(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None


def commit_lock(location: Location, root: Path,
                timeout_s: float = DEFAULT_TIMEOUT_S) -> CommitLock:
    """The commit lock of a lake: advisory in its PostgreSQL catalog, else a file in root."""
    if location.pg_conninfo is not None:
        return PgCommitLock(location.pg_conninfo, timeout_s)
    return FileCommitLock(root / LOCK_FILE, timeout_s)
