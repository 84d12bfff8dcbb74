"""SPEC 1.2: the set of stored event-id hashes answers exactly like a set, across merges."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from processor import dedup
from processor.dedup import EventIdSet

hashes = st.integers(-(2**63), 2**63 - 1) | st.integers(-3, 3)  # small ones repeat often


@settings(max_examples=200, deadline=None)
@given(start=st.lists(hashes, max_size=30), steps=st.lists(st.lists(hashes, max_size=12),
                                                            max_size=12),
       probes=st.lists(hashes, max_size=20))
def test_1_2_the_id_set_equals_a_python_set(start: list[int], steps: list[list[int]],
                                            probes: list[int]) -> None:
    merge_at = dedup.MERGE_AT
    dedup.MERGE_AT = 4  # merge into the sorted array often
    try:
        ids = EventIdSet(np.array(start, dtype=np.int64) if start else None)
        expected = set(start)
        for values in steps:
            assert ids.known(values) == [v in expected for v in values]
            ids.update(values)
            expected.update(values)
        ids._merge()  # the recent set may repeat an id of the array until it is merged
        assert len(ids) == len(expected)
        for value in probes + start:
            assert (value in ids) == (value in expected)
        assert ids.known(probes) == [v in expected for v in probes]
    finally:
        dedup.MERGE_AT = merge_at


def test_1_2_a_merge_keeps_the_array_sorted_and_unique() -> None:
    ids = EventIdSet(np.array([5, 1, 9, 1], dtype=np.int64))
    for value in (9, 3, 3, 11, -2, 5):
        ids.add(value)
    ids._merge()
    assert ids._sorted.tolist() == [-2, 1, 3, 5, 9, 11]
    assert ids.known([4, 11, -2]) == [False, True, True]
