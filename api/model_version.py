"""The version of a stage model as served: a fingerprint of its rows in the `models` table.

The `models` table is replaced in the same DuckLake transaction as every stage row derived under
it, so the version read from a snapshot's `models` is the version of the stages it serves.
"""

from __future__ import annotations

import hashlib

import duckdb
import orjson

MODELS_SQL = (
    "SELECT model, list(stage ORDER BY stage_index), "
    "first(stage ORDER BY stage_index) FILTER (WHERE conversion_stage), "
    "first(lapse_after_s) FROM models GROUP BY model ORDER BY model")


def model_version(stages: list[str], conversion_stage: str | None, lapse_after_s: float) -> str:
    """The first 12 hex digits of the SHA-256 of a model's stages, conversion stage and lapse."""
    text = orjson.dumps({"stages": stages, "conversion_stage": conversion_stage,
                         "lapse_after_s": float(lapse_after_s)})
    return hashlib.sha256(text).hexdigest()[:12]


def model_versions(cur: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """The version of each stage model in the snapshot, by name."""
    return {m: model_version(stages, conv, lapse)
            for m, stages, conv, lapse in cur.execute(MODELS_SQL).fetchall()}
