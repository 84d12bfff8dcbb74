"""SPEC 1.1: Segment's official Java SDK (analytics-java, Maven Central) posts its batches to
Segment's /v1/import; unchanged, it reaches a running pipeline, retries a lost acknowledgement
and each of its events is stored once (`make java-sdk` builds tests/sdk/java)."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.sdk.conftest import WRITE_KEY, LostAckProxy, Pipeline, assert_retried_once_stored_once

PROJECT = Path(__file__).resolve().parent / "java"
CLASSES = PROJECT / "target" / "classes"
JARS = PROJECT / "target" / "dependency"


@pytest.fixture(scope="module")
def java() -> str:
    found = shutil.which("java")
    if found is None or not (CLASSES / "journey" / "sdk" / "SendEvents.class").exists():
        pytest.fail("analytics-java is not built: run `make java-sdk` (needs Java 17 and Maven)")
    return found


def test_1_1_segment_java_sdk_posts_to_v1_import_and_is_stored_once(
    java: str, pipeline: Pipeline, proxy: LostAckProxy,
) -> None:
    user = f"u-java-{uuid.uuid4().hex[:8]}"
    classpath = f"{CLASSES}:{JARS}/*"
    done = subprocess.run([java, "-cp", classpath, "journey.sdk.SendEvents", proxy.url, WRITE_KEY,
                           user], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert proxy.seen, "the Java SDK sent nothing"
    assert {s.path.rstrip("/") for s in proxy.seen} == {"/v1/import"}
    assert [s.status for s in proxy.seen] == [503, 200], [(s.path, s.status) for s in proxy.seen]
    pipeline.caught_up()
    stored = pipeline.events(f"user_id:{user}")
    assert_retried_once_stored_once(pipeline, proxy, stored)
    assert {e["event_id"]: e["event"] for e in stored} == {
        f"{user}-identify": "Identified", f"{user}-order": "Order Completed",
        f"{user}-view": "Product Viewed"}
    order = next(e for e in stored if e["event"] == "Order Completed")
    assert order["properties"] == {"total": 42.5, "currency": "EUR"}
    assert order["context"]["library"]["name"] == "analytics-java"
    customer = pipeline.customer(f"email:{user}@EXAMPLE.com")  # stored and looked up lower
    assert customer["customer_id"] == pipeline.customer(f"user_id:{user}")["customer_id"]
