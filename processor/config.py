"""The journey core's configuration, built once from the processor's settings."""

from __future__ import annotations

from processor.derive import CoreConfig
from processor.settings import ProcessorSettings
from processor.stages.model import load_models


def core_config(settings: ProcessorSettings) -> CoreConfig:
    """The journey core's configuration from the processor's settings."""
    return CoreConfig(
        session_timeout_s=settings.session_timeout_s,
        split_on_campaign_change=settings.split_on_campaign_change,
        models=tuple(load_models(settings.models)),
    )
