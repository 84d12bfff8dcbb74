"""The identity graph: union-find over 64-bit key hashes, with each component's members.

A component is a connected component of identity keys linked by any event (the one-user_id
refusal of SPEC 2.2 is ignored, so a component may hold several customers); an alias previousId
is linked by value to every key with that value (a *value node*). Deriving a component alone
equals deriving all events at once (SPEC 7), so it is the unit the processor re-derives.

Nodes are small integers in flat int32/int64 arrays (parent, next member in a circular list, size,
hash), and a key's node is found through a HashIndex (two sorted numpy arrays plus a dict of the
newest keys): about 32 bytes per key, where a dict from hash to node cost about 120 (its entries
and two int objects per key: 430 MB at 10M events).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator

import numpy as np
import numpy.typing as npt

from journey.hashing import hash64

MERGE_AT = 1 << 18  # newest keys held in the dict before they are merged into the arrays


def value_hash(value: str) -> int:
    """The hash of an alias value node (a domain apart from typed keys)."""
    return hash64("\x01value\x00" + value)


class HashIndex:
    """A map from 64-bit hashes to node numbers: 12 bytes an entry in two sorted arrays, the
    newest entries in a dict until they are merged in bulk (the dedup set's layout).

    A lookup in the arrays is a binary search (about 1 us from Python), so a batch first
    `prefetch`es every hash it will look up in one vectorised search."""

    def __init__(self) -> None:
        self._keys: npt.NDArray[np.int64] = np.empty(0, dtype=np.int64)
        self._values: npt.NDArray[np.int32] = np.empty(0, dtype=np.int32)
        self._recent: dict[int, int] = {}
        self._hot: dict[int, int] = {}  # the last prefetch's hashes found in the arrays
        self._absent: set[int] = set()  # ... and those not in them

    def __len__(self) -> int:
        return len(self._keys) + len(self._recent)

    def get(self, h: int) -> int | None:
        """The value of a hash, if present."""
        value = self._recent.get(h)
        if value is not None:
            return value
        value = self._hot.get(h)
        if value is not None or h in self._absent:
            return value
        keys = self._keys
        i = int(keys.searchsorted(h))
        return int(self._values[i]) if i < len(keys) and int(keys[i]) == h else None

    def put(self, h: int, value: int) -> None:
        """Add a hash that is not present."""
        self._recent[h] = value
        self._absent.discard(h)
        if len(self._recent) >= MERGE_AT:
            self._merge()

    def prefetch(self, hashes: Iterable[int]) -> None:
        """Look these hashes up at once; later get()s of them cost a dict probe."""
        probe = np.fromiter(set(hashes), dtype=np.int64)
        keys = self._keys
        if not len(keys) or not len(probe):
            self._hot, self._absent = {}, set(probe.tolist())
            return
        at = np.minimum(keys.searchsorted(probe), len(keys) - 1)
        hit = keys[at] == probe
        self._hot = dict(zip(probe[hit].tolist(), self._values[at[hit]].tolist(), strict=True))
        self._absent = set(probe[~hit].tolist())

    def items(self) -> Iterator[tuple[int, int]]:
        """Every (hash, value)."""
        keys, values = self._keys, self._values
        for at in range(0, len(keys), 1 << 16):  # a slice at a time, never all as objects
            yield from zip(keys[at:at + (1 << 16)].tolist(), values[at:at + (1 << 16)].tolist(),
                           strict=True)
        yield from list(self._recent.items())

    def _merge(self) -> None:
        recent = sorted(self._recent.items())
        keys = np.fromiter((k for k, _ in recent), dtype=np.int64, count=len(recent))
        values = np.fromiter((v for _, v in recent), dtype=np.int32, count=len(recent))
        at = self._keys.searchsorted(keys)
        self._keys = np.insert(self._keys, at, keys)
        self._values = np.insert(self._values, at, values)
        self._absent.difference_update(self._recent)  # a prefetch's misses may be merged now
        self._recent = {}

    def nbytes(self) -> int:
        """Approximate memory held, in bytes."""
        return int(self._keys.nbytes + self._values.nbytes) + 100 * len(self._recent)


class KeyGraph:
    """Union-find with path halving, union by size and member enumeration."""

    def __init__(self) -> None:
        self._node = HashIndex()
        self._parent = array("i")
        self._next = array("i")  # circular list of a component's members
        self._hash = array("q")
        self._size = array("i")

    def __len__(self) -> int:
        return len(self._parent)

    def node(self, h: int) -> int | None:
        """The node of a hash, if known."""
        return self._node.get(h)

    def prefetch(self, hashes: Iterable[int]) -> None:
        """Look up the nodes of many hashes at once (before a batch's node() calls)."""
        self._node.prefetch(hashes)

    def add(self, h: int) -> tuple[int, bool]:
        """The node of a hash, created if new; (node, created)."""
        node = self._node.get(h)
        if node is not None:
            return node, False
        node = len(self._parent)
        self._node.put(h, node)
        self._parent.append(node)
        self._next.append(node)
        self._hash.append(h)
        self._size.append(1)
        return node, True

    def find(self, node: int) -> int:
        """The root of a node's component."""
        parent = self._parent
        while parent[node] != node:
            grand = parent[parent[node]]
            parent[node] = grand
            node = grand
        return node

    def union(self, a: int, b: int) -> tuple[int, int]:
        """Join two components; (root, absorbed root) with absorbed == root if already one."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return ra, ra
        if self._size[ra] < self._size[rb]:
            ra, rb = rb, ra
        self._parent[rb] = ra
        self._size[ra] += self._size[rb]
        nxt = self._next
        nxt[ra], nxt[rb] = nxt[rb], nxt[ra]  # splice the two circular member lists
        return ra, rb

    def members(self, node: int) -> Iterator[int]:
        """The hashes of every node in a node's component."""
        start = node
        nxt, hashes = self._next, self._hash
        while True:
            yield hashes[node]
            node = nxt[node]
            if node == start:
                return

    def roots(self) -> Iterator[tuple[int, int]]:
        """(hash, hash of its component's root) for every node."""
        hashes = self._hash
        for h, node in self._node.items():
            yield h, hashes[self.find(node)]

    def size(self, node: int) -> int:
        """How many nodes a node's component has."""
        return self._size[self.find(node)]

    def nbytes(self) -> int:
        """Approximate memory held, in bytes (arrays plus the hash index)."""
        columns = (self._parent, self._next, self._hash, self._size)
        arrays = sum(a.itemsize * len(a) for a in columns)
        return arrays + self._node.nbytes()
