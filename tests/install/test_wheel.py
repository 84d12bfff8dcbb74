"""A production install: the wheel, installed without extras into a fresh venv, runs every role.

A runtime import that pyproject does not declare fails here, as it would in the Docker image.
`make wheelhouse` keeps the runtime dependencies' wheels in .cache/wheelhouse so that the venv
builds without the network; without it, pip fetches them from the package registry (slower).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
WHEELHOUSE = ROOT / ".cache" / "wheelhouse"
SOURCES = ("journey", "ingest", "processor", "warehouse", "api", "pyproject.toml", "README.md")
WRITE_KEY, TOKEN = "wk_install", "tok_install"

pytestmark = pytest.mark.slow


def pip(python: Path, *args: str) -> None:
    """pip from the wheelhouse alone when it is there, else from the registry."""
    local = ["--no-index", "--find-links", str(WHEELHOUSE)] if WHEELHOUSE.is_dir() else []
    done = subprocess.run([str(python), "-m", "pip", *args, "-q", *local], capture_output=True,
                          text=True, timeout=600, env={**os.environ, "PIP_FIND_LINKS": ""})
    if done.returncode != 0 and local:  # the wheelhouse may lag a new pin: the registry has it
        done = subprocess.run([str(python), "-m", "pip", *args, "-q"], capture_output=True,
                              text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bin/ of a fresh venv holding only the journey wheel and its declared dependencies."""
    tmp = tmp_path_factory.mktemp("install")
    source = tmp / "src"  # a copy: building in the work tree would leave build/ behind
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            source.mkdir(exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    pip(Path(sys.executable), "wheel", "--no-deps", "-w", str(tmp / "dist"), str(source))
    wheel = next((tmp / "dist").glob("journey-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", str(tmp / "venv")], check=True, timeout=120)
    bin_dir = tmp / "venv" / "bin"
    pip(bin_dir / "python", "install", "--no-compile", str(wheel))  # .pyc of pyarrow: ~15 s
    return bin_dir


class Role:
    """One `journey ROLE` from the installed venv, run outside the source tree."""

    def __init__(self, bin_dir: Path, args: list[str], data: Path) -> None:
        data.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JOURNEY_", "PYTHON"))}
        env.update(JOURNEY_DATA_DIR=str(data), JOURNEY_WRITE_KEYS=WRITE_KEY,
                   JOURNEY_API_TOKENS=TOKEN, JOURNEY_PARTITIONS="2")
        self.log = data / "role.log"
        with self.log.open("wb") as out:
            self.popen = subprocess.Popen([str(bin_dir / "journey"), *args], cwd=data, env=env,
                                          stdout=out, stderr=subprocess.STDOUT)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def wait_http(self, url: str, timeout_s: float = 60) -> httpx.Response:
        deadline = time.monotonic() + timeout_s
        while True:
            assert self.popen.poll() is None, f"exited {self.popen.returncode}:\n{self.tail()}"
            try:
                return httpx.get(url, timeout=2)
            except httpx.TransportError:
                assert time.monotonic() < deadline, f"{url} never answered:\n{self.tail()}"
                time.sleep(0.2)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


@pytest.fixture
def role(venv: Path, tmp_path: Path) -> Iterator[type[Role]]:
    started: list[Role] = []

    class Started(Role):
        def __init__(self, args: list[str]) -> None:
            super().__init__(venv, args, tmp_path / "data")
            started.append(self)

    yield Started  # type: ignore[misc]
    for one in started:
        one.stop()


def test_installed_wheel_has_no_source_tree(venv: Path) -> None:
    code = "import journey, ingest.sendgrid, swagger_ui_bundle; print(journey.__file__)"
    found = subprocess.run([str(venv / "python"), "-c", code], capture_output=True, text=True,
                           cwd="/")
    assert found.returncode == 0, found.stderr
    assert "site-packages" in found.stdout


def test_journey_up_from_the_wheel_stores_and_serves_an_event(role: type[Role]) -> None:
    port = free_port()
    up = role(["up", "--port", str(port)])
    base = f"http://127.0.0.1:{port}"
    assert up.wait_http(base + "/healthz").json() == {"status": "ok"}
    user = f"u-{uuid.uuid4().hex[:8]}"
    sent = httpx.post(base + "/v1/track", auth=(WRITE_KEY, ""), timeout=10, json={
        "userId": user, "event": "Order Completed", "messageId": f"m-{user}",
        "properties": {"channel": "store", "total": 12.5}})
    assert sent.status_code == 200, sent.text
    deadline = time.monotonic() + 60
    while True:
        answer = httpx.get(f"{base}/v1/customers/user_id:{user}/events", timeout=10,
                           headers={"Authorization": f"Bearer {TOKEN}"})
        if answer.status_code == 200 and answer.json():
            break
        assert time.monotonic() < deadline, f"{answer.status_code} {answer.text}\n{up.tail()}"
        time.sleep(0.5)
    [event] = answer.json()
    assert (event["event_id"], event["event"], event["channel"]) == (
        f"m-{user}", "Order Completed", "store")


@pytest.mark.parametrize("name", ["collector", "api"])
def test_each_http_role_from_the_wheel_answers_healthz(name: str, role: type[Role]) -> None:
    port = free_port()
    alone = role([name, "--port", str(port)])
    assert alone.wait_http(f"http://127.0.0.1:{port}/healthz").json() == {"status": "ok"}
    scraped = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert scraped.status_code == 200
    assert "journey_collector_log_append_seconds" in scraped.text  # both roles render it


def test_the_processor_from_the_wheel_stays_up(role: type[Role]) -> None:
    alone = role(["processor"])
    time.sleep(4)
    assert alone.popen.poll() is None, alone.tail()
