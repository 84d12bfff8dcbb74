"""The `models` table: the active stage models as rows, so readers know every stage in order."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from processor.stages.model import StageModel
from warehouse.tables import ModelRow


def model_rows(models: Iterable[StageModel]) -> Iterator[ModelRow]:
    """One row per stage of each model."""
    for model in models:
        for index, name in enumerate(model.stage_names):
            yield ModelRow(
                model=model.name,
                stage=name,
                stage_index=index,
                conversion_stage=name == model.conversion_stage,
                lapse_after_s=float(model.lapse_after_days) * 86400.0,
            )
