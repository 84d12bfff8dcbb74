"""The event log between collector and processor: Kafka, or an embedded durable log."""
