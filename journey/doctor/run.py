"""`journey doctor [--repair]`: check every store, then (asked to) repair, then check again.

Repairs never delete: what they replace goes to DATA_DIR/quarantine/<time>/. They run only while
no processor holds the warehouse's writer lock (the collector holds no lock: stop the whole
pipeline first, as README "Repair" says).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from journey.doctor import lake, lake_repair, letters, logs
from journey.doctor.report import Finding, Quarantine, not_repaired, problem
from processor.settings import ProcessorSettings
from warehouse.writer import LOCK_FILE


@dataclass(slots=True)
class Diagnosis:
    """Every finding in order, and whether the stores are healthy at the end."""

    findings: list[Finding] = field(default_factory=list)
    healthy: bool = True
    refused: bool = False


def writer_running(warehouse_dir: Path) -> bool:
    """Whether a processor (or another writer) holds the warehouse's writer lock now."""
    if not (warehouse_dir / LOCK_FILE).exists():
        return False
    with lake.writer_lock(warehouse_dir) as held:
        return not held


def check(settings: ProcessorSettings) -> tuple[list[Finding], lake.LakeCheck, logs.LogCheck]:
    """Check every store: warehouse, erasure records, log, dead letters."""
    found = lake.check(settings)
    log = logs.check(settings, found.offsets)
    findings = [*found.findings, *lake.check_erasures(settings, found), *log.findings,
                *letters.check(settings.data_dir)]
    return findings, found, log


def diagnose(settings: ProcessorSettings, repair: bool) -> Diagnosis:
    """Check; with repair, repair what can be and check again."""
    out = Diagnosis()
    findings, found, log = check(settings)
    out.findings += findings
    if not any(f.status == "problem" for f in findings):
        return out
    out.healthy = False
    if not repair:
        return out
    if writer_running(settings.warehouse_dir):
        out.refused = True
        out.findings.append(problem("lock", settings.warehouse_dir / LOCK_FILE, "a processor "
                                    "holds the warehouse: stop the pipeline, then repair"))
        return out
    done = _repair(settings, found, log, Quarantine(settings.data_dir))
    again = [f for f in check(settings)[0] if f.status == "problem"]
    out.findings += done + again
    out.healthy = not again and not any(f.status == "not repaired" for f in done)
    return out


def _repair(settings: ProcessorSettings, found: lake.LakeCheck, log: logs.LogCheck,
            quarantine: Quarantine) -> list[Finding]:
    done = lake_repair.erasures(settings, found)  # first: a fresh lake needs the copy
    committed = found.offsets
    if log.damaged and not settings.kafka_bootstrap:
        done += logs.salvage(settings, committed, quarantine)
        log = logs.check(settings, committed)
    if found.lake_lost:
        done += lake_repair.fresh_lake(settings, quarantine)
        done += _unrecoverable(settings, log)
        committed = {}
    elif found.derived_bad:
        done += lake_repair.rebuild_derived(settings, found.derived_bad, quarantine)
    behind = log.behind(committed)
    if behind:
        done += lake_repair.reset_offsets(settings, dict.fromkeys(behind, 0))
    done += letters.repair(settings.data_dir, quarantine)
    return done


def _unrecoverable(settings: ProcessorSettings, log: logs.LogCheck) -> list[Finding]:
    """What a re-read of the log from offset 0 cannot bring back."""
    where = settings.kafka_bootstrap or logs.log_path(settings)
    gone = {p: s for p, s in log.starts.items() if s > 0}
    if gone:
        return [not_repaired("warehouse", where, "events before these offsets are no longer in "
                             f"the log and are not recovered: {gone} (partition: offset); the "
                             "quarantined files still hold them")]
    if not log.reachable:
        return [not_repaired("warehouse", where, "the log cannot be read: nothing re-read yet")]
    return []
