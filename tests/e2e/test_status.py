"""`journey status`: the processor's last commit and its lag per partition, read while it runs."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from journey.cli import app
from tests.e2e.test_doctor import PARTITIONS, _append, _messages, _records, run_processor
from warehouse.settings import WarehouseSettings
from warehouse.writer import WarehouseWriter


def _status(data: Path) -> dict[str, object]:
    result = CliRunner().invoke(app, ["status", "--data-dir", str(data), "--json"])
    assert result.exit_code == 0, result.output
    answer: dict[str, object] = orjson.loads(result.output.strip().splitlines()[-1])
    return answer


def test_status_shows_the_last_commit_and_the_lag_per_partition(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("JOURNEY_KAFKA_BOOTSTRAP", "JOURNEY_CATALOG_URL", "JOURNEY_TOPIC"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("JOURNEY_PARTITIONS", str(PARTITIONS))
    data = tmp_path / "data"
    first = _records([m for u in range(5) for m in _messages(f"s{u}", f"s{u}@x.org", u)])
    _append(data, first)
    run_processor(data)
    done = _status(data)
    assert done["running"] is False and done["lag"] == 0 and done["version"]
    assert done["committed_at"] and done["watermark"]
    partitions = done["partitions"]
    assert isinstance(partitions, dict)
    assert sum(p["committed"] for p in partitions.values()) == len(first)

    later = _records(_messages("late", "late@x.org", 30))
    _append(data, later)  # acknowledged, not processed yet
    with WarehouseWriter(WarehouseSettings(data_dir=data)):  # as a running processor holds it
        waiting = _status(data)
    assert waiting["running"] is True and waiting["lag"] == len(later)
    assert waiting["version"] == done["version"]
    run_processor(data)
    assert _status(data)["lag"] == 0
