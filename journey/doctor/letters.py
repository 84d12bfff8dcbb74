"""The dead-letter files' check and repair: every line one JSON object, ended by a newline.

A line cut by a crash mid-write, or garbage, would glue onto the next append; the repair moves
such lines into the quarantine and rewrites the file with the good ones (atomically, under the
lock that appends take).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import orjson

from journey.doctor.report import Finding, Quarantine, ok, problem, repaired


def _bad_lines(lines: list[bytes]) -> list[int]:
    """Indexes of the lines that are not one whole JSON object (blank lines are fine)."""
    bad = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            whole = line.endswith(b"\n") and isinstance(orjson.loads(line), dict)
        except orjson.JSONDecodeError:
            whole = False
        if not whole:
            bad.append(i)
    return bad


def files(data_dir: Path) -> list[Path]:
    """The dead-letter files."""
    directory = data_dir / "deadletter"
    return sorted(directory.glob("*.jsonl")) if directory.is_dir() else []


def check(data_dir: Path) -> list[Finding]:
    """One finding per dead-letter file: how many lines, which are damaged."""
    found = []
    for path in files(data_dir):
        lines = path.read_bytes().splitlines(keepends=True)
        bad = _bad_lines(lines)
        if bad:
            found.append(problem("dead letters", path, f"{len(bad)} of {len(lines)} lines are "
                                 f"not whole JSON objects (lines {[i + 1 for i in bad[:10]]})"))
        else:
            found.append(ok("dead letters", path, f"{len(lines)} lines read"))
    return found or [ok("dead letters", data_dir / "deadletter", "no dead-letter file")]


def repair(data_dir: Path, quarantine: Quarantine) -> list[Finding]:
    """Move the damaged lines of every file into the quarantine; keep the good ones."""
    found = []
    for path in files(data_dir):
        fd = os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            with open(fd, "rb", closefd=False) as old:
                lines = old.read().splitlines(keepends=True)
            bad = set(_bad_lines(lines))
            if not bad:
                continue
            aside = quarantine.place("deadletter", path.name + ".bad-lines")
            with open(aside, "ab") as out:
                os.chmod(aside, 0o600)
                out.writelines(line if line.endswith(b"\n") else line + b"\n"
                               for i, line in enumerate(lines) if i in bad)
            tmp = path.with_name(f".{path.name}.doctor")
            out_fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(out_fd, b"".join(line for i, line in enumerate(lines) if i not in bad))
                os.fsync(out_fd)
            finally:
                os.close(out_fd)
            os.replace(tmp, path)
        finally:
            os.close(fd)
        found.append(repaired("dead letters", path, f"moved {len(bad)} damaged lines to {aside}; "
                              f"kept {len(lines) - len(bad)}"))
    return found
