"""A spill directory of its own for each writer process, so DuckDB can take a sort or a join that
outgrows the writer's memory limit to disk instead of failing.

Maintenance merges the events files, which are kept sorted by key_hash. With nowhere to spill,
that sort needed a 1 GB limit at 10M events and raised the resident set by a gigabyte (a peak of
1,225 MiB in a process that held nothing else). With this directory it ran within the writer's
256 MB: a peak of 512 MiB, 28 s against 32 s (the same copy of the lake, measured).

DuckDB names its temporary files alike in every process, so each writer gets a directory named
after its pid; a directory whose process is gone (killed mid-query) is removed by the next writer.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def make(parent: Path) -> Path:
    """A new private directory under parent, after removing those of processes that are gone."""
    parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    for old in parent.iterdir():
        pid = old.name.split("-", 1)[0]
        if old.is_dir() and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=parent))


def remove(path: Path) -> None:
    """Remove a directory made by make() (DuckDB deletes its files as queries end)."""
    shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True
