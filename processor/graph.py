"""The identity graph: union-find over 64-bit key hashes, with each component's members.

A component is a connected component of identity keys linked by any event (the one-user_id
refusal of SPEC 2.2 is ignored, so a component may hold several customers); an alias previousId
is linked by value to every key with that value (a *value node*). Deriving a component alone
equals deriving all events at once (SPEC 7), so it is the unit the processor re-derives.

Nodes are small integers in flat int64 arrays (parent, next member in a circular list, hash):
about 24 bytes per key plus one dict entry from hash to node, instead of Python objects per key.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator

from journey.hashing import hash64


def value_hash(value: str) -> int:
    """The hash of an alias value node (a domain apart from typed keys)."""
    return hash64("\x01value\x00" + value)


class KeyGraph:
    """Union-find with path halving, union by size and member enumeration."""

    def __init__(self) -> None:
        self._node: dict[int, int] = {}
        self._parent = array("q")
        self._next = array("q")  # circular list of a component's members
        self._hash = array("q")
        self._size = array("q")

    def __len__(self) -> int:
        return len(self._parent)

    def node(self, h: int) -> int | None:
        """The node of a hash, if known."""
        return self._node.get(h)

    def add(self, h: int) -> tuple[int, bool]:
        """The node of a hash, created if new; (node, created)."""
        node = self._node.get(h)
        if node is not None:
            return node, False
        node = len(self._parent)
        self._node[h] = node
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
        """Approximate memory held, in bytes (arrays plus the hash -> node dict)."""
        columns = (self._parent, self._next, self._hash, self._size)
        arrays = sum(a.itemsize * len(a) for a in columns)
        return arrays + 100 * len(self._node)
