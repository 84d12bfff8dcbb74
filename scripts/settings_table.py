"""Print README's configuration table from the Settings classes.

    PYTHONPATH=. .venv/bin/python scripts/settings_table.py
"""

from __future__ import annotations

from typing import Any

from pydantic_settings import BaseSettings

from api.settings import ApiSettings
from ingest.settings import IngestSettings
from journey.settings import CommonSettings
from processor.settings import ProcessorSettings
from warehouse.settings import WarehouseSettings

ROLES: list[tuple[type[BaseSettings], str]] = [
    (CommonSettings, "all"),
    (IngestSettings, "collector"),
    (ProcessorSettings, "processor"),
    (WarehouseSettings, "processor (warehouse)"),
    (ApiSettings, "api"),
]


def shown(default: Any) -> str:
    """A default as README shows it."""
    if hasattr(default, "get_secret_value"):
        return "(generated)"
    if isinstance(default, list):
        return ",".join(map(str, default)) if default else "(none)"
    return str(default)


def main() -> None:
    seen: set[str] = set()
    print("| variable | role | default | meaning |\n|---|---|---|---|")
    for cls, role in ROLES:
        for name, field in cls.model_fields.items():
            if name in seen:
                continue
            seen.add(name)
            factory = field.default_factory
            default = field.default if factory is None else factory()  # type: ignore[call-arg]
            env = f"JOURNEY_{name.upper()}"
            print(f"| `{env}` | {role} | `{shown(default)}` | {field.description} |")


if __name__ == "__main__":
    main()
