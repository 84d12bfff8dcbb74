"""Write keys and API tokens for `journey up` when none are configured (SPEC 6.1).

Generated ones are kept in the data directory so a restart keeps using the same ones.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import orjson


@dataclass(frozen=True, slots=True)
class Credentials:
    write_keys: list[str]
    api_tokens: list[str]
    generated_keys: bool  # journey made the write keys (so it may print them)
    generated_tokens: bool  # journey made the API tokens (so it may print them)

    @property
    def generated(self) -> bool:
        """Whether anything was generated rather than supplied by the operator."""
        return self.generated_keys or self.generated_tokens


def ensure(data_dir: Path, write_keys: list[str], api_tokens: list[str]) -> Credentials:
    """The configured credentials, or generated ones stored (owner-only) under data_dir."""
    if write_keys and api_tokens:
        return Credentials(write_keys, api_tokens, generated_keys=False, generated_tokens=False)
    path = data_dir / "credentials.json"
    stored: dict[str, list[str]] = {}
    if path.exists():
        stored = orjson.loads(path.read_bytes())
    keys = write_keys or stored.get("write_keys") or ["wk_" + secrets.token_urlsafe(18)]
    tokens = api_tokens or stored.get("api_tokens") or ["tok_" + secrets.token_urlsafe(24)]
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    # Created owner-only (never briefly readable by others), whatever the umask.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(orjson.dumps({"write_keys": keys, "api_tokens": tokens}))
    tmp.chmod(0o600)
    tmp.replace(path)
    return Credentials(keys, tokens, generated_keys=not write_keys,
                       generated_tokens=not api_tokens)
