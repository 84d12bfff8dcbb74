"""What `journey doctor` found or did, one finding per line, and the quarantine it moves to."""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from journey.settings import QUARANTINE

Status = Literal["ok", "problem", "repaired", "not repaired", "refused"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One check's outcome or one repair's: the store, what became of it, where, and why."""

    store: str
    status: Status
    path: str
    message: str

    def line(self) -> str:
        """The finding as one line of text."""
        return f"{self.status:<12} {self.store:<16} {self.path}: {' '.join(self.message.split())}"

    def as_dict(self) -> dict[str, str]:
        """The finding as JSON-ready data."""
        return asdict(self)


def ok(store: str, path: Path | str, message: str) -> Finding:
    """A store that passed its check."""
    return Finding(store, "ok", str(path), message)


def problem(store: str, path: Path | str, message: str) -> Finding:
    """A missing or damaged store."""
    return Finding(store, "problem", str(path), message)


def repaired(store: str, path: Path | str, message: str) -> Finding:
    """A repair that was made."""
    return Finding(store, "repaired", str(path), message)


def not_repaired(store: str, path: Path | str, message: str) -> Finding:
    """What a repair could not recover, and why."""
    return Finding(store, "not repaired", str(path), message)


class Quarantine:
    """DATA_DIR/quarantine/<UTC time>/: where repairs move damaged files (never deleted),
    created owner-only on first use."""

    def __init__(self, data_dir: Path, now: datetime | None = None) -> None:
        stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S.%fZ")
        self.root = data_dir / QUARANTINE / stamp

    def place(self, *parts: str) -> Path:
        """A path inside the quarantine (its directory created)."""
        target = self.root.joinpath(*parts)
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        return target

    def move(self, path: Path, *parts: str) -> Path:
        """Move a file or directory into the quarantine (a rename on the same disk)."""
        target = self.place(*parts, path.name)
        shutil.move(str(path), str(target))
        return target

    def copy(self, path: Path, *parts: str) -> Path:
        """Copy a file into the quarantine (one that maintenance will later remove)."""
        target = self.place(*parts, path.name)
        shutil.copy2(path, target)
        os.chmod(target, 0o600)
        return target
