"""SPEC 4.1: stage model files, presets, and clear errors for bad files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from journey.errors import ConfigError
from processor.errors import ModelFileError
from processor.stages.model import PRESETS, Rule, load_model, load_models, preset, validate_model

SPEC_DEFAULT = {
    "awareness": [Rule(any=True)],
    "consideration": [
        Rule(
            event=(
                "Product Viewed",
                "Product List Viewed",
                "Products Searched",
                "Pricing Viewed",
                "Demo Requested",
                "Signed Up",
                "Product Added",
                "Cart Viewed",
                "Email Clicked",
                "Call Completed",
                "Store Visited",
            )
        )
    ],
    "decision": [
        Rule(
            event=("Checkout Started", "Order Completed", "Subscription Started", "Quote Accepted")
        )
    ],
    "retention": [
        Rule(event=("Order Completed",), nth=2),
        Rule(event=("Subscription Renewed", "Product Used")),
    ],
    "advocacy": [
        Rule(event=("Review Submitted", "Referral Sent", "Product Shared")),
        Rule(event=("Survey Responded",), where={"survey": {"eq": "nps"}, "score": {"gte": 9}}),
    ],
}

STAGES = {
    "default": ("awareness", "consideration", "decision", "retention", "advocacy"),
    "aida": ("awareness", "interest", "desire", "action"),
    "aisas": ("awareness", "interest", "search", "action", "share"),
    "race": ("reach", "act", "convert", "engage"),
    "5a": ("aware", "appeal", "ask", "act", "advocate"),
    "lifecycle": ("explore", "purchase", "use", "care"),
}


@pytest.mark.parametrize("name", PRESETS)
def test_4_1_every_preset_loads(name: str) -> None:
    model = preset(name)
    assert model.name == name
    assert model.stage_names == STAGES[name]
    assert model.lapse_after_days == 90
    assert model.stages[0].rules == (Rule(any=True),)


def test_4_1_default_preset_is_exactly_the_spec_table() -> None:
    model = preset("default")
    assert model.conversion_stage == "decision"
    assert {s.name: list(s.rules) for s in model.stages} == SPEC_DEFAULT


def test_4_1_yaml_and_toml_give_the_same_model(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(
        "name: b2b\nconversion_stage: won\nlapse_after_days: 30\nstages:\n"
        "  - name: lead\n    rules: [{any: true}]\n"
        "  - name: won\n    rules:\n      - event: Quote Accepted\n        channel: [call]\n"
        "        where: {amount: {gte: 1000}}\n"
    )
    (tmp_path / "m.toml").write_text(
        'name = "b2b"\nconversion_stage = "won"\nlapse_after_days = 30\n'
        '[[stages]]\nname = "lead"\nrules = [{any = true}]\n'
        '[[stages]]\nname = "won"\n'
        'rules = [{event = ["Quote Accepted"], channel = ["call"], '
        "where = {amount = {gte = 1000}}}]\n"
    )
    assert load_model(tmp_path / "m.yaml") == load_model(tmp_path / "m.toml")


def test_4_1_load_models_mixes_presets_and_files(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(
        'name = "mine"\nconversion_stage = "a"\n[[stages]]\nname = "a"\nrules = [{any = true}]\n'
    )
    assert [m.name for m in load_models(["default", path, "5a"])] == ["default", "mine", "5a"]
    with pytest.raises(ModelFileError, match="already loaded"):
        load_models(["aida", "aida"])
    with pytest.raises(ModelFileError, match="no-such"):
        load_models(["no-such"])


HEAD = 'name = "m"\nconversion_stage = "b"\n[[stages]]\nname = "a"\nrules = [{any = true}]\n'
STAGE_B = '[[stages]]\nname = "b"\n'

# (case, file text, suffix, fragments the message must contain, stage, rule)
BAD: list[tuple[str, str, str, list[str], str | None, int | None]] = [
    (
        "unknown op",
        HEAD + STAGE_B + 'rules = [{event = "X", where = {s = {gtee = 1}}}]\n',
        ".toml",
        ["stage 'b'", "rule 1", "where.s.gtee"],
        "b",
        0,
    ),
    (
        "nth zero",
        HEAD + STAGE_B + 'rules = [{event = "X"}, {event = "Y", nth = 0}]\n',
        ".toml",
        ["stage 'b'", "rule 2", "nth", "greater than or equal to 1"],
        "b",
        1,
    ),
    (
        "any outside the first stage",
        HEAD + STAGE_B + "rules = [{any = true}]\n",
        ".toml",
        ["stage 'b'", "rule 1", "only in the first stage"],
        "b",
        0,
    ),
    (
        "rule without event",
        HEAD + STAGE_B + 'rules = [{channel = ["web"]}]\n',
        ".toml",
        ["stage 'b'", "rule 1", "needs `event`"],
        "b",
        0,
    ),
    (
        "any with other fields",
        HEAD.replace("{any = true}", '{any = true, event = "X"}')
        + STAGE_B
        + 'rules = [{event = "X"}]\n',
        ".toml",
        ["stage 'a'", "rule 1", "takes no other field"],
        "a",
        0,
    ),
    (
        "unknown channel",
        HEAD + STAGE_B + 'rules = [{event = "X", channel = ["fax"]}]\n',
        ".toml",
        ["stage 'b'", "rule 1", "channel.0"],
        "b",
        0,
    ),
    (
        "in needs a list",
        HEAD + STAGE_B + 'rules = [{event = "X", where = {p = {in = "a"}}}]\n',
        ".toml",
        ["stage 'b'", "rule 1", "needs a list"],
        "b",
        0,
    ),
    (
        "unknown rule field",
        HEAD + STAGE_B + 'rules = [{events = "X"}]\n',
        ".toml",
        ["stage 'b'", "rule 1", "events", "Extra inputs"],
        "b",
        0,
    ),
    (
        "stage without rules",
        HEAD + STAGE_B + "rules = []\n",
        ".toml",
        ["stage 'b'", "rules", "at least 1"],
        "b",
        None,
    ),
    (
        "duplicate stage",
        HEAD + '[[stages]]\nname = "a"\nrules = [{event = "X"}]\n',
        ".toml",
        ["stage 'a' (stages[1])", "duplicate stage"],
        "a",
        None,
    ),
    (
        "conversion stage unknown",
        HEAD.replace('"b"', '"zz"'),
        ".toml",
        ["conversion_stage", "'zz' is not one of the stages"],
        None,
        None,
    ),
    (
        "missing name",
        HEAD.replace('name = "m"\n', ""),
        ".toml",
        ["name", "Field required"],
        None,
        None,
    ),
    (
        "toml syntax",
        HEAD + "stray words\n" + STAGE_B,
        ".toml",
        ["cannot read", "line 6"],
        None,
        None,
    ),
    ("yaml syntax", "name: [unclosed\n", ".yaml", ["cannot read", "line"], None, None),
    ("yaml not a mapping", "- a\n- b\n", ".yml", ["must hold a table/mapping"], None, None),
    ("unknown format", HEAD, ".json", ["unknown format"], None, None),
]


@pytest.mark.parametrize(
    ("case", "text", "suffix", "fragments", "stage", "rule"), BAD, ids=[b[0] for b in BAD]
)
def test_4_1_bad_model_files_name_file_stage_and_rule(
    tmp_path: Path,
    case: str,
    text: str,
    suffix: str,
    fragments: list[str],
    stage: str | None,
    rule: int | None,
) -> None:
    path = tmp_path / f"broken{suffix}"
    path.write_text(text)
    with pytest.raises(ModelFileError) as caught:
        load_model(path)
    message = str(caught.value)
    assert message.startswith(str(path) + ": ")
    for fragment in fragments:
        assert fragment in message
    assert (caught.value.stage, caught.value.rule) == (stage, rule)
    assert isinstance(caught.value, ConfigError) and not caught.value.retryable


def test_4_1_missing_file_is_a_model_file_error(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="cannot read"):
        load_model(tmp_path / "absent.toml")


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from(["a", "any", "stages", ""]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                ["name", "stages", "rules", "event", "any", "where", "nth", "gte", "x"]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(
    stages=st.lists(
        st.fixed_dictionaries({"name": st.sampled_from(["a", "b", ""])}, optional={"rules": _json}),
        max_size=3,
    )
    | _json,
    conversion=_json,
)
def test_4_1_any_malformed_model_gives_a_model_file_error(stages: Any, conversion: Any) -> None:
    raw = {"name": "m", "conversion_stage": conversion, "stages": stages}
    try:
        validate_model(raw, "fuzz.yaml")
    except ModelFileError as exc:
        assert str(exc).startswith("fuzz.yaml: ")
