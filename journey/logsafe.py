"""Secrets stay out of logs and files stay private (SPEC 6.5).

Webhooks and imports send their write key as `?key=`, and uvicorn's access log prints the whole
request target; a filter rewrites such values (and the identity key of a customer path, which is
personal data) before any handler formats the line.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

# Query parameters that carry a secret in some sender's URL.
_SECRET_QUERY = re.compile(
    r"([?&](?:key|writekey|write_key|token|api_key|apikey|access_token)=)[^&#\s\"']*",
    re.IGNORECASE,
)
# A customer's identity key in a path (GET/DELETE /v1/customers/{key}): personal data, which
# an erasure must not leave behind in the access log.
_CUSTOMER_PATH = re.compile(r"(/v1/customers/)[^/?#\s\"']+")
REDACTED = "[redacted]"
LOGGERS = ("", "uvicorn", "uvicorn.access", "uvicorn.error")


def redact(text: str) -> str:
    """`text` with the value of every secret-bearing query parameter, and the identity key of
    a customer path, replaced."""
    text = _SECRET_QUERY.sub(lambda m: m.group(1) + REDACTED, text)
    return _CUSTOMER_PATH.sub(lambda m: m.group(1) + REDACTED, text)


class RedactSecrets(logging.Filter):
    """Rewrites the message and its string arguments; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def install() -> None:
    """Put the filter on uvicorn's loggers and on every handler they and the root write to
    (call it after uvicorn configured its logging, i.e. after building uvicorn.Config)."""
    secret_filter = RedactSecrets()
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(secret_filter)
        for handler in logger.handlers:
            if not any(isinstance(f, RedactSecrets) for f in handler.filters):
                handler.addFilter(secret_filter)


def private_files() -> None:
    """Everything this process and its children create is readable by its owner only."""
    os.umask(0o077)


def private_dir(path: Path) -> None:
    """Create `path` owner-only, or make an existing one so (files made before keep their
    mode, but nobody else can reach them through the directory)."""
    path.mkdir(parents=True, exist_ok=True)
    if path.stat().st_uid == os.getuid():
        path.chmod(0o700)
