"""The identity graph's hash index answers like a dict, across prefetches and merges."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from processor import graph
from processor.graph import HashIndex, KeyGraph

hashes = st.integers(-(2**63), 2**63 - 1) | st.integers(-3, 3)  # small ones repeat often


@settings(max_examples=200, deadline=None)
@given(steps=st.lists(st.tuples(st.lists(hashes, max_size=10), st.lists(hashes, max_size=10)),
                      max_size=12))
def test_the_hash_index_equals_a_dict(steps: list[tuple[list[int], list[int]]]) -> None:
    merge_at = graph.MERGE_AT
    graph.MERGE_AT = 3  # merge into the sorted arrays often
    try:
        index, expected = HashIndex(), {}
        for prefetched, added in steps:
            index.prefetch(prefetched)
            for h in added:
                assert index.get(h) == expected.get(h)
                if h not in expected:
                    expected[h] = len(expected)
                    index.put(h, expected[h])
            # A prefetch answers for hashes put after it as well.
            for h in prefetched + added:
                assert index.get(h) == expected.get(h)
        assert dict(index.items()) == expected and len(index) == len(expected)
    finally:
        graph.MERGE_AT = merge_at


def test_a_graph_keeps_its_components_across_merges() -> None:
    merge_at = graph.MERGE_AT
    graph.MERGE_AT = 2
    try:
        g = KeyGraph()
        nodes = [g.add(h)[0] for h in (50, -7, 3, 10**18, 8)]
        g.union(nodes[0], nodes[3])
        g.union(nodes[3], nodes[4])
        g.prefetch([50, 8, 99])
        assert g.add(8) == (nodes[4], False) and g.node(99) is None
        assert sorted(g.members(g.node(50) or 0)) == [8, 50, 10**18]
        assert dict(g.roots())[8] == dict(g.roots())[50] != dict(g.roots())[-7]
    finally:
        graph.MERGE_AT = merge_at
