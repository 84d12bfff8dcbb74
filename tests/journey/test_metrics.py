"""journey/metrics.py: the processors' textfiles, one per processor, merged into /metrics."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from journey import metrics


def test_every_processor_series_carries_its_member_id() -> None:
    text = generate_latest(metrics.processor_registry("h-1-x")).decode()
    samples = [s for family in text_string_to_metric_families(text) for s in family.samples]
    assert samples and all(s.labels.get("processor") == "h-1-x" for s in samples)
    assert {"journey_processor_records_total", "journey_processor_partitions_owned",
            "journey_processor_last_commit_timestamp_seconds"} <= {s.name for s in samples}


def test_two_processors_textfiles_merge_into_one_declaration_per_series(tmp_path: Path) -> None:
    metrics.write_textfile(tmp_path, "a-1-x")
    metrics.write_textfile(tmp_path, "b-2-y")
    text = metrics.read_textfile(tmp_path).decode()
    # The text format refuses a name declared twice: each HELP/TYPE once, each series twice.
    assert text.count("# TYPE journey_processor_records_total counter") == 1
    assert text.count("# TYPE journey_processor_customers gauge") == 1
    customers = [s.labels["processor"] for family in text_string_to_metric_families(text)
                 for s in family.samples if s.name == "journey_processor_customers"]
    assert customers == ["a-1-x", "b-2-y"]
    metrics.remove_textfile(tmp_path, "a-1-x")
    assert "a-1-x" not in metrics.read_textfile(tmp_path).decode()


@pytest.mark.parametrize("age_s", [0.0, metrics.TEXTFILE_FRESH_S + 5])
def test_only_textfiles_written_in_the_last_minute_are_appended(tmp_path: Path,
                                                                 age_s: float) -> None:
    metrics.write_textfile(tmp_path, "p1")
    then = time.time() - age_s
    os.utime(metrics.textfile(tmp_path, "p1"), (then, then))
    assert bool(metrics.read_textfile(tmp_path)) is (age_s == 0.0)


def test_a_textfile_left_long_ago_is_deleted_by_the_next_write(tmp_path: Path) -> None:
    metrics.write_textfile(tmp_path, "old")
    then = time.time() - metrics.TEXTFILE_FORGET_S - 60
    os.utime(metrics.textfile(tmp_path, "old"), (then, then))
    metrics.write_textfile(tmp_path, "new")
    assert not metrics.textfile(tmp_path, "old").exists()
    assert metrics.textfile(tmp_path, "new").exists()
