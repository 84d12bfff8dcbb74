"""Helpers for end-to-end tests: real `journey` processes on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
WRITE_KEY = "wk_e2e"
TOKEN = "tok_e2e"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Proc:
    """A `python -m journey ...` child whose output goes to a log file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args, self.env, self.log = args, env, log
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        with self.log.open("ab") as out:  # the child keeps its own descriptor
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "journey", *self.args], cwd=ROOT, env=self.env,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        return self

    def kill(self) -> None:
        """SIGKILL the whole process group (the child and anything it spawned)."""
        if self.popen and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()

    def stop(self) -> None:
        if self.popen and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def alive(self) -> bool:
        return bool(self.popen and self.popen.poll() is None)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """Environment of a fresh pipeline in tmp_path with known credentials and its own topic."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("JOURNEY_")},
        "JOURNEY_DATA_DIR": str(tmp_path / "data"),
        "JOURNEY_WRITE_KEYS": WRITE_KEY,
        "JOURNEY_API_TOKENS": TOKEN,
        "JOURNEY_TOPIC": f"journey.e2e.{uuid.uuid4().hex[:8]}",
        "JOURNEY_PARTITIONS": "3",
    }


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for proc in started:
        proc.stop()


def wait_http(url: str, timeout_s: float = 60, proc: Proc | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise AssertionError(f"process died:\n{proc.tail()}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} not up in {timeout_s}s" + (f"\n{proc.tail()}" if proc else ""))


def track(
    n: int, user: str, start: datetime | None = None, event: str = "Product Viewed", **extra: Any
) -> list[dict[str, Any]]:
    """n track messages of one user, a minute apart, with stable messageIds."""
    start = start or datetime(2026, 1, 5, 12, tzinfo=UTC)
    return [
        {
            "type": "track", "event": event, "userId": user, "messageId": f"{user}-{event}-{i}",
            "timestamp": (start + timedelta(minutes=i)).isoformat().replace("+00:00", "Z"),
            "properties": {"i": i}, **extra,
        }
        for i in range(n)
    ]
