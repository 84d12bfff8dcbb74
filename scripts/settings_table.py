"""Print the README configuration table from the Settings classes (python scripts/settings_table.py)."""

from api.settings import ApiSettings
from ingest.settings import IngestSettings
from journey.settings import CommonSettings
from processor.settings import ProcessorSettings
from warehouse.settings import WarehouseSettings
seen=set()
print("| variable | role | default | meaning |\n|---|---|---|---|")
for cls, role in [(CommonSettings,"all"),(IngestSettings,"collector"),(ProcessorSettings,"processor"),(WarehouseSettings,"processor (warehouse)"),(ApiSettings,"api")]:
    for name, f in cls.model_fields.items():
        if name in seen: continue
        seen.add(name)
        d = f.default if f.default_factory is None else f.default_factory()
        if hasattr(d, "get_secret_value"): d="(generated)"
        if d == [] : d = "(none)"
        if isinstance(d, list): d=",".join(map(str,d))
        print(f"| `JOURNEY_{name.upper()}` | {role} | `{d}` | {f.description} |")
