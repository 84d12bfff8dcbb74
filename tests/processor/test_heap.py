"""The processor hands freed heap memory back to the OS, and holds a lone customer compactly."""

from __future__ import annotations

import platform

import pytest

from processor import heap
from processor.derive import CoreConfig
from processor.memory import MemoryWarehouse
from processor.state import JourneyState
from tests.processor.conftest import Make


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_6_4_trim_returns_free_heap_memory_on_glibc() -> None:
    garbage = [bytes(600) for _ in range(100_000)]
    del garbage[::2]
    assert heap.trim() is True


def test_6_4_a_lone_customer_is_held_as_its_bytes_and_a_shared_component_as_a_tuple(
    make: Make,
) -> None:
    state = JourneyState(CoreConfig(), MemoryWarehouse())
    # One email, two user_ids: the link is refused, one component holds two customers.
    state.apply([make("a1", 0, user="ua"), make("b1", 0, user="ub", email="s@x.io"),
                 make("c1", 10, user="uc", email="s@x.io")])
    held = [h for h in state._runs if h is not None]
    assert sorted(type(h).__name__ for h in held) == ["bytes", "tuple"]
    assert [len(h) for h in held if isinstance(h, tuple)] == [2]
    assert state.customers == 3
