"""Stage model files (SPEC 4.1): the format, its validation, loading, and the shipped presets.

A model file (TOML or YAML) holds `name`, `conversion_stage`, optional `lapse_after_days`
(default 90), optional `description`, and an ordered list `stages`, each with a `name` and a list
of `rules`. A rule is `{any = true}` (first stage only) or has `event` (a name or a list), and
optionally `channel` (a list), `where` ({property: {op: value}}, ops eq ne gt gte lt lte in) and
`nth` (>= 1). Every problem raises `ModelFileError` naming the file, the stage and the rule.
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from journey.schema import Channel
from processor.errors import ModelFileError

Op = Literal["eq", "ne", "gt", "gte", "lt", "lte", "in"]
Scalar = StrictBool | StrictInt | StrictFloat | StrictStr
Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
PRESET_DIR = Path(__file__).parent / "presets"
PRESETS: tuple[str, ...] = ("default", "aida", "aisas", "race", "5a", "lifecycle")


class Rule(BaseModel):
    """One rule of a stage: `any`, or an event name match with optional conditions."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    any: StrictBool = False
    event: tuple[Annotated[str, Field(min_length=1)], ...] = ()
    channel: tuple[Channel, ...] | None = None
    where: dict[str, dict[Op, Scalar | list[Scalar]]] = Field(default_factory=dict)
    nth: StrictInt = Field(default=1, ge=1)

    @field_validator("event", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return (value,) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _consistent(self) -> Rule:
        if self.any:
            if self.event or self.channel is not None or self.where or self.nth != 1:
                raise ValueError("`any = true` matches every event and takes no other field")
            return self
        if not self.event:
            raise ValueError("a rule needs `event` (a name or a list of names) or `any = true`")
        if self.channel is not None and not self.channel:
            raise ValueError("`channel` must list at least one channel")
        for prop, ops in self.where.items():
            if not ops:
                raise ValueError(f"where.{prop}: give at least one of eq ne gt gte lt lte in")
            for op, value in ops.items():
                if (op == "in") != isinstance(value, list):
                    need = "a list" if op == "in" else "a single value"
                    raise ValueError(f"where.{prop}.{op}: needs {need}")
                if op in ("gt", "gte", "lt", "lte") and isinstance(value, bool):
                    raise ValueError(f"where.{prop}.{op}: needs a number or a string")
        return self


class Stage(BaseModel):
    """One stage of a model and the rules that make an event reach it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Name
    rules: tuple[Rule, ...] = Field(min_length=1)


class StageModel(BaseModel):
    """A validated stage model (SPEC 4.1)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Name
    description: str = ""
    conversion_stage: str
    lapse_after_days: StrictInt | StrictFloat = Field(default=90, gt=0)
    stages: tuple[Stage, ...] = Field(min_length=1)

    @property
    def stage_names(self) -> tuple[str, ...]:
        """The stage names in order."""
        return tuple(s.name for s in self.stages)

    @property
    def conversion_index(self) -> int:
        """Index of the conversion stage in `stages`."""
        return self.stage_names.index(self.conversion_stage)


def _stage_label(raw: Any, index: int) -> str:
    try:
        name = raw["stages"][index]["name"]
    except (KeyError, IndexError, TypeError):
        name = None
    return f"stage {name!r} (stages[{index}])" if isinstance(name, str) else f"stages[{index}]"


def _located(file: str, raw: Any, loc: tuple[int | str, ...], what: str) -> ModelFileError:
    """Turn an error location inside the file into a ModelFileError naming stage and rule."""
    stage: str | None = None
    rule: int | None = None
    parts: list[str] = []
    rest = list(loc)
    if len(rest) >= 2 and rest[0] == "stages" and isinstance(rest[1], int):
        parts.append(_stage_label(raw, rest[1]))
        entry = raw["stages"][rest[1]]
        name = entry.get("name") if isinstance(entry, dict) else None
        stage = name if isinstance(name, str) else f"stages[{rest[1]}]"
        rest = rest[2:]
        if len(rest) >= 2 and rest[0] == "rules" and isinstance(rest[1], int):
            rule = rest[1]
            parts.append(f"rule {rule + 1} (rules[{rule}])")
            rest = rest[2:]
    if rest:
        parts.append(".".join(str(p) for p in rest))
    where = ", ".join(parts)
    return ModelFileError(
        f"{file}: {where + ': ' if where else ''}{what}", file=file, stage=stage, rule=rule
    )


def _parse(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".toml":
        return tomllib.loads(text)
    if path.suffix in (".yaml", ".yml"):
        return yaml.safe_load(text)
    raise ValueError("unknown format: use a .toml, .yaml or .yml file")


def validate_model(raw: Any, file: str) -> StageModel:
    """Validate parsed model data; `file` names it in errors."""
    if not isinstance(raw, dict):
        raise ModelFileError(f"{file}: the file must hold a table/mapping", file=file)
    try:
        model = StageModel.model_validate(raw)
    except ValidationError as exc:
        found = [
            _located(file, raw, tuple(e["loc"]), e["msg"].removeprefix("Value error, "))
            for e in exc.errors()
        ]
        error = found[0]
        if len(found) > 1:  # name them all, so one edit fixes the file
            also = "; ".join(e.message.removeprefix(f"{file}: ") for e in found[1:])
            error.message += f" (also: {also})"
        raise error from None
    names = model.stage_names
    for i, stage in enumerate(model.stages):
        if names.index(stage.name) != i:
            raise _located(file, raw, ("stages", i, "name"), f"duplicate stage {stage.name!r}")
        for j, rule in enumerate(stage.rules):
            if rule.any and i > 0:
                raise _located(
                    file, raw, ("stages", i, "rules", j), "`any` is allowed only in the first stage"
                )
    if model.conversion_stage not in names:
        raise _located(
            file,
            raw,
            ("conversion_stage",),
            f"{model.conversion_stage!r} is not one of the stages {list(names)}",
        )
    return model


def load_model(path: str | Path) -> StageModel:
    """Load and validate one model file (.toml, .yaml or .yml)."""
    file = str(path)
    try:
        raw = _parse(Path(path))
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        raise ModelFileError(f"{file}: cannot read the model: {exc}", file=file) from None
    return validate_model(raw, file)


@functools.cache
def preset(name: str) -> StageModel:
    """One of the shipped presets (SPEC 4.1) by name."""
    if name not in PRESETS or not re.fullmatch(r"[a-z0-9]+", name):
        raise ModelFileError(f"{name}: no such preset; presets are {list(PRESETS)}", file=name)
    return load_model(PRESET_DIR / f"{name}.toml")


def load_models(names_or_paths: Iterable[str | Path]) -> tuple[StageModel, ...]:
    """Presets (by name) and model files (by path), checked to have distinct names."""
    models: list[StageModel] = []
    for item in names_or_paths:
        model = preset(item) if isinstance(item, str) and item in PRESETS else load_model(item)
        if any(m.name == model.name for m in models):
            raise ModelFileError(
                f"{item}: a model named {model.name!r} is already loaded", file=str(item)
            )
        models.append(model)
    return tuple(models)
