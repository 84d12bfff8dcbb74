"""Dead-letter replay (SPEC 1.3): re-normalise the collector's dead letters, append those that pass.

A letter is named by a hash of its content. Replayed letters are recorded in `replayed.log`
beside the store (not `*.jsonl`, which listing reads as dead letters), and never replayed twice.
A letter without a messageId is given one derived from its name, so a replay cut short by a
crash between append and record repeats the same event ids and is deduplicated downstream.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import orjson
from pydantic import ValidationError

from ingest.errors import InvalidEventError
from ingest.routes import Collector, partition_key
from ingest.wire import event_size
from journey.deadletter import DeadLetter, append_durably, list_dead_letters
from journey.errors import DeadLetterWriteError

LEDGER = "replayed.log"
log = logging.getLogger(__name__)


def letter_id(letter: DeadLetter) -> str:
    """A stable name of one dead letter: a hash of its content."""
    body = orjson.dumps(letter.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(body).hexdigest()[:24]


def replayed_ids(directory: Path) -> set[str]:
    """Names of the letters already replayed."""
    path = directory / LEDGER
    if not path.exists():
        return set()
    ids: set[str] = set()
    for line in path.read_bytes().splitlines():
        try:
            ids.add(str(orjson.loads(line)["id"]))
        except (orjson.JSONDecodeError, KeyError, TypeError):
            continue  # a line cut short by a crash: that letter is simply replayed again
    return ids


@dataclass(frozen=True, slots=True)
class Listed:
    """A dead letter with its name and whether it was replayed."""

    id: str
    replayed: bool
    letter: DeadLetter


def list_letters(directory: Path, limit: int = 100) -> list[Listed]:
    """The newest `limit` dead letters of every stage, newest first, marked when replayed."""
    done = replayed_ids(directory)
    named = ((letter_id(letter), letter) for letter in list_dead_letters(directory, limit))
    return [Listed(name, name in done, letter) for name, letter in named]


def _collector_letters(directory: Path) -> Iterator[DeadLetter]:
    path = directory / "collector.jsonl"
    if not path.exists():
        return
    with path.open("rb") as lines:
        for line in lines:
            if line.strip():
                try:
                    yield DeadLetter.model_validate_json(line)
                except ValidationError:
                    continue  # cut short by a crash mid-write


@dataclass
class ReplayResult:
    """What a replay did: appended, still failing (name, reason), and skipped as done before."""

    replayed: int = 0
    failing: list[tuple[str, str]] = field(default_factory=list)
    already: int = 0


def _record(directory: Path, entries: list[dict[str, str]]) -> None:
    data = b"".join(orjson.dumps(entry) + b"\n" for entry in entries)
    path = directory / LEDGER
    try:
        append_durably(path, data)
    except OSError as exc:
        raise DeadLetterWriteError(f"cannot record replayed letters: {exc}",
                                   file=str(path)) from exc


def replay(directory: Path, collector: Collector, now: datetime,
           since: datetime | None = None) -> ReplayResult:
    """Append the collector's dead letters (received at or after `since`) that now normalise."""
    result = ReplayResult()
    done = replayed_ids(directory)
    records: list[tuple[bytes, bytes]] = []
    entries: list[dict[str, str]] = []
    for letter in _collector_letters(directory):
        name = letter_id(letter)
        if name in done:
            result.already += 1
            continue
        received = letter.received_at or now
        if since is not None and received < since:
            continue
        done.add(name)
        message = letter.event
        if isinstance(message, dict) and not message.get("messageId"):
            message = {**message, "messageId": f"dl-{name}"}
        try:
            event = collector.event(event_size(message), message, received,
                                    collector.key_channels.get(letter.write_key or ""))
        except InvalidEventError as exc:
            result.failing.append((name, exc.message))
            continue
        except Exception as exc:  # a normaliser bug must fail this letter, not every replay
            log.exception("replaying dead letter %s failed", name)
            result.failing.append((name, f"could not normalise ({type(exc).__name__}: {exc})"))
            continue
        records.append((partition_key(event), event.to_json()))
        entries.append({"id": name, "event_id": event.event_id, "replayed_at": now.isoformat()})
    if records:
        collector.producer.append(records)
        _record(directory, entries)
    result.replayed = len(records)
    return result
