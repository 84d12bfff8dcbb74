"""What the derived tables were built with: a fingerprint of the core's configuration.

The `models` table records each model's stage names, conversion stage and lapse, which is all a
reader needs; a rule can change without any of them (or the session timeout can), and a restart
would then derive new events under other rules than the stored ones. The fingerprint of the
whole configuration (every rule of every model, the session settings) is recorded in
DATA_DIR/rebuild/derived-with.sha256 after each rebuild and each start; a start that finds
another one rebuilds first. The file is written after the commit it describes: a crash between
the two costs one more rebuild, never a mix.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import orjson

from processor.derive import CoreConfig

FILE = "rebuild/derived-with.sha256"
# Bumped when the core derives other rows from the same events (2: account_events and
# identity_conflicts), so a data dir derived by an older release is rebuilt on start.
DERIVATION = 2


def fingerprint(config: CoreConfig) -> str:
    """SHA-256 of the session settings and every stage model in full (rules included)."""
    body = orjson.dumps({
        "derivation": DERIVATION,
        "session_timeout_s": float(config.session_timeout_s),
        "split_on_campaign_change": config.split_on_campaign_change,
        "models": [orjson.loads(m.model_dump_json()) for m in config.models],
    }, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(body).hexdigest()


def recorded(data_dir: Path) -> str | None:
    """The fingerprint the derived tables were last built with (None: not recorded yet)."""
    try:
        return (data_dir / FILE).read_text().strip() or None
    except FileNotFoundError:
        return None


def record(data_dir: Path, value: str) -> None:
    """Record value as what the derived tables are now built with."""
    path = data_dir / FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(value + "\n")
    os.replace(tmp, path)
