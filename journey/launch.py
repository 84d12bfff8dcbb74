"""Wiring of `journey up` and `journey demo`: settings, credentials, processor child, server."""

from __future__ import annotations

import os
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import uvicorn
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from api.settings import ApiSettings
from ingest.settings import IngestSettings
from journey import credentials, logsafe
from journey.log.factory import open_producer
from journey.server import ProcessorSupervisor, create_app
from journey.tokens import token_of

console = Console()
# The demo's customers move through these stage models side by side (processor presets).
DEMO_MODELS = "default,aida,lifecycle"
DEMO_DAYS = 150


@dataclass(frozen=True, slots=True)
class DemoPlan:
    customers: int
    keep_serving: bool


def serve(overrides: dict[str, Any], host: str, port: int, demo: DemoPlan | None) -> None:
    """Run collector + API + dashboard on host:port with a supervised processor child."""
    ingest = IngestSettings(**overrides)
    api = ApiSettings(**overrides)
    logsafe.private_dir(ingest.data_dir)
    creds = credentials.ensure(
        ingest.data_dir,
        [k.get_secret_value() for k in ingest.write_keys],
        [t.get_secret_value() for t in api.api_tokens],
    )
    keys = list(creds.write_keys)
    # The demo's order backend sends with its own key, whose default channel is web (SPEC 6.1);
    # it lives only as long as this process.
    backend = f"wk_backend_{secrets.token_urlsafe(12)}" if demo is not None else None
    if backend is not None:
        keys.append(f"{backend}:web")
    ingest = ingest.model_copy(update={"write_keys": [SecretStr(k) for k in keys]})
    api = api.model_copy(update={"api_tokens": [SecretStr(t) for t in creds.api_tokens]})
    producer = open_producer(ingest)
    supervisor = ProcessorSupervisor(processor_env(ingest, demo is not None))
    supervisor.start()
    server = uvicorn.Server(
        uvicorn.Config(create_app(ingest, api, producer), host=host, port=port, log_level="warning")
    )
    logsafe.install()  # after uvicorn.Config, which configures uvicorn's loggers
    base = f"http://{host}:{port}"
    _announce(base, creds, ingest.kafka_bootstrap)
    try:
        if demo is None:
            server.run()
            return
        thread = threading.Thread(target=server.run, name="http", daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        load_demo(base, creds.write_keys[0], token_of(creds.api_tokens[0]), demo.customers,
                  backend)
        if demo.keep_serving:
            console.print(f"Demo loaded. Dashboard: {dashboard_url(base, creds)}  (Ctrl-C stops)")
            thread.join()
        else:
            server.should_exit = True
            thread.join()
    finally:
        supervisor.stop()
        producer.close()


def post_demo(client: httpx.Client, write_key: str, customers: int,
              backend_key: str | None = None) -> int:
    """Post a demo dataset that ends now through the collector; the number of messages sent."""
    from journey.demo import as_backend, batches, from_backend, generate

    start = datetime.now(UTC) - timedelta(days=DEMO_DAYS)
    messages = generate(customers=customers, start=start, days=DEMO_DAYS)
    for body in batches(messages, size=100):
        backend = [as_backend(m) for m in body["batch"] if from_backend(m)]
        if backend_key is None or not backend:
            parts = [(body["batch"], write_key)]
        else:
            browser = [m for m in body["batch"] if not from_backend(m)]
            parts = [(browser, write_key), (backend, backend_key)]
        for items, key in parts:
            if items:
                _post(client, {"batch": items}, key)
    return len(messages)


def processor_env(ingest: IngestSettings, demo: bool) -> dict[str, str]:
    """The environment of the processor child: where data lives, and the demo's stage models."""
    env = {"JOURNEY_DATA_DIR": str(ingest.data_dir.resolve())}
    if ingest.kafka_bootstrap:
        env["JOURNEY_KAFKA_BOOTSTRAP"] = ingest.kafka_bootstrap
    if demo:
        env["JOURNEY_MODELS"] = os.environ.get("JOURNEY_MODELS", DEMO_MODELS)
    return env


def _post(client: httpx.Client, body: dict[str, Any], key: str) -> None:
    """One demo batch, retried while the collector says 429 or 503."""
    for attempt in range(20):
        answer = client.post("/v1/batch", json=body, auth=(key, ""))
        if answer.status_code == 200:
            return
        time.sleep(min(0.2 * 2**attempt, 5))
    answer.raise_for_status()


def _announce(base: str, creds: credentials.Credentials, kafka: str | None) -> None:
    """Where journey listens; only credentials it generated are printed (SPEC 6.1)."""
    console.print(f"journey on {base} ({'Kafka ' + kafka if kafka else 'embedded log'})")
    if creds.generated_keys:
        console.print(f"  write key : {creds.write_keys[0]}")
    if creds.generated_tokens:
        console.print(f"  API token : {creds.api_tokens[0]}")
    console.print(f"  dashboard : {dashboard_url(base, creds)}")


def dashboard_url(base: str, creds: credentials.Credentials) -> str:
    """The dashboard's address, carrying the token only when journey generated it."""
    if creds.generated_tokens:
        return f"{base}/#token={creds.api_tokens[0]}"
    return f"{base}/  (sign in with one of your API tokens)"


def load_demo(
    base: str, write_key: str, token: str, customers: int, backend_key: str | None = None,
    timeout_s: float = 300,
) -> None:
    """Post the generated demo through the collector and wait until the API shows all of it.

    The data ends now, so that live events sent during the demo extend it rather than move the
    watermark months past it (which would make every demo customer look lapsed). Web orders go
    with `backend_key` (a `KEY:web` key) without a channel, as a shop's order backend sends them.
    """
    with httpx.Client(base_url=base, timeout=30) as client:
        sent = post_demo(client, write_key, customers, backend_key)
        console.print(f"posted {sent} demo events; waiting for the processor ...")
        headers = {"Authorization": f"Bearer {token}"}
        deadline = time.monotonic() + timeout_s
        events = 0
        while time.monotonic() < deadline:
            kpis = client.get("/v1/kpis", headers=headers)
            if kpis.status_code == 200:
                events = int(kpis.json()["events"])
                if events >= sent:
                    break
            time.sleep(0.5)
        funnel = client.get("/v1/funnel", headers=headers).json()
    table = Table(title=f"Demo funnel ({events} events)")
    for column in ("stage", "customers", "from previous", "median time to stage"):
        table.add_column(column)
    for stage in funnel["stages"]:
        prev = stage["conversion_from_previous"]
        median = stage["median_time_to_stage_s"]
        table.add_row(
            stage["stage"],
            str(stage["customers"]),
            "-" if prev is None else f"{prev:.0%}",
            "-" if median is None else f"{median / 86400:.1f} d",
        )
    console.print(table)
