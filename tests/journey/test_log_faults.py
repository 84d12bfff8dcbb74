"""SPEC 6.5: a log on a read-only disk or file is reported as not writable, never as damaged."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from journey.log.embedded import EmbeddedLog
from journey.log.errors import LogCorrupt, LogNotWritable, LogUnavailable


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """Make a closed file unwritable, even for root (which ignores the mode bits)."""
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(path)], check=True)
    else:
        path.chmod(0o444)
    try:
        yield
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        else:
            path.chmod(0o600)


def test_6_5_a_read_only_log_file_is_not_writable_not_corrupt(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path / "log", 2, "t")
    log.append([(b"k", b"v")])
    log.close()
    with read_only(tmp_path / "log" / "t.sqlite3"), pytest.raises(LogNotWritable) as raised:
        EmbeddedLog(tmp_path / "log", 2, "t").append([(b"k", b"w")])
    assert isinstance(raised.value, LogUnavailable) and not isinstance(raised.value, LogCorrupt)
    assert "read-only" in raised.value.message
    reopened = EmbeddedLog(tmp_path / "log", 2, "t")  # writable again: nothing was damaged
    reopened.append([(b"k", b"w")])
    reopened.close()


def test_6_5_a_log_directory_that_cannot_be_created_is_not_writable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(LogNotWritable):
        EmbeddedLog(blocker / "log", 2, "t")
