"""Stable 64-bit hashes of identity keys and event ids, shared by the processor and the warehouse.

The processor keeps its identity graph and dedup set as these integers instead of strings, and
the warehouse stores them beside each event (`key_hash` of its primary key, `event_hash`) so a
customer's history and the set of stored event ids read back without parsing the events. They are
blake2b digests (not Python's salted `hash()`), so they are equal in every process and release.
"""

from __future__ import annotations

from functools import lru_cache
from hashlib import blake2b


def hash64(text: str) -> int:
    """A signed 64-bit integer digest of a text (fits a BIGINT column)."""
    return int.from_bytes(blake2b(text.encode("utf-8"), digest_size=8).digest(), "big", signed=True)


# The processor hashes a batch's keys and ids, then the warehouse writer hashes the same ones
# again when it stores the batch: a cache the size of a few batches makes the second time cheap.
CACHE_ENTRIES = 1 << 17


@lru_cache(maxsize=CACHE_ENTRIES)
def key_hash(key_type: str, value: str) -> int:
    """The hash of one typed identity key (SPEC 2.1)."""
    return hash64(key_type + "\x00" + value)


@lru_cache(maxsize=CACHE_ENTRIES)
def event_hash(event_id: str) -> int:
    """The hash of an event id: the processor's dedup key (SPEC 1.2)."""
    return hash64(event_id)
