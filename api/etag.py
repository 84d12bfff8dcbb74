"""ETags: one per (snapshot version, request), so a poll gets 304 until the data changes."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def make_etag(version: int, path: str, params: Iterable[tuple[str, str]]) -> str:
    """A strong ETag from the snapshot version, the path and the sorted query parameters."""
    digest = hashlib.sha256(path.encode())
    for name, value in sorted(params):
        digest.update(b"\0" + name.encode() + b"=" + value.encode())
    return f'"v{version}-{digest.hexdigest()[:20]}"'


def matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an If-None-Match header (a list of tags, `*`, weak or strong) matches the ETag."""
    if not if_none_match:
        return False
    for tag in if_none_match.split(","):
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False
