"""STYLE: every setting is documented in README (name and description)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from api.settings import ApiSettings
from ingest.settings import IngestSettings
from journey.settings import CommonSettings
from processor.settings import ProcessorSettings
from warehouse.settings import WarehouseSettings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
SERVICES: list[type[BaseSettings]] = [
    CommonSettings, IngestSettings, ProcessorSettings, WarehouseSettings, ApiSettings,
]


@pytest.mark.parametrize("settings", SERVICES, ids=lambda s: s.__name__)
def test_every_setting_is_in_readme_with_a_description(settings: type[BaseSettings]) -> None:
    prefix = str(settings.model_config.get("env_prefix", ""))
    for name, field in settings.model_fields.items():
        assert field.description, f"{settings.__name__}.{name} has no description"
        env = f"`{prefix}{name.upper()}`"
        assert env in README, f"{env} is not documented in README.md"


def test_readme_lists_no_setting_that_does_not_exist() -> None:
    table = README.split("<!-- settings-table:start -->")[1].split("<!-- settings-table:end -->")[0]
    listed = set(re.findall(r"^\| `(JOURNEY_[A-Z0-9_]+)` \|", table, flags=re.MULTILINE))
    known = {f"{s.model_config.get('env_prefix', '')}{name.upper()}"
             for s in SERVICES for name in s.model_fields}
    assert listed, "README's settings table was not found"
    assert listed <= known, f"README documents settings that no longer exist: {listed - known}"
