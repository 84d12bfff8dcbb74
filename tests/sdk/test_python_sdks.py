"""SPEC 1.1 / 1.2: the real Segment and RudderStack Python SDKs, unchanged, against a running
pipeline; their first accepted batch loses its acknowledgement, and each event is stored once."""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Any, Protocol

import pytest

from tests.sdk.conftest import (
    WRITE_KEY,
    LostAckProxy,
    Pipeline,
    assert_canonical,
    assert_customer,
    assert_retried_once_stored_once,
)


class Client(Protocol):
    """What the two SDKs' Client classes have in common."""

    def identify(self, user_id: str, traits: dict[str, Any], **kw: Any) -> Any: ...
    def track(self, user_id: str, event: str, properties: dict[str, Any], **kw: Any) -> Any: ...
    def page(self, user_id: str, category: str | None, name: str,
             properties: dict[str, Any], **kw: Any) -> Any: ...
    def group(self, user_id: str, group_id: str, traits: dict[str, Any], **kw: Any) -> Any: ...
    def alias(self, previous_id: str, user_id: str, **kw: Any) -> Any: ...
    def flush(self) -> None: ...
    def shutdown(self) -> None: ...


def import_isolated(name: str) -> ModuleType:
    """Import an SDK without letting it change this process's environment: rudder-sdk-python
    runs load_dotenv() on import (a `.env` up the tree would leak JOURNEY_* into other tests)."""
    before = dict(os.environ)
    try:
        return importlib.import_module(name)
    finally:
        os.environ.clear()
        os.environ.update(before)


def client_of(sdk: str, host: str) -> Client:
    """A client of the named SDK with its own defaults (rudder: gzip), posting to host."""
    module = import_isolated("segment.analytics" if sdk == "segment" else "rudderstack.analytics")
    # The retry budget is the SDK's; the timeouts only keep a broken run from hanging the suite.
    client: Client = module.Client(WRITE_KEY, host=host, max_retries=5, timeout=10)
    return client


def send_all(client: Client, ids: dict[str, str]) -> None:
    """One call of each kind, then wait until the SDK has delivered (or given up)."""
    client.identify(ids["user"], {"email": ids["email"], "plan": "pro", "name": "Ada"},
                    anonymous_id=ids["anon"])
    client.track(ids["user"], "Product Viewed", {"sku": "SKU-1", "price": 19.5})
    client.page(ids["user"], None, "Pricing", {"url": "https://shop.example/pricing"})
    client.group(ids["user"], ids["group"], {"name": "Acme"})
    client.alias(ids["anon"], ids["user"])
    client.flush()
    client.shutdown()


@pytest.mark.parametrize(("sdk", "traits_in"), [("segment", "traits"), ("rudder", "context")])
def test_1_1_python_sdk_events_arrive_once_with_keys_and_traits(
    sdk: str, traits_in: str, pipeline: Pipeline, proxy: LostAckProxy, ids: dict[str, str],
) -> None:
    send_all(client_of(sdk, proxy.url), ids)
    assert proxy.seen, f"{sdk} sent nothing"
    if sdk == "rudder":
        assert all(s.headers.get("content-encoding") == "gzip" for s in proxy.seen)
    pipeline.caught_up()
    stored = pipeline.events(f"user_id:{ids['user']}")
    assert_retried_once_stored_once(pipeline, proxy, stored)
    assert_canonical(stored, ids, traits_in)
    assert_customer(pipeline, ids)
