"""SPEC 2.1: lookups normalise `email:` and `phone:` keys as the collector stored them."""

from __future__ import annotations

import duckdb
import pytest

from api.errors import CustomerNotFoundError
from api.metrics.customers import find_customer
from tests.api.conftest import Dataset, at


@pytest.fixture
def loaded(con: duckdb.DuckDBPyConnection, data: Dataset) -> duckdb.DuckDBPyConnection:
    data.watermark = at(10)
    data.customer("c1", at(0), at(5), keys=(("email", "foo@example.com"), ("user_id", "u1")))
    data.customer("c2", at(0), at(5), keys=(("phone", "447700900123"), ("user_id", "u2")))
    data.customer("c3", at(0), at(5), keys=(("user_id", "CaseSensitive"),))
    data.load(con)
    return con


@pytest.mark.parametrize(("key", "customer_id"), [
    ("email:Foo@Example.com", "c1"), ("email:  FOO@EXAMPLE.COM ", "c1"),
    ("email:foo@example.com", "c1"), ("phone:+44 7700 900123", "c2"),
    ("phone:(44) 7700-900-123", "c2"), ("phone:447700900123", "c2"),
    ("user_id:CaseSensitive", "c3"),
])
def test_2_1_typed_lookups_are_normalised(
    loaded: duckdb.DuckDBPyConnection, key: str, customer_id: str,
) -> None:
    assert find_customer(loaded, key) == customer_id


@pytest.mark.parametrize("key", ["user_id:casesensitive", "email:Foo@Example.org", "phone:+44"])
def test_2_1_other_keys_are_not_folded(loaded: duckdb.DuckDBPyConnection, key: str) -> None:
    with pytest.raises(CustomerNotFoundError):
        find_customer(loaded, key)
