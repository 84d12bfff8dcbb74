"""The manifest: its JSON form and its atomic replacement."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from warehouse.errors import ManifestError
from warehouse.manifest import (
    DataFile,
    Manifest,
    RetiredFile,
    atomic_write,
    read_manifest,
    write_manifest,
)


def test_manifest_round_trips_through_json(tmp_path: Path) -> None:
    manifest = Manifest(
        version=7,
        committed_at=datetime(2026, 3, 1, 9, 0, 0, 123456, tzinfo=UTC),
        offsets={0: 10, 3: 42},
        watermark=datetime(2026, 3, 1, 8, 59, tzinfo=UTC),
        tables={"events": (DataFile("events/v1.parquet", 5),),
                "customers": (DataFile("customers/b0001-v1.parquet", 2, 1),)},
        retired=(RetiredFile("events/v0.parquet", 1700000000.5),),
        buckets=64,
    )
    write_manifest(tmp_path, manifest)
    assert read_manifest(tmp_path) == manifest
    assert manifest.rows("events") == 5 and manifest.rows("sessions") == 0
    text = (tmp_path / "manifest.json").read_text()
    assert '"watermark": "2026-03-01T08:59:00Z"' in text  # SPEC: UTC with Z on the wire


def test_missing_manifest_means_nothing_committed(tmp_path: Path) -> None:
    assert read_manifest(tmp_path) is None


def test_a_damaged_manifest_is_a_typed_error(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text('{"version": 1')
    with pytest.raises(ManifestError) as info:
        read_manifest(tmp_path)
    assert info.value.context["path"] == str(tmp_path / "manifest.json")


def test_atomic_write_replaces_whole_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "views.sql"
    atomic_write(target, b"old")
    atomic_write(target, b"new content")
    assert target.read_bytes() == b"new content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["views.sql"]
