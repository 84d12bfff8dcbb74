"""Helpers shared by the pipeline benchmarks: demo events, ports, peak RSS, a Kafka broker."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # run as a script: the package is not installed

from ingest.normalize import normalize  # noqa: E402
from journey.demo import generate  # noqa: E402
from journey.schema import Event  # noqa: E402

RECEIVED_AT = datetime(2026, 6, 1, tzinfo=UTC)


def demo_events(customers: int, seed: int = 7) -> list[Event]:
    """The demo's Segment messages for `customers` people, normalised like the collector does."""
    return [normalize(m, RECEIVED_AT) for m in generate(customers=customers, seed=seed)]


class Timed:
    """A DuckDB connection whose statements are timed into `spent` (keyed by their first 100
    characters, whitespace folded); anything else goes to the connection itself."""

    def __init__(self, con: Any, spent: dict[str, float]) -> None:
        self._con, self.spent = con, spent

    def execute(self, sql: str, *args: Any) -> Any:
        began = time.perf_counter()
        try:
            return self._con.execute(sql, *args)
        finally:
            key = re.sub(r"\s+", " ", sql.strip())[:100]
            self.spent[key] = self.spent.get(key, 0.0) + time.perf_counter() - began

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _status_mb(pid: int, field: str) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def peak_rss_mb(pid: int) -> float:
    """Peak resident set size (VmHWM) of a live process, in MiB; 0 when it is gone."""
    return _status_mb(pid, "VmHWM")


def rss_mb(pid: int) -> float:
    """Current resident set size (VmRSS) of a live process, in MiB; 0 when it is gone."""
    return _status_mb(pid, "VmRSS")


def _tree(pid: int) -> list[int]:
    """A process and its live descendants."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return [pid]
    return [pid, *(p for c in children for p in _tree(int(c)))]


def tree_peak_rss_mb(pid: int) -> float:
    """Peak RSS of a process plus its live descendants (each one's own peak), in MiB."""
    return sum(peak_rss_mb(p) for p in _tree(pid))


def tree_rss_mb(pid: int) -> float:
    """Current RSS of a process plus its live descendants, summed at one moment, in MiB."""
    return sum(rss_mb(p) for p in _tree(pid))


@contextmanager
def kafka_broker(data_dir: Path) -> Iterator[str]:
    """A throw-away broker started with scripts/kafka.sh for the duration of the block."""
    script = str(REPO / "scripts" / "kafka.sh")
    port, controller = free_port(), free_port()
    subprocess.run(["bash", script, "start", str(data_dir), str(port), str(controller)], check=True)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run(["bash", script, "stop", str(data_dir)], check=True)


def kafka_pid(data_dir: Path) -> int | None:
    """The pid of the broker started in data_dir, if it is running."""
    try:
        return int((data_dir / "kafka.pid").read_text().strip())
    except (OSError, ValueError):
        return None
