"""Issue 11 / SPEC 6.4: a stage model changes without downtime and the API never serves a mix.

`journey rebuild` runs while `journey up` serves and ingests (the running processor rebuilds on
request), and `journey up` restarts with an edited model and no rebuild (the processor rebuilds
at start). Meanwhile a poller asks the API, in one snapshot, which stages the model declares and
which stages its customers entered: every answer must be all old version or all new version.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.conftest import ROOT, TOKEN, WRITE_KEY, Proc, free_port, track, wait_http

AUTH = {"Authorization": f"Bearer {TOKEN}"}
OLD = ["seen", "browsed", "bought"]
NEW = ["arrived", "looked", "carted", "paid"]
ONE_SNAPSHOT = (
    "SELECT (SELECT list(stage ORDER BY stage_index) FROM models WHERE model = 'shop') AS declared,"
    " (SELECT list(DISTINCT stage ORDER BY stage) FROM stage_entries WHERE model = 'shop') AS used"
)


RULES = {"seen": "", "browsed": "Product Viewed", "bought": "Order Completed",
         "arrived": "", "looked": "Product Viewed", "carted": "Product Added",
         "paid": "Order Completed"}


def _model(names: list[str]) -> str:
    lines = ['name = "shop"', f'conversion_stage = "{names[-1]}"']
    for name in names:
        rule = f'{{ event = "{RULES[name]}" }}' if RULES[name] else "{ any = true }"
        lines += ["", "[[stages]]", f'name = "{name}"', f"rules = [{rule}]"]
    return "\n".join(lines) + "\n"


def _shopper(i: int, start: datetime) -> list[dict[str, Any]]:
    user = f"shopper{i}"
    return (track(2, user, start) + track(1, user, start, event="Product Added")
            + track(1, user, start + timedelta(minutes=5), event="Order Completed"))


class Poller(threading.Thread):
    """Asks the API over and over until stopped; records every answer and every violation."""

    def __init__(self, base: str) -> None:
        super().__init__(daemon=True)
        self.base = base
        self.stop = threading.Event()
        self.seen: list[tuple[str, ...]] = []
        self.versions: dict[tuple[str, ...], set[str]] = {}
        self.mixes: list[str] = []

    def finish(self, limit_s: float = 15) -> None:
        """Stop once an answer in the new version came (or after limit_s)."""
        deadline = time.monotonic() + limit_s
        while tuple(NEW) not in self.seen and time.monotonic() < deadline:
            time.sleep(0.1)
        self.stop.set()
        self.join(timeout=20)

    def run(self) -> None:
        with httpx.Client(base_url=self.base, headers=AUTH, timeout=10) as client:
            while not self.stop.is_set():
                self._once(client)

    def _once(self, client: httpx.Client) -> None:
        rows = client.post("/v1/query", json={"sql": ONE_SNAPSHOT})
        if rows.status_code == 200:
            declared, used = self._row(rows.json())
            if declared is not None:
                self.seen.append(tuple(declared))
                if declared not in (OLD, NEW) or not set(used or []) <= set(declared):
                    self.mixes.append(f"declared {declared}, entered {used}")
        funnel = client.get("/v1/funnel", params={"model": "shop"})
        if funnel.status_code == 200:
            stages = [s["stage"] for s in funnel.json()["stages"]]
            if stages not in (OLD, NEW):
                self.mixes.append(f"funnel stages {stages}")
        models = client.get("/v1/models")
        if models.status_code == 200:
            for model in models.json():
                if model["model"] == "shop":
                    self.versions.setdefault(tuple(model["stages"]), set()).add(model["version"])

    @staticmethod
    def _row(body: Any) -> tuple[list[str] | None, list[str] | None]:
        row = body["rows"][0]
        return (row["declared"], row["used"]) if isinstance(row, dict) else (row[0], row[1])


def _up(env: dict[str, str], tmp_path: Path, procs: list[Proc]) -> tuple[Proc, str]:
    port = free_port()
    proc = Proc(["up", "--port", str(port)], env, tmp_path / "up.log").start()
    procs.append(proc)
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/readyz", timeout_s=60, proc=proc)
    return proc, base


def _post(base: str, batch: list[dict[str, Any]]) -> None:
    answer = httpx.post(f"{base}/v1/batch", json={"batch": batch}, auth=(WRITE_KEY, ""), timeout=10)
    assert answer.status_code == 200, answer.text


def _wait_for(base: str, declared: list[str], customers: int, limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        funnel = httpx.get(f"{base}/v1/funnel", params={"model": "shop"}, headers=AUTH)
        if funnel.status_code == 200:
            stages = funnel.json()["stages"]
            if [s["stage"] for s in stages] == declared and stages[0]["customers"] == customers:
                return
        time.sleep(0.1)
    raise AssertionError(f"the API did not serve {declared} with {customers} customers")


def _setup(env: dict[str, str], tmp_path: Path) -> Path:
    model = tmp_path / "shop.toml"
    model.write_text(_model(OLD))
    env["JOURNEY_MODELS"] = f"default,{model}"
    return model


def _feed(base: str, first: int, count: int, stop: threading.Event) -> int:
    """Post one shopper at a time until stop or count; the number posted."""
    start = datetime(2026, 3, 2, 9, tzinfo=UTC)
    sent = 0
    while sent < count and not stop.is_set():
        _post(base, _shopper(first + sent, start + timedelta(hours=first + sent)))
        sent += 1
        time.sleep(0.05)
    return sent


def test_rebuild_beside_running_pipeline_switches_atomically(
    env: dict[str, str], tmp_path: Path, procs: list[Proc],
) -> None:
    model = _setup(env, tmp_path)
    up, base = _up(env, tmp_path, procs)
    start = datetime(2026, 3, 1, 9, tzinfo=UTC)
    _post(base, [m for i in range(40) for m in _shopper(i, start + timedelta(hours=i))])
    _wait_for(base, OLD, 40, limit_s=30)
    old_ready = httpx.get(f"{base}/readyz").json()

    poller = Poller(base)
    poller.start()
    feeding = threading.Event()
    fed: list[int] = []
    feeder = threading.Thread(target=lambda: fed.append(_feed(base, 100, 60, feeding)))
    feeder.start()
    model.write_text(_model(NEW))
    rebuild = subprocess.run(
        [sys.executable, "-m", "journey", "rebuild"], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=120,
    )
    feeding.set()
    feeder.join(timeout=30)
    assert rebuild.returncode == 0, rebuild.stdout + rebuild.stderr
    assert "running processor" in rebuild.stdout  # it asked the processor, not the lock
    assert "rebuilt from" in rebuild.stdout

    total = 40 + fed[0]
    _wait_for(base, NEW, total, limit_s=30)
    poller.finish()
    assert up.alive(), up.tail()
    assert not poller.mixes, poller.mixes[:5]
    assert tuple(OLD) in poller.seen and tuple(NEW) in poller.seen
    # One version per stage list, and the two differ: the version says what is served.
    assert all(len(v) == 1 for v in poller.versions.values()), poller.versions
    new_version = next(iter(poller.versions[tuple(NEW)]))
    assert new_version != next(iter(poller.versions[tuple(OLD)]))
    ready = httpx.get(f"{base}/readyz").json()
    assert ready["models"]["shop"] == new_version
    assert old_ready["models"]["shop"] != new_version
    assert ready["models"]["default"] == old_ready["models"]["default"]

    # A model file that does not load: the command says why, the pipeline keeps the served one.
    model.write_text('name = "shop"\nconversion_stage = "nowhere"\n')
    broken = subprocess.run(
        [sys.executable, "-m", "journey", "rebuild"], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=120,
    )
    assert broken.returncode == 1 and "rebuild failed" in broken.stdout, broken.stdout
    assert up.alive(), up.tail()
    assert httpx.get(f"{base}/readyz").json()["models"]["shop"] == new_version


def test_restart_with_edited_model_never_serves_a_mix(
    env: dict[str, str], tmp_path: Path, procs: list[Proc],
) -> None:
    model = _setup(env, tmp_path)
    up, base = _up(env, tmp_path, procs)
    start = datetime(2026, 3, 1, 9, tzinfo=UTC)
    _post(base, [m for i in range(30) for m in _shopper(i, start + timedelta(hours=i))])
    _wait_for(base, OLD, 30, limit_s=30)
    up.stop()
    procs.remove(up)

    model.write_text(_model(NEW))
    # `journey api` alone keeps serving the stored version while `journey up` restarts beside it.
    port = free_port()
    api = Proc(["api", "--port", str(port)], env, tmp_path / "api.log").start()
    procs.append(api)
    api_base = f"http://127.0.0.1:{port}"
    wait_http(api_base + "/readyz", timeout_s=60, proc=api)
    poller = Poller(api_base)
    poller.start()
    up, base = _up(env, tmp_path, procs)
    _wait_for(api_base, NEW, 30, limit_s=60)
    poller.finish()
    assert not poller.mixes, poller.mixes[:5]
    assert tuple(OLD) in poller.seen and tuple(NEW) in poller.seen
    assert httpx.get(f"{base}/v1/models", headers=AUTH).json()  # the restarted pipeline serves


def test_restart_after_a_rule_only_change_rebuilds(
    env: dict[str, str], tmp_path: Path, procs: list[Proc],
) -> None:
    model = _setup(env, tmp_path)
    up, base = _up(env, tmp_path, procs)
    start = datetime(2026, 3, 1, 9, tzinfo=UTC)
    _post(base, [m for i in range(10) for m in _shopper(i, start + timedelta(hours=i))])
    _wait_for(base, OLD, 10, limit_s=30)
    funnel = httpx.get(f"{base}/v1/funnel", params={"model": "shop"}, headers=AUTH).json()
    assert funnel["stages"][-1]["customers"] == 10
    up.stop()
    procs.remove(up)

    # Same stage names (the `models` table does not change), another rule: nobody sent this.
    model.write_text(_model(OLD).replace('event = "Order Completed"', 'event = "Refund Issued"'))
    up, base = _up(env, tmp_path, procs)
    deadline = time.monotonic() + 30
    bought = -1
    while time.monotonic() < deadline and bought != 0:
        funnel = httpx.get(f"{base}/v1/funnel", params={"model": "shop"}, headers=AUTH).json()
        bought = funnel["stages"][-1]["customers"]
        time.sleep(0.2)
    assert bought == 0, up.tail()
    assert funnel["stages"][0]["customers"] == 10
