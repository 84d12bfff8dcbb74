"""Fixtures of the SDK tests: one real `journey up` (embedded log) per session, and a real HTTP
proxy in front of its collector that loses the first acknowledgement, so the SDK must retry."""

from __future__ import annotations

import gzip
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from journey.log.factory import open_consumer
from journey.settings import CommonSettings
from tests.e2e.conftest import Proc, free_port, wait_http
from warehouse.reader import WarehouseReader

WRITE_KEY = "wk_sdk"
TOKEN = "tok_sdk"
TOPIC = "journey.sdk"
# Headers an SDK sends that the collector reads; everything else stays at the proxy.
_FORWARD = ("authorization", "content-encoding", "content-type", "user-agent")


@dataclass(frozen=True)
class Pipeline:
    """A running `journey up`: its address, credentials and where it stores things."""

    base: str
    settings: CommonSettings
    proc: Proc

    def caught_up(self, timeout_s: float = 60) -> None:
        """Wait until the processor committed every logged record and the API serves that."""
        consumer = open_consumer(self.settings)
        try:
            end = consumer.end_offsets()
        finally:
            consumer.close()
        reader = WarehouseReader(self.settings.warehouse_dir)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc.alive(), self.proc.tail()
            snap = reader.current()
            done = snap and reader.offsets(snap)
            if done and all(done.get(p, 0) >= n for p, n in end.items()):
                ready = httpx.get(f"{self.base}/readyz", timeout=5)
                if ready.status_code == 200 and ready.json()["version"] >= snap.version:
                    return
            time.sleep(0.1)
        raise AssertionError(f"pipeline did not catch up with {end}:\n{self.proc.tail()}")

    def logged_ids(self) -> list[str]:
        """event_id of every record in the log, duplicates included."""
        consumer = open_consumer(self.settings)
        try:
            consumer.seek(dict.fromkeys(consumer.partitions(), 0))
            ids: list[str] = []
            while batch := consumer.poll(1000, 0.2):
                ids.extend(json.loads(r.value)["event_id"] for r in batch)
            return ids
        finally:
            consumer.close()

    def events(self, key: str) -> list[dict[str, Any]]:
        """The stored canonical events of the customer with this identity key (SPEC 6.2)."""
        answer = httpx.get(
            f"{self.base}/v1/customers/{key}/events", headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        events: list[dict[str, Any]] = answer.json()
        return events

    def customer(self, key: str) -> dict[str, Any]:
        """The SPEC 6.2 customer object of this identity key."""
        answer = httpx.get(
            f"{self.base}/v1/customers/{key}", headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        found: dict[str, Any] = answer.json()
        return found


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    """`journey up` on a free port with the embedded log, shared by every SDK test."""
    tmp = tmp_path_factory.mktemp("sdk")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("JOURNEY_")},
        "JOURNEY_DATA_DIR": str(tmp / "data"), "JOURNEY_WRITE_KEYS": WRITE_KEY,
        "JOURNEY_API_TOKENS": TOKEN, "JOURNEY_TOPIC": TOPIC, "JOURNEY_PARTITIONS": "3",
    }
    port = free_port()
    proc = Proc(["up", "--port", str(port)], env, tmp / "up.log").start()
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/readyz", timeout_s=90, proc=proc)
        settings = CommonSettings(data_dir=tmp / "data", topic=TOPIC, partitions=3)
        yield Pipeline(base, settings, proc)
    finally:
        proc.stop()


@dataclass
class Seen:
    """One request as the proxy saw it: path, headers, decoded JSON body, status it answered."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    status: int = 0

    def message_ids(self) -> list[str]:
        """messageIds of the request's events (a batch or a single call)."""
        items = self.body.get("batch", [self.body])
        return [str(m.get("messageId")) for m in items if isinstance(m, dict)]


@dataclass
class LostAckProxy:
    """A real HTTP server: forwards every request to the collector, but answers the first one
    that the collector accepted with a 503, as if the 200 had been lost on the way back."""

    upstream: str
    seen: list[Seen] = field(default_factory=list)
    lost: int = 0
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def forward(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, bytes]:
        """Pass one request on; the answer the client gets (the first 200 becomes a 503)."""
        body = gzip.decompress(raw) if headers.get("content-encoding") == "gzip" else raw
        seen = Seen(path, headers, json.loads(body))
        self.seen.append(seen)
        sent = {k: v for k, v in headers.items() if k in _FORWARD}
        answer = httpx.post(self.upstream + path, content=raw, headers=sent, timeout=30)
        seen.status = answer.status_code
        if answer.status_code == 200 and not self.lost:
            self.lost += 1
            seen.status = 503
            return 503, b'{"success": false, "error": "lost acknowledgement (test proxy)"}'
        return answer.status_code, answer.content


def _handler(proxy: LostAckProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, body = proxy.forward(self.path, headers, raw)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if status == 503:
                self.send_header("Retry-After", "1")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            pass

    return Handler


@pytest.fixture
def proxy(pipeline: Pipeline) -> Iterator[LostAckProxy]:
    """A LostAckProxy in front of the pipeline's collector, on a free port."""
    flaky = LostAckProxy(pipeline.base)
    flaky.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(flaky))
    thread = threading.Thread(target=flaky.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield flaky
    finally:
        flaky.server.shutdown()
        flaky.server.server_close()
        thread.join()


@pytest.fixture
def ids() -> dict[str, str]:
    """Fresh identities for one test: user id, anonymous id, email (sent in mixed case), group."""
    run = uuid.uuid4().hex[:10]
    return {
        "user": f"u-{run}", "anon": f"a-{run}", "email": f" Ada.{run}@Example.COM ",
        "group": f"g-{run}",
    }


def assert_retried_once_stored_once(
    pipeline: Pipeline, proxy: LostAckProxy, stored: list[dict[str, Any]]
) -> None:
    """The first accepted request was answered 503, resent, logged twice and stored once."""
    assert proxy.lost == 1, "the proxy never lost an acknowledgement; the test proved nothing"
    first = next(s for s in proxy.seen if s.status == 503)
    resent = [s for s in proxy.seen[proxy.seen.index(first) + 1 :] if s.status == 200]
    resent_ids = {m for s in resent for m in s.message_ids()}
    assert set(first.message_ids()) <= resent_ids, "the SDK did not resend the lost batch"
    logged = pipeline.logged_ids()
    assert all(logged.count(m) == 2 for m in first.message_ids()), "no duplicate reached the log"
    stored_ids = [e["event_id"] for e in stored]
    assert len(stored_ids) == len(set(stored_ids)), f"an event was stored twice: {stored_ids}"
    sent = {m for s in proxy.seen for m in s.message_ids()}
    assert set(stored_ids) == sent


def by_type(stored: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The stored events keyed by type (each test sends one event of each type)."""
    types = [e["type"] for e in stored]
    assert sorted(types) == ["alias", "group", "identify", "page", "track"], types
    return {e["type"]: e for e in stored}


def keys_of(event: dict[str, Any]) -> set[tuple[str, str]]:
    return {(k["type"], k["value"]) for k in event["keys"]}


def assert_canonical(stored: list[dict[str, Any]], ids: dict[str, str], traits_in: str) -> None:
    """Types, event names, identity keys and traits as SPEC 1.2 and 2.1 say, per SDK call."""
    events = by_type(stored)
    user, email = ("user_id", ids["user"]), ("email", ids["email"].strip().lower())
    names = {t: e["event"] for t, e in events.items()}
    assert names == {"track": "Product Viewed", "page": "Page Viewed", "identify": "Identified",
                     "group": "Grouped", "alias": "Aliased"}
    assert all(user in keys_of(e) for e in stored)
    assert email in keys_of(events["identify"])
    assert events["alias"]["previous_id"] == ids["anon"]
    assert events["track"]["properties"]["sku"] == "SKU-1"
    assert events["track"]["properties"]["price"] == 19.5
    assert events["page"]["properties"]["url"] == "https://shop.example/pricing"
    assert events["page"]["page_url"] == "https://shop.example/pricing"
    assert events["page"]["channel"] == "web"
    identify = events["identify"]
    traits = identify["context"]["traits"] if traits_in == "context" else identify["traits"]
    assert traits["plan"] == "pro"
    assert traits["email"] == ids["email"]
    group = events["group"]["properties"]  # group traits describe the group, not the user
    assert (group["group_id"], group["group_traits"]["name"]) == (ids["group"], "Acme")
    assert events["page"]["properties"]["name"] == "Pricing"


def assert_customer(pipeline: Pipeline, ids: dict[str, str]) -> None:
    """The customer joins the user id, the email and (through alias) the anonymous id."""
    profile = pipeline.customer(f"anonymous_id:{ids['anon']}")
    identities = {(i["type"], i["value"]) for i in profile["identities"]}
    assert {("user_id", ids["user"]), ("anonymous_id", ids["anon"]),
            ("email", ids["email"].strip().lower())} <= identities
    assert profile["traits"]["plan"] == "pro"
