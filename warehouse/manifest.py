"""The manifest (the one file that says which Parquet files make up the current warehouse) and
the durable file primitives it relies on.

Readers see a commit when, and only when, `manifest.json` is replaced; the replacement is atomic
(write a temporary file, fsync, os.replace, fsync the directory), so a reader or a crash sees
either the previous or the new version, never a mix.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from warehouse.errors import ManifestError, WarehouseIOError

MANIFEST = "manifest.json"


@dataclass(frozen=True, slots=True)
class DataFile:
    """One immutable Parquet file of a table; `bucket` is None for unbucketed tables."""

    path: str
    rows: int
    bucket: int | None = None


@dataclass(frozen=True, slots=True)
class RetiredFile:
    """A file no longer referenced, kept until `retired_at` + the grace period (epoch seconds)."""

    path: str
    retired_at: float


@dataclass(frozen=True, slots=True)
class Manifest:
    """One committed version of the warehouse."""

    version: int = 0
    committed_at: datetime | None = None
    offsets: dict[int, int] = field(default_factory=dict)
    watermark: datetime | None = None
    tables: dict[str, tuple[DataFile, ...]] = field(default_factory=dict)
    retired: tuple[RetiredFile, ...] = ()
    buckets: int | None = None

    def files(self, table: str) -> tuple[DataFile, ...]:
        """The files of a table (none if the table is empty)."""
        return self.tables.get(table, ())

    def rows(self, table: str) -> int:
        """The row count of a table in this version."""
        return sum(f.rows for f in self.files(table))

    def referenced(self) -> set[str]:
        """Relative paths of every file this version refers to."""
        return {f.path for files in self.tables.values() for f in files}

    def evolve(self, **changes: Any) -> Manifest:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def to_json(self) -> bytes:
        """The manifest as JSON bytes."""
        return orjson.dumps(
            {
                "version": self.version,
                "committed_at": _iso(self.committed_at),
                "offsets": {str(p): o for p, o in sorted(self.offsets.items())},
                "watermark": _iso(self.watermark),
                "tables": {
                    name: [_file_json(f) for f in files]
                    for name, files in sorted(self.tables.items())
                },
                "rows": {name: self.rows(name) for name in sorted(self.tables)},
                "buckets": self.buckets,
                "retired": [{"path": r.path, "retired_at": r.retired_at} for r in self.retired],
            },
            option=orjson.OPT_INDENT_2,
        )

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        """Parse a manifest written by to_json."""
        raw = orjson.loads(data)
        return cls(
            version=int(raw["version"]),
            committed_at=_parse(raw["committed_at"]),
            offsets={int(p): int(o) for p, o in raw["offsets"].items()},
            watermark=_parse(raw["watermark"]),
            tables={
                name: tuple(DataFile(f["path"], int(f["rows"]), f.get("bucket")) for f in files)
                for name, files in raw["tables"].items()
            },
            retired=tuple(RetiredFile(r["path"], float(r["retired_at"])) for r in raw["retired"]),
            buckets=raw.get("buckets"),
        )


def _file_json(f: DataFile) -> dict[str, Any]:
    out: dict[str, Any] = {"path": f.path, "rows": f.rows}
    if f.bucket is not None:
        out["bucket"] = f.bucket
    return out


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def _parse(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def read_manifest(root: Path) -> Manifest | None:
    """The current manifest under root, or None if nothing was ever committed."""
    path = root / MANIFEST
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise WarehouseIOError("cannot read the manifest", path=str(path)) from exc
    try:
        return Manifest.from_json(data)
    except (ValueError, KeyError, TypeError) as exc:
        raise ManifestError("the manifest is not valid", path=str(path)) from exc


def write_manifest(root: Path, manifest: Manifest) -> None:
    """Replace the manifest atomically and durably."""
    atomic_write(root / MANIFEST, manifest.to_json())


def atomic_write(path: Path, data: bytes) -> None:
    """Write a file so that readers and crashes see the old or the new content, never a part."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise WarehouseIOError("cannot write file atomically", path=str(path)) from exc


def fsync_dir(directory: Path) -> None:
    """Make the entries of a directory (new or renamed files) durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_parquet(
    root: Path, relative: str, table: pa.Table, row_group_rows: int, bucket: int | None = None
) -> DataFile:
    """Write a new immutable Parquet file durably and describe it (the directory is not synced)."""
    path = root / relative
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path, compression="zstd", row_group_size=row_group_rows)
        os.chmod(path, 0o444)  # immutable: a stray `COPY ... TO` must not rewrite history
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise WarehouseIOError("cannot write a Parquet file", path=str(path)) from exc
    return DataFile(relative, table.num_rows, bucket)


def new_file_name(table: str, version: int, bucket: int | None = None) -> str:
    """A fresh relative path for a file of a table: unique, so no file is ever overwritten."""
    prefix = "" if bucket is None else f"b{bucket:04d}-"
    return f"{table}/{prefix}v{version:09d}-{uuid.uuid4().hex[:12]}.parquet"
