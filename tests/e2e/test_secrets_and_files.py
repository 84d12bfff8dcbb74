"""SPEC 6.1 / 6.5: no secret in any log line or console output, generated credentials only are
printed, and every file journey stores is readable by its owner only."""

from __future__ import annotations

import base64
import stat
import time
from pathlib import Path

import httpx
import orjson
import pytest

from tests.e2e.conftest import Proc, free_port, wait_http

KEY = "wk_supplied_Kq7Zr2"
TOKEN = "tok_supplied_Xw9Pd4"
WRONG = "wk_typo_Hm3Lb8"
EVENT = {"type": "track", "event": "Signed Up", "userId": "u1", "messageId": "m-secret-1",
         "timestamp": "2026-01-05T12:00:00Z"}


def secrets_in(text: str) -> list[str]:
    """Which secrets (or their Basic-auth encodings) appear in `text`."""
    forms = [KEY, TOKEN, WRONG, base64.b64encode(f"{KEY}:".encode()).decode(),
             base64.b64encode(f"{WRONG}:".encode()).decode()]
    return [form for form in forms if form in text]


def exercise(base: str) -> None:
    """Requests that carry every kind of secret: ?key=, Basic auth, Bearer, and wrong ones."""
    with httpx.Client(base_url=base, timeout=30) as http:
        assert http.post("/v1/track", json=EVENT, auth=(KEY, "")).status_code == 200
        assert http.post("/v1/track", json=EVENT, auth=(WRONG, "")).status_code == 401
        opened = [{"event": "open", "email": "a@example.com", "timestamp": 1767614400,
                   "sg_event_id": "sg-1"}]
        for key in (KEY, WRONG):  # ?key= is how webhooks and imports send it
            hook = http.post(f"/v1/webhooks/sendgrid?key={key}", json=opened)
            assert hook.status_code == (401 if key == WRONG else 200), hook.text
            http.post(f"/v1/import?kind=events&format=jsonl&key={key}", content=b'{"x": 1}\n')
            http.post(f"/v1/imports?kind=events&format=jsonl&key={key}", content=b'{"x": 1}\n')
        bad = {"type": "track", "userId": "u1"}  # no event name: a dead letter
        http.post(f"/v1/batch?writeKey={KEY}", json={"batch": [bad]}, auth=(KEY, ""))
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        assert http.get("/v1/deadletters", headers=bearer).status_code == 200
        http.get(f"/v1/funnel?token={TOKEN}", headers=bearer)
        http.get("/v1/funnel", headers={"Authorization": f"Bearer {WRONG}"})


@pytest.mark.slow
def test_6_5_no_secret_reaches_the_logs_of_a_collector_or_api(
    env: dict[str, str], tmp_path: Path, procs: list[Proc],
) -> None:
    env = {**env, "JOURNEY_WRITE_KEYS": KEY, "JOURNEY_API_TOKENS": TOKEN}
    ports = {"collector": free_port(), "api": free_port()}
    for role, port in ports.items():
        proc = Proc([role, "--port", str(port), "--log-level", "info"], env,
                    tmp_path / f"{role}.log").start()
        procs.append(proc)
        wait_http(f"http://127.0.0.1:{port}/healthz", proc=proc)
    exercise(f"http://127.0.0.1:{ports['collector']}")
    with httpx.Client(base_url=f"http://127.0.0.1:{ports['api']}", timeout=30) as http:
        http.get(f"/v1/funnel?key={KEY}", headers={"Authorization": f"Bearer {TOKEN}"})
        for path in ("/v1/customers/email:person-5e1d@example.com",
                     "/v1/customers/person-5e1d@example.com/events"):
            http.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
    for proc in procs:
        proc.stop()
    for role in ports:
        text = (tmp_path / f"{role}.log").read_text(errors="replace")
        assert not secrets_in(text), f"{role} logged {secrets_in(text)}"
        assert "person-5e1d" not in text, f"{role} logged a customer's key"
        assert "key=[redacted]" in text, f"{role}: no access log line to check\n{text[-2000:]}"


@pytest.mark.slow
def test_6_1_up_prints_generated_credentials_only(
    env: dict[str, str], tmp_path: Path, procs: list[Proc],
) -> None:
    supplied = {**env, "JOURNEY_WRITE_KEYS": KEY, "JOURNEY_API_TOKENS": TOKEN}
    generated = {k: v for k, v in env.items()
                 if k not in ("JOURNEY_WRITE_KEYS", "JOURNEY_API_TOKENS")}
    generated["JOURNEY_DATA_DIR"] = str(tmp_path / "generated")
    outputs = {}
    for name, run_env in (("supplied", supplied), ("generated", generated)):
        port = free_port()
        proc = Proc(["up", "--port", str(port)], run_env, tmp_path / f"{name}.log").start()
        procs.append(proc)
        wait_http(f"http://127.0.0.1:{port}/healthz", proc=proc)
        if name == "supplied":
            exercise(f"http://127.0.0.1:{port}")
        proc.stop()
        outputs[name] = (tmp_path / f"{name}.log").read_text(errors="replace")
    assert not secrets_in(outputs["supplied"]), secrets_in(outputs["supplied"])
    assert "API token : tok_" in outputs["generated"] and "write key : wk_" in outputs["generated"]


def loose_files(root: Path) -> list[str]:
    """Every path under root that someone other than its owner could read or enter."""
    return [f"{p} {stat.filemode(p.stat().st_mode)}" for p in [root, *root.rglob("*")]
            if p.stat().st_mode & 0o077]


@pytest.mark.slow
def test_6_5_every_file_journey_up_stores_is_owner_only(
    env: dict[str, str], tmp_path: Path, procs: list[Proc],
) -> None:
    env = {k: v for k, v in env.items() if k not in ("JOURNEY_WRITE_KEYS", "JOURNEY_API_TOKENS")}
    data = Path(env["JOURNEY_DATA_DIR"])
    port = free_port()
    proc = Proc(["up", "--port", str(port)], env, tmp_path / "up.log").start()
    procs.append(proc)
    wait_http(f"http://127.0.0.1:{port}/healthz", proc=proc)
    key = orjson.loads((data / "credentials.json").read_bytes())["write_keys"][0]
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30, auth=(key, "")) as http:
        assert http.post("/v1/track", json=EVENT).status_code == 200
        http.post("/v1/batch", json={"batch": [{"type": "track", "userId": "u"}]})  # dead letter
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (data / "warehouse").exists():
        time.sleep(0.5)
    time.sleep(2)  # the processor's first commit
    proc.stop()
    made = {p.name for p in data.rglob("*")}
    assert {"credentials.json", "deadletter", "warehouse"} <= made, made
    assert any(name.endswith(".sqlite3") for name in made), made
    assert not loose_files(data), loose_files(data)
