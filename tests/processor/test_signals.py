"""The processor's stop signal handler: one signal stops it; more cannot hang it."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator

import pytest

from processor.app import stop_on_signal


@pytest.fixture
def restore_handlers() -> Iterator[None]:
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


@pytest.mark.usefixtures("restore_handlers")
def test_a_signal_sets_stop_and_later_ones_are_ignored_not_handled_inside_the_first() -> None:
    stop = threading.Event()
    handler = stop_on_signal(stop)
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    os.kill(os.getpid(), signal.SIGTERM)
    assert stop.wait(5)
    # A second handler run inside the first one's Event.set would wait for the lock that
    # Event.set holds, in the same thread: later signals must not reach a handler at all.
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
    assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    os.kill(os.getpid(), signal.SIGINT)  # ignored: no KeyboardInterrupt, no hang
