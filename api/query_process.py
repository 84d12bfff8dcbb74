"""The API's handle on one query child process (api/query_worker.py): start it, feed it the
snapshot's views, and kill it at the timeout or when it passes its memory limit."""

from __future__ import annotations

import multiprocessing
import os
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from api.errors import ApiError, SnapshotReadError
from api.query_worker import Recipe, serve
from api.sqlguard import QueryFailedError, QueryRefusedError, QueryTimeoutError

WATCH_EVERY_S = 0.01  # how often the child's memory is read while it runs
PAGE = os.sysconf("SC_PAGE_SIZE")


class QueryMemoryError(ApiError):
    """The query needed more memory than JOURNEY_QUERY_MEMORY_MB and was stopped."""

    code = "query_memory_limit"


class QueryBusyError(ApiError):
    """Every query process was busy for the whole timeout."""

    status = 503
    code = "query_busy"


class QueryWorkerLostError(ApiError):
    """The query process died on its own (a crash); a retry starts a new one."""

    status = 503
    code = "query_worker_lost"


@dataclass(frozen=True, slots=True)
class Limits:
    """The bounds of one statement."""

    timeout_s: float
    memory_bytes: int
    max_bytes: int


def _rss(pid: int) -> int:
    """Resident bytes of a process (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            return int(statm.read().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


class QueryProcess:
    """One child at a time; it is replaced after it was killed or died."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._proc: BaseProcess | None = None
        self._conn: Connection | None = None
        self._version: int | None = None
        self.peak_rss = 0  # the largest resident size seen, for tests and logs

    def _start(self) -> Connection:
        if self._proc is not None and self._proc.is_alive() and self._conn is not None:
            return self._conn
        self.close()
        spawn = multiprocessing.get_context("spawn")  # fork would copy DuckDB's held locks
        parent, child = spawn.Pipe()
        self._proc = spawn.Process(target=serve, args=(child, self.limits.max_bytes),
                                   name="journey-query", daemon=True)
        self._proc.start()
        child.close()
        self._conn, self._version = parent, None
        return parent

    def run(self, plan: Recipe, sql: str, limit: int) -> bytes:
        """The JSON answer of `sql` on the snapshot of `plan`, within the limits."""
        conn = self._start()
        if self._version != plan.version:
            # Starting the child and attaching the snapshot have their own bound: under load they
            # can take longer than a short statement timeout, which is the statement's alone.
            self._ask(conn, ("load", plan), time.monotonic() + max(self.limits.timeout_s, 30.0))
            self._version = plan.version
        return self._ask(conn, ("run", sql, limit), time.monotonic() + self.limits.timeout_s)

    def _ask(self, conn: Connection, message: tuple[Any, ...], deadline: float) -> bytes:
        conn.send(message)
        pid = self._proc.pid if self._proc is not None else None
        while not conn.poll(WATCH_EVERY_S):
            rss = _rss(pid) if pid is not None else 0
            self.peak_rss = max(self.peak_rss, rss)
            if rss > self.limits.memory_bytes:
                self.close()
                mb = self.limits.memory_bytes // 2**20
                raise QueryMemoryError(f"the query needed more than {mb} MB and was stopped",
                                       memory_mb=mb)
            if time.monotonic() > deadline:
                self.close()
                raise QueryTimeoutError(f"the query ran longer than {self.limits.timeout_s:g}s "
                                        "and was stopped", timeout_s=self.limits.timeout_s)
            if self._proc is None or not self._proc.is_alive():
                self.close()
                raise QueryWorkerLostError("the query process died; retry")
        try:
            reply = conn.recv()
        except (EOFError, OSError):
            self.close()
            raise QueryWorkerLostError("the query process died; retry") from None
        if reply[0] == "ok":
            body: bytes = reply[1]
            return body
        _, kind, message_text, detail = reply
        if kind == "refused":
            raise QueryRefusedError("the query needs access that is not allowed",
                                    reason="permission", detail=detail)
        if kind == "io":
            raise SnapshotReadError("a file of the warehouse snapshot could not be read; retry",
                                    detail=detail)
        raise QueryFailedError(f"DuckDB could not run the query: {message_text}", detail=detail)

    def close(self) -> None:
        """Kill the child (if any); the next run starts a new one."""
        proc, conn = self._proc, self._conn
        self._proc, self._conn, self._version = None, None, None
        if conn is not None:
            conn.close()
        if proc is not None and proc.is_alive():
            proc.kill()
            proc.join(5)
