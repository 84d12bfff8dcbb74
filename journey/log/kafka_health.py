"""Keeping a Kafka producer usable across broker outages (SPEC 6.5): a cheap reachability probe,
and the disposal of a producer that failed, without blocking the request that noticed it."""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Any


def reachable(bootstrap: str, timeout_s: float = 0.5) -> bool:
    """Whether any bootstrap HOST:PORT accepts a TCP connection now (a cheap probe, so that a
    broker known to be down costs a caller milliseconds, not kafka-python's bootstrap timeout)."""
    for address in bootstrap.split(","):
        host, _, port = address.strip().rpartition(":")
        try:
            with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout_s):
                return True
        except (OSError, ValueError):
            continue
    return False


def abandon(producer: Any) -> None:
    """Stop a failed producer off the caller's thread, dropping what it still holds.

    kafka-python's close() flushes first, which never ends while the broker is gone, and its
    __del__ retries that for a second on whichever thread collects it (a stall of every
    request). So the sender is force-closed first (pending batches are aborted: the 503 the
    client got says they may or may not have been stored), then close() has nothing to wait for.
    """

    def close() -> None:
        sender = getattr(producer, "_sender", None)  # kafka-python 3.0 internals, checked
        if sender is not None:
            sender.force_close()
            sender.join(5.0)
        with contextlib.suppress(Exception):
            producer.close(timeout=1.0)

    threading.Thread(target=close, name="kafka-abandon", daemon=True).start()
