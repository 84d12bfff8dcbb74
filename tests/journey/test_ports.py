"""Serving commands: a taken port is one line and a fast non-zero exit; JOURNEY_PORT/HOST apply."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
JOURNEY = [sys.executable, "-m", "journey"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def taken() -> Iterator[int]:
    """A port another process (this test) listens on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "JOURNEY_DATA_DIR": str(tmp_path), **extra}


@pytest.mark.parametrize("command", [["demo", "--customers", "5"], ["up"], ["collector"], ["api"]])
def test_6_1_a_taken_port_is_one_line_and_exit_1_within_2_s(
    command: list[str], taken: int, tmp_path: Path,
) -> None:
    began = time.monotonic()
    done = subprocess.run([*JOURNEY, *command, "--port", str(taken)], cwd=ROOT,
                          env=env(tmp_path), capture_output=True, text=True, timeout=30)
    elapsed = time.monotonic() - began
    assert done.returncode == 1, done.stdout + done.stderr
    assert elapsed < 2.0, f"took {elapsed:.2f}s"
    assert done.stderr.strip().splitlines() == [
        f"journey: cannot listen on 127.0.0.1:{taken}: the port is already in use; "
        "choose another with --port or JOURNEY_PORT"]
    assert not (tmp_path / "log").exists()  # nothing started


@pytest.mark.parametrize("command", [["up"], ["collector"], ["api"], ["demo"]])
def test_6_1_journey_port_and_host_are_read_from_the_environment(
    command: list[str], taken: int, tmp_path: Path,
) -> None:
    done = subprocess.run([*JOURNEY, *command], cwd=ROOT, capture_output=True, text=True,
                          env=env(tmp_path, JOURNEY_PORT=str(taken), JOURNEY_HOST="127.0.0.1"),
                          timeout=30)
    assert done.returncode == 1
    assert f"127.0.0.1:{taken}" in done.stderr


def test_6_1_journey_api_serves_on_journey_port(tmp_path: Path) -> None:
    port = free_port()
    child = subprocess.Popen([*JOURNEY, "api"], cwd=ROOT, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=env(tmp_path, JOURNEY_PORT=str(port)))
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert child.poll() is None, "journey api exited"
                assert time.monotonic() < deadline, "journey api never answered on JOURNEY_PORT"
                time.sleep(0.2)
        assert answer.json() == {"status": "ok"}
    finally:
        child.terminate()
        child.wait(timeout=15)


def test_make_demo_passes_port_through() -> None:
    dry = subprocess.run(["make", "-n", "demo", "PORT=9123"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, check=True)
    assert "journey demo --data-dir data/demo --port 9123" in dry.stdout
