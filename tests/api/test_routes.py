"""SPEC 6.2 over HTTP: bearer tokens, ETag/304, JSON errors, every endpoint, ops endpoints."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import duckdb
import orjson
import pytest
from fastapi.testclient import TestClient

from api import store as store_module
from api.app import create_app
from api.routes import WARMED, cache_key
from api.settings import ApiSettings
from api.store import SnapshotStore
from tests.api.conftest import TOKEN, Dataset, FakeClock, MemoryWarehouse, at, make_store

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def dataset(version: int = 1, extra_customer: bool = False) -> Dataset:
    d = Dataset(version=version, watermark=at(30))
    d.model()
    d.model("aida", ("awareness", "interest", "desire", "action"), conversion="action")
    d.customer("c1", at(0), at(2), events=2, traits={"plan": "pro"},
               keys=(("user_id", "u1"), ("email", "a@b.c")))
    d.stages("c1", [at(0), at(1), at(2)])
    d.session("s1", "c1", at(0), source="google", converted=("default",))
    d.event("e1", "c1", at(0), "Page Viewed", "awareness", key=("email", "a@b.c"))
    d.event("e2", "c1", at(2), "Order Completed", "decision", own_stage="decision",
            key=("user_id", "u1"))
    d.transition("c1", "awareness", "decision")
    if extra_customer:
        d.customer("c2", at(3), keys=(("user_id", "u2"),))
        d.stages("c2", [at(3)])
    return d


@pytest.fixture
def wh() -> MemoryWarehouse:
    return MemoryWarehouse(dataset())


@pytest.fixture
def client(settings: ApiSettings, wh: MemoryWarehouse) -> TestClient:
    return TestClient(create_app(settings, make_store(wh)))


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"},
                                     {"Authorization": f"Basic {TOKEN}"}])
def test_6_1_requests_need_a_known_bearer_token(client: TestClient,
                                                headers: dict[str, str]) -> None:
    r = client.get("/v1/funnel", headers=headers)
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"
    assert r.headers["www-authenticate"] == "Bearer"


def test_6_1_no_tokens_configured_means_every_call_is_refused(wh: MemoryWarehouse) -> None:
    client = TestClient(create_app(ApiSettings(), make_store(wh)))
    assert client.get("/v1/kpis", headers={"Authorization": "Bearer "}).status_code == 401


def test_6_1_tokens_come_comma_separated_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("JOURNEY_API_TOKENS", "one, two")
    assert [t.get_secret_value() for t in ApiSettings().api_tokens] == ["one", "two"]


def test_6_2_etag_and_304_until_the_snapshot_changes(client: TestClient,
                                                     wh: MemoryWarehouse) -> None:
    first = client.get("/v1/funnel?model=default", headers=AUTH)
    assert first.status_code == 200 and first.json()["stages"][0]["customers"] == 1
    etag = first.headers["etag"]
    again = client.get("/v1/funnel?model=default", headers={**AUTH, "If-None-Match": etag})
    assert again.status_code == 304 and again.headers["etag"] == etag
    other = client.get("/v1/funnel?model=aida", headers={**AUTH, "If-None-Match": etag})
    assert other.status_code == 200 and other.headers["etag"] != etag
    wh.data = dataset(version=2, extra_customer=True)
    changed = client.get("/v1/funnel?model=default", headers={**AUTH, "If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert changed.json()["stages"][0]["customers"] == 2


@pytest.mark.parametrize(("url", "error", "needle"), [
    ("/v1/funnel?model=nope", "unknown_model", "aida, default"),
    ("/v1/kpis?model=nope", "unknown_model", "aida, default"),
    ("/v1/funnel?from=yesterday", "bad_parameter", "from='yesterday'"),
    ("/v1/funnel?trait.colour=red", "unknown_trait", "known traits: plan"),
    ("/v1/funnel?channel=fax", "bad_parameter", "web, app, email"),
    ("/v1/attribution?method=magic", "bad_parameter", "position_based"),
    ("/v1/paths?steps=0", "bad_parameter", "steps='0'"),
    ("/v1/sessions?to=2024-13-01", "bad_parameter", "to='2024-13-01'"),
])
def test_6_2_bad_requests_get_a_json_400_that_names_the_problem(
    client: TestClient, url: str, error: str, needle: str
) -> None:
    r = client.get(url, headers=AUTH)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == error and needle in r.json()["message"]


def test_6_2_unknown_model_lists_the_known_ones(client: TestClient) -> None:
    assert client.get("/v1/funnel?model=x", headers=AUTH).json()["known"] == ["aida", "default"]


def test_6_2_unknown_customer_is_404_json(client: TestClient) -> None:
    r = client.get("/v1/customers/email:who@x.y", headers=AUTH)
    assert r.status_code == 404 and r.json() == {
        "error": "customer_not_found", "message": "no customer has the identity key "
        "'email:who@x.y'", "key": "email:who@x.y"}


def test_6_2_customer_and_its_events_by_any_key(client: TestClient) -> None:
    c = client.get("/v1/customers/email:a@b.c?model=default", headers=AUTH).json()
    assert c["customer_id"] == "c1" and c["stage"] == "decision" and c["lapsed"] is False
    assert c["first_seen"] == "2024-01-01T00:00:00Z"
    events = client.get("/v1/customers/u1/events", headers=AUTH).json()
    assert [(e["event_id"], e["timestamp"]) for e in events] == [
        ("e1", "2024-01-01T00:00:00Z"), ("e2", "2024-01-03T00:00:00Z")]


@pytest.mark.parametrize("url", [
    "/v1/kpis", "/v1/sessions", "/v1/transitions", "/v1/attribution?by=source",
    "/v1/journey-map?trait.plan=pro", "/v1/cohorts?weeks=2", "/v1/paths?by=event",
    "/v1/timeseries?channel=web",
])
def test_6_2_every_endpoint_answers_json_with_an_etag(client: TestClient, url: str) -> None:
    r = client.get(url, headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json" and r.headers["etag"]
    assert r.json()


def test_6_2_endpoint_values(client: TestClient) -> None:
    kpis = client.get("/v1/kpis", headers=AUTH).json()
    assert (kpis["customers"], kpis["conversion_rate"], kpis["watermark"]) == (
        1, 1.0, "2024-01-31T00:00:00Z")
    assert client.get("/v1/attribution?by=source", headers=AUTH).json() == [
        {"key": "google", "credit": 1.0, "conversions": 1}]
    assert client.get("/v1/transitions", headers=AUTH).json() == [
        {"from": "awareness", "to": "decision", "transitions": 1, "customers": 1}]
    assert client.get("/v1/journey-map?trait.plan=pro", headers=AUTH).json()["segment"] == {
        "plan": "pro"}


def test_6_2_concurrent_requests_share_the_snapshot(client: TestClient) -> None:
    urls = ["/v1/funnel", "/v1/kpis", "/v1/journey-map", "/v1/paths"] * 6
    with ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(lambda u: client.get(u, headers=AUTH).status_code, urls))
    assert codes == [200] * len(urls)


def test_6_2_ops_endpoints(settings: ApiSettings) -> None:
    wh = MemoryWarehouse(None)
    client = TestClient(create_app(settings, make_store(wh)))
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 503
    r = client.get("/v1/kpis", headers=AUTH)
    assert r.status_code == 503 and r.json()["error"] == "not_ready"
    wh.data = dataset(version=7)
    ready = client.get("/readyz").json()
    assert ready.pop("models").keys() == {"aida", "default"}  # each model's served version
    assert ready == {"status": "ready", "version": 7}
    client.get("/v1/kpis", headers=AUTH)
    metrics = client.get("/metrics").text
    assert 'journey_api_requests_total{endpoint="/v1/kpis",status="200"}' in metrics
    assert 'journey_api_requests_total{endpoint="/v1/kpis",status="503"}' in metrics
    assert "journey_api_snapshot_version 7.0" in metrics
    assert 'journey_api_snapshot_load_seconds_count{how="built"}' in metrics
    # the fake clock reads 2024-06-01, the watermark is 2024-01-31: 122 days
    age = next(line for line in metrics.splitlines()
               if line.startswith("journey_api_watermark_age_seconds "))
    assert float(age.split()[1]) == 122 * 86400


def test_6_2_new_snapshots_arrive_with_model_views_already_computed(
    settings: ApiSettings, wh: MemoryWarehouse
) -> None:
    store = make_store(wh)
    create_app(settings, store)  # the router registers its warm-up with the store
    bound = store.current()
    assert bound is not None

    def not_warmed() -> bytes:
        raise AssertionError("not computed at snapshot load")

    for path in ("/v1/funnel", "/v1/kpis", "/v1/journey-map"):
        for params in ([], [("model", "aida")], [("model", "default")]):
            body = store.cached(bound.version, cache_key(path, params), not_warmed)
            assert orjson.loads(body)
    funnel = store.cached(bound.version, cache_key("/v1/funnel", [("model", "aida")]), not_warmed)
    assert orjson.loads(funnel)["model"] == "aida"


def test_6_2_warming_stops_once_a_newer_snapshot_is_committed(
    settings: ApiSettings, wh: MemoryWarehouse
) -> None:
    store = make_store(wh)
    create_app(settings, store)
    assert store.current() is not None  # version 1, warmed whole
    computed: list[str] = []
    original = store.put

    def put(version: int, key: object, value: object) -> None:
        computed.append(str(key))
        if version == 2:  # the processor commits version 3 while version 2 is being warmed
            wh.data = dataset(version=3, extra_customer=True)
        original(version, key, value)

    store.put = put  # type: ignore[method-assign]
    wh.data = dataset(version=2, extra_customer=True)
    bound = store.refresh(force=True)
    assert bound is not None and bound.version == 2
    assert len(computed) == 1  # the rest of version 2 was not warmed

    def not_warmed() -> bytes:
        raise AssertionError("not computed at snapshot load")

    computed.clear()
    bound = store.refresh(force=True)  # nothing newer: version 3 is warmed whole
    assert bound is not None and bound.version == 3
    assert len(computed) == len(WARMED) * 3  # no model, default, aida
    body = store.cached(3, cache_key("/v1/kpis", [("model", "aida")]), not_warmed)
    assert orjson.loads(body)["customers"] == 2


def test_6_4_a_followed_store_serves_each_new_snapshot_without_a_request(
    wh: MemoryWarehouse,
) -> None:
    store = SnapshotStore(wh, FakeClock(), refresh_interval_s=0.0, background=True)
    stop = store.follow()
    try:
        for version in (1, 2, 3):
            if version > 1:
                wh.data = dataset(version=version, extra_customer=True)
            deadline = time.monotonic() + 10
            while (served := store.served) is None or served.version != version:
                assert time.monotonic() < deadline, f"version {version} never served"
                time.sleep(0.01)
    finally:
        stop()
    wh.data = dataset(version=4)
    time.sleep(0.2)
    assert store.served is not None and store.served.version == 3  # stopped: no more checks


def test_6_4_a_snapshot_not_served_shows_as_pending_and_is_logged_when_stuck(
    settings: ApiSettings, wh: MemoryWarehouse, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = threading.Event()

    def register(con: duckdb.DuckDBPyConnection, snap: object) -> None:
        if getattr(snap, "version", 0) == 2:  # the load of version 2 hangs until released
            release.wait(30)
        wh.register_views(con, snap)  # type: ignore[arg-type]

    monkeypatch.setattr(store_module, "STUCK_AFTER_S", 0.3)
    store = SnapshotStore(wh, FakeClock(), register=register, refresh_interval_s=0.0,
                          background=True)
    client = TestClient(create_app(settings, store))
    stop = store.follow()
    try:
        deadline = time.monotonic() + 10
        while store.served is None:
            assert time.monotonic() < deadline, "version 1 never served"
            time.sleep(0.01)
        assert store.pending_s == 0.0
        with caplog.at_level(logging.WARNING, logger="api.store"):
            wh.data = dataset(version=2, extra_customer=True)
            time.sleep(0.6)
            pending = store.pending_s
            assert pending >= 0.5
            metrics = client.get("/metrics").text
            gauge = next(line for line in metrics.splitlines()
                         if line.startswith("journey_api_snapshot_pending_seconds "))
            assert float(gauge.split()[1]) >= pending
            assert "journey_api_snapshot_version 1.0" in metrics
            time.sleep(0.3)
        stuck = [r.getMessage() for r in caplog.records if "still not served" in r.getMessage()]
        assert len(stuck) == 1 and stuck[0].startswith("snapshot 2 ")  # once, not per check
        assert stuck[0].endswith("serving 1")
        release.set()
        while store.served is None or store.served.version != 2:
            assert time.monotonic() < deadline + 10, "version 2 never served"
            time.sleep(0.01)
        assert store.pending_s == 0.0
    finally:
        release.set()
        stop()


def test_6_2_background_refresh_serves_the_old_snapshot_until_the_new_one_is_built(
    settings: ApiSettings, wh: MemoryWarehouse
) -> None:
    store = SnapshotStore(wh, FakeClock(), refresh_interval_s=0.0, background=True)
    client = TestClient(create_app(settings, store))
    assert client.get("/v1/kpis", headers=AUTH).json()["customers"] == 1  # first: built inline
    wh.data = dataset(version=2, extra_customer=True)
    assert client.get("/v1/kpis", headers=AUTH).json()["customers"] == 1  # build started
    deadline = time.monotonic() + 10
    while (bound := store.current()) is None or bound.version != 2:
        assert time.monotonic() < deadline, "the background build never finished"
        time.sleep(0.02)
    assert client.get("/v1/kpis", headers=AUTH).json()["customers"] == 2
