"""Open the configured log: Kafka when a bootstrap address is set, else the embedded log."""

from __future__ import annotations

from journey.log.base import LogConsumer, LogProducer
from journey.log.embedded import EmbeddedLog
from journey.log.kafka import KafkaLog, ensure_topic
from journey.log.kafka_group import KafkaGroupConsumer
from journey.settings import CommonSettings


def open_producer(settings: CommonSettings) -> LogProducer:
    """A producer on settings.topic (the topic is created with settings.partitions if missing).

    On Kafka nothing is contacted here: the topic is created on the first append, so the
    collector opens its port even while the broker is down and answers 503 until it is back.
    """
    if settings.kafka_bootstrap:
        return KafkaLog(settings.kafka_bootstrap, settings.topic, partitions=settings.partitions,
                        retention_ms=retention_ms(settings))
    return _open(settings)


def retention_ms(settings: CommonSettings) -> int:
    """The events topic's retention (JOURNEY_KAFKA_RETENTION_HOURS) in milliseconds."""
    return round(settings.kafka_retention_hours * 3_600_000)


def open_consumer(settings: CommonSettings) -> LogConsumer:
    """A consumer of every partition of settings.topic, reading from offset 0 until it seeks."""
    return _open(settings)


def _open(settings: CommonSettings) -> EmbeddedLog | KafkaLog:
    if settings.kafka_bootstrap:
        ensure_topic(settings.kafka_bootstrap, settings.topic, settings.partitions,
                     retention_ms=retention_ms(settings))
        return KafkaLog(settings.kafka_bootstrap, settings.topic)
    return EmbeddedLog(settings.log_dir, settings.partitions, settings.topic)


def open_group_consumer(settings: CommonSettings, group_id: str) -> KafkaGroupConsumer:
    """A member of a Kafka consumer group on settings.topic (needs a bootstrap address)."""
    if not settings.kafka_bootstrap:
        raise ValueError("a consumer group needs Kafka")
    ensure_topic(settings.kafka_bootstrap, settings.topic, settings.partitions,
                 retention_ms=retention_ms(settings))
    return KafkaGroupConsumer(settings.kafka_bootstrap, settings.topic, group_id)
