"""`journey demo` end to end: data that ends now, three stage models served, web orders from the
demo's `KEY:web` backend key counted as web, and live events that do not wreck its KPIs."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.conftest import TOKEN, WRITE_KEY, Proc, free_port


def get(base: str, path: str) -> Any:
    answer = httpx.get(base + path, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    assert answer.status_code == 200, (path, answer.text)
    return answer.json()


def test_demo_serves_three_models_on_data_that_ends_now(
    env: dict[str, str], procs: list[Proc], tmp_path: Path,
) -> None:
    port = free_port()
    demo = Proc(["demo", "--port", str(port), "--customers", "30"], env, tmp_path / "demo.log")
    procs.append(demo.start())
    deadline = time.monotonic() + 240
    while "Demo loaded" not in demo.tail():  # printed once the API shows every demo event
        assert demo.alive(), demo.tail()
        assert time.monotonic() < deadline, demo.tail()
        time.sleep(0.5)
    base = f"http://127.0.0.1:{port}"
    for model, first in (("default", "awareness"), ("aida", "awareness"),
                         ("lifecycle", "explore")):
        funnel = get(base, f"/v1/funnel?model={model}")
        assert funnel["stages"][0]["stage"] == first and funnel["stages"][0]["customers"] > 0
    kpis = get(base, "/v1/kpis")
    watermark = datetime.fromisoformat(kpis["watermark"].replace("Z", "+00:00"))
    assert datetime.now(UTC) - timedelta(days=3) < watermark <= datetime.now(UTC)
    channels = {row["key"] for row in get(base, "/v1/attribution?by=channel")}
    assert "web" in channels and "other" not in channels  # backend orders took the key's web
    churn = kpis["churn_rate"]
    for n in range(6):  # live events during the demo: the watermark moves by seconds, not months
        sent = httpx.post(base + "/v1/track", auth=(WRITE_KEY, ""), timeout=10, json={
            "userId": f"live-{n}", "event": "Product Viewed", "properties": {"channel": "web"}})
        assert sent.status_code == 200, sent.text
    deadline = time.monotonic() + 60
    while (after := get(base, "/v1/kpis"))["events"] < kpis["events"] + 6:
        assert time.monotonic() < deadline, (after, demo.tail())
        time.sleep(0.5)
    assert abs(after["churn_rate"] - churn) < 0.1, (churn, after["churn_rate"])
