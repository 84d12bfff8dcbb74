"""SPEC 1.1 / 1.2: the real Segment and RudderStack Node SDKs (installed by
scripts/install-node-sdks.sh) against a running pipeline, with one lost acknowledgement."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.sdk.conftest import (
    WRITE_KEY,
    LostAckProxy,
    Pipeline,
    assert_canonical,
    assert_customer,
    assert_retried_once_stored_once,
)

NODE_DIR = Path(__file__).parent / "node"


def run_driver(script: str, host: str, ids: dict[str, str]) -> None:
    """Run one driver script to completion; it exits non-zero if its SDK gave up on a batch."""
    node = shutil.which("node")
    assert node, "node is not installed (Node >= 18 is needed for the SDK tests)"
    assert (NODE_DIR / "node_modules").is_dir(), "run scripts/install-node-sdks.sh first"
    done = subprocess.run(
        [node, script, host, WRITE_KEY, json.dumps(ids)], cwd=NODE_DIR, capture_output=True,
        text=True, timeout=90, check=False,
    )
    assert done.returncode == 0, f"{script} failed:\n{done.stdout}\n{done.stderr}"


@pytest.mark.parametrize(("sdk", "traits_in"), [("segment", "traits"), ("rudder", "context")])
def test_1_1_node_sdk_events_arrive_once_with_keys_and_traits(
    sdk: str, traits_in: str, pipeline: Pipeline, proxy: LostAckProxy, ids: dict[str, str],
) -> None:
    run_driver(f"{sdk}.js", proxy.url, ids)
    assert proxy.seen, f"{sdk} sent nothing"
    if sdk == "rudder":
        # SPEC 1.1: a gzip body labelled as a form; the collector must go by Content-Encoding.
        first = proxy.seen[0].headers
        assert first.get("content-encoding") == "gzip"
        assert first.get("content-type", "").startswith("application/x-www-form-urlencoded")
        assert all("originalTimestamp" in m and "sentAt" in m for m in proxy.seen[0].body["batch"])
    pipeline.caught_up()
    stored = pipeline.events(f"user_id:{ids['user']}")
    assert_retried_once_stored_once(pipeline, proxy, stored)
    assert_canonical(stored, ids, traits_in)
    assert_customer(pipeline, ids)
