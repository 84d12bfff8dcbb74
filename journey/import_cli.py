"""The logic of `journey import` and `journey deadletter list|replay`.

`journey import` maps the file's rows locally (ingest.imports, the same code as POST /v1/imports),
reports unusable rows by line, and posts the rest as JSON Lines to /v1/imports in chunks, retrying
429/503 answers after their Retry-After. Line numbers in the server's answer are mapped back to
the file's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from ingest import imports
from ingest.errors import InvalidEventError
from ingest.replay import ReplayResult, list_letters, replay
from ingest.routes import Collector
from ingest.settings import IngestSettings
from ingest.wire import split_write_key
from journey.deadletter import DeadLetterStore
from journey.errors import ConfigError
from journey.log.factory import open_producer

_FORMATS = {".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}


@dataclass
class ImportSummary:
    """Rows imported and rows rejected (line, reason) of one file."""

    imported: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)


def default_write_key(settings: IngestSettings) -> str:
    """JOURNEY_WRITE_KEYS' first key, else the one `journey up` generated under the data dir."""
    if settings.write_keys:
        return split_write_key(settings.write_keys[0].get_secret_value())[0]
    stored = settings.data_dir / "credentials.json"
    if stored.exists():
        keys = orjson.loads(stored.read_bytes()).get("write_keys") or []
        if keys:
            return split_write_key(str(keys[0]))[0]
    raise ConfigError("no write key: pass --write-key or set JOURNEY_WRITE_KEYS")


def _post(client: httpx.Client, lines: list[bytes], attempts: int = 8) -> dict[str, Any]:
    answer: httpx.Response | None = None
    for _ in range(attempts):
        answer = client.post("/v1/imports", params={"kind": "events", "format": "jsonl"},
                             content=b"\n".join(lines))
        if answer.status_code not in (429, 503):
            break
        time.sleep(min(float(answer.headers.get("retry-after", "1")), 30.0))
    assert answer is not None
    if answer.status_code not in (200, 400) or "imported" not in answer.text:
        raise ConfigError(f"the collector answered {answer.status_code}: {answer.text[:300]}")
    body: dict[str, Any] = answer.json()
    return body


def run_import(path: Path, kind: str, mapping: str | None, url: str, write_key: str,
               chunk_rows: int = 500, console: Console | None = None) -> ImportSummary:
    """Import one CSV/JSONL file through the collector at `url`; rejected rows by file line."""
    fmt = _FORMATS.get(path.suffix.lower(), "csv")
    items = imports.import_items(path.read_bytes(), kind, fmt, imports.parse_mapping(mapping))
    summary = ImportSummary()
    good: list[tuple[int, bytes]] = []
    for line, _, message in items:
        if isinstance(message, InvalidEventError):
            summary.rejected.append((line, message.message))
        else:
            good.append((line, orjson.dumps(message)))
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                        MofNCompleteColumn(), console=console or Console(stderr=True))
    with httpx.Client(base_url=url, auth=(write_key, ""), timeout=60) as client, progress:
        task = progress.add_task(f"importing {path.name}", total=len(good))
        for start in range(0, len(good), chunk_rows):
            chunk = good[start:start + chunk_rows]
            body = _post(client, [data for _, data in chunk])
            summary.imported += int(body["imported"])
            # The server numbers the chunk's lines from 1: map them back to the file's lines.
            summary.rejected += [(chunk[r["line"] - 1][0], r["reason"]) for r in body["rejected"]]
            progress.advance(task, len(chunk))
    summary.rejected.sort()
    return summary


def print_summary(summary: ImportSummary, console: Console, shown: int = 50) -> None:
    """The counts and the first `shown` rejected rows."""
    console.print(f"imported {summary.imported} rows, rejected {len(summary.rejected)}")
    if summary.rejected:
        table = Table("line", "reason")
        for line, reason in summary.rejected[:shown]:
            table.add_row(str(line), reason)
        console.print(table)


def print_dead_letters(settings: IngestSettings, limit: int, console: Console) -> None:
    """A table of the newest dead letters of every stage."""
    table = Table("id", "received_at", "stage", "reason", "replayed")
    for item in list_letters(settings.data_dir / "deadletter", limit):
        received = item.letter.received_at.isoformat() if item.letter.received_at else "-"
        table.add_row(item.id, received, item.letter.stage, item.letter.reason,
                      "yes" if item.replayed else "")
    console.print(table)


def run_replay(settings: IngestSettings, since: datetime | None) -> ReplayResult:
    """Replay the collector's dead letters into the configured log."""
    directory = settings.data_dir / "deadletter"
    producer = open_producer(settings)
    try:
        collector = Collector(settings, producer, DeadLetterStore(directory))
        return replay(directory, collector, datetime.now(UTC), since)
    finally:
        producer.close()
