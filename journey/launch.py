"""Wiring of `journey up` and `journey demo`: settings, credentials, processor child, server."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from api.settings import ApiSettings
from ingest.settings import IngestSettings
from journey import credentials
from journey.log.factory import open_producer
from journey.server import ProcessorSupervisor, create_app

console = Console()


@dataclass(frozen=True, slots=True)
class DemoPlan:
    customers: int
    keep_serving: bool


def serve(overrides: dict[str, Any], host: str, port: int, demo: DemoPlan | None) -> None:
    """Run collector + API + dashboard on host:port with a supervised processor child."""
    ingest = IngestSettings(**overrides)
    api = ApiSettings(**overrides)
    creds = credentials.ensure(
        ingest.data_dir,
        [k.get_secret_value() for k in ingest.write_keys],
        [t.get_secret_value() for t in api.api_tokens],
    )
    ingest = ingest.model_copy(update={"write_keys": [SecretStr(k) for k in creds.write_keys]})
    api = api.model_copy(update={"api_tokens": [SecretStr(t) for t in creds.api_tokens]})
    producer = open_producer(ingest)
    child_env = {"JOURNEY_DATA_DIR": str(ingest.data_dir.resolve())}
    if ingest.kafka_bootstrap:
        child_env["JOURNEY_KAFKA_BOOTSTRAP"] = ingest.kafka_bootstrap
    supervisor = ProcessorSupervisor(child_env)
    supervisor.start()
    server = uvicorn.Server(
        uvicorn.Config(create_app(ingest, api, producer), host=host, port=port, log_level="warning")
    )
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
        load_demo(base, creds.write_keys[0], creds.api_tokens[0], demo.customers)
        if demo.keep_serving:
            console.print(
                f"Demo loaded. Dashboard: {base}/#token={creds.api_tokens[0]}  (Ctrl-C stops)"
            )
            thread.join()
        else:
            server.should_exit = True
            thread.join()
    finally:
        supervisor.stop()
        producer.close()


def _announce(base: str, creds: credentials.Credentials, kafka: str | None) -> None:
    console.print(f"journey on {base} ({'Kafka ' + kafka if kafka else 'embedded log'})")
    if creds.generated:
        console.print(f"  write key : {creds.write_keys[0]}")
        console.print(f"  API token : {creds.api_tokens[0]}")
    console.print(f"  dashboard : {base}/#token={creds.api_tokens[0]}")


def load_demo(
    base: str, write_key: str, token: str, customers: int, timeout_s: float = 300
) -> None:
    """Post the generated demo through the collector and wait until the API shows all of it."""
    from journey.demo import batches, generate

    messages = generate(customers=customers)
    sent = 0
    with httpx.Client(base_url=base, timeout=30) as client:
        for body in batches(messages, size=100):
            for attempt in range(20):
                answer = client.post("/v1/batch", json=body, auth=(write_key, ""))
                if answer.status_code == 200:
                    break
                time.sleep(min(0.2 * 2**attempt, 5))
            answer.raise_for_status()
            sent += len(body["batch"])
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
