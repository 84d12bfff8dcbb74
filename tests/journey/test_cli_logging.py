"""`--log-level`: Kafka client loggers stay at WARNING unless debug; the processor inherits it."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest
import typer

from journey.cli import _logging


@pytest.fixture(autouse=True)
def restore() -> Iterator[None]:
    kafka, root = logging.getLogger("kafka").level, logging.getLogger().level
    before = os.environ.get("JOURNEY_LOG_LEVEL")
    yield
    logging.getLogger("kafka").setLevel(kafka)
    logging.getLogger().setLevel(root)
    if before is None:
        os.environ.pop("JOURNEY_LOG_LEVEL", None)
    else:
        os.environ["JOURNEY_LOG_LEVEL"] = before


@pytest.mark.parametrize(("level", "kafka_shows_info"), [("info", False), ("warning", False),
                                                         ("debug", True)])
def test_kafka_client_logs_only_at_debug(level: str, kafka_shows_info: bool) -> None:
    logging.getLogger("kafka").setLevel(logging.NOTSET)
    _logging(level)
    assert logging.getLogger("kafka.conn").isEnabledFor(logging.INFO) is kafka_shows_info
    assert logging.getLogger("kafka.conn").isEnabledFor(logging.WARNING)
    assert os.environ["JOURNEY_LOG_LEVEL"] == level  # what `journey processor` child reads


def test_unknown_log_level_is_refused() -> None:
    with pytest.raises(typer.BadParameter):
        _logging("chatty")
