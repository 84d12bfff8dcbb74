"""docker-compose.yml and the Dockerfile agree with the compose spec, each other and the code.

No Docker engine runs here: the file is validated against the compose-spec JSON schema bundled
in check-jsonschema (offline), and every name it uses is checked against the Python it runs.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import subprocess
import sys
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
SCHEMA = "vendor.compose-spec"
# The Settings class each `journey <role>` builds; CommonSettings is the floor of all of them.
ROLE_SETTINGS = {
    "collector": "ingest.settings:IngestSettings",
    "processor": "processor.settings:ProcessorSettings",
    "api": "api.settings:ApiSettings",
}
COMMON = "journey.settings:CommonSettings"
ENV_NAME = re.compile(r"\bJOURNEY_[A-Z0-9_]+\b")

Service = dict[str, Any]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def journey_services(compose: dict[str, Any]) -> dict[str, Service]:
    """The services that run the journey image (built from the Dockerfile)."""
    return {name: svc for name, svc in compose["services"].items() if "build" in svc}


def _settings_class(ref: str) -> type[Any] | None:
    """The Settings class `module:Class`, or None while its module is not written yet."""
    module_name, class_name = ref.split(":")
    if importlib.util.find_spec(module_name) is None:
        return None
    return getattr(importlib.import_module(module_name), class_name)  # type: ignore[no-any-return]


def env_names(settings: type[Any]) -> set[str]:
    """The environment variable names a pydantic-settings class reads (prefix + field or alias)."""
    prefix = str(settings.model_config.get("env_prefix", ""))
    names = set()
    for name, info in settings.model_fields.items():
        alias = info.validation_alias if isinstance(info.validation_alias, str) else info.alias
        names.add((alias or prefix + name).upper())
    return names


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", SCHEMA, str(path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def _dockerfile(context: Path, service: Service) -> Path:
    build = service["build"]
    name = build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile"
    return context / name


def _context(service: Service) -> Path:
    build = service["build"]
    context = build["context"] if isinstance(build, dict) else build
    return (ROOT / str(context)).resolve()


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs of a Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    lines = (line.strip() for line in text.splitlines())
    return [(parts[0].upper(), parts[1] if len(parts) > 1 else "")
            for line in lines if line and not line.startswith("#")
            for parts in [line.split(None, 1)]]


def test_check_jsonschema_bundles_the_compose_spec_schema() -> None:
    if importlib.util.find_spec("check_jsonschema") is None:
        pytest.fail("check-jsonschema is missing: .venv/bin/pip install check-jsonschema==0.39.0")
    import check_jsonschema

    bundled = Path(check_jsonschema.__file__).parent / "builtin_schemas/vendor/compose-spec.json"
    if not bundled.is_file():
        pytest.fail(f"check-jsonschema has no bundled compose-spec schema at {bundled}: "
                    "validation would need the network")
    assert "services" in json.loads(bundled.read_text())["properties"]


def test_compose_file_is_valid_by_the_compose_spec() -> None:
    result = _validate(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_validator_rejects_a_broken_compose_file(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services:\n  web:\n    image: x\n    ports: 8000\n    restart: sometimes\n")
    assert _validate(broken).returncode != 0


def test_every_depends_on_names_a_defined_service(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, svc in services.items():
        needs = svc.get("depends_on", [])
        assert set(needs) <= set(services), f"{name} depends on an undefined service"


def test_every_build_context_has_its_dockerfile_and_its_copy_sources(
    journey_services: dict[str, Service],
) -> None:
    assert journey_services, "no service is built from the Dockerfile"
    for svc in journey_services.values():
        context = _context(svc)
        dockerfile = _dockerfile(context, svc)
        assert dockerfile.is_file(), f"{dockerfile} is missing"
        ignore = context / ".dockerignore"
        ignored = [p.strip() for p in (ignore.read_text().splitlines() if ignore.exists() else [])
                   if p.strip() and not p.startswith("#")]
        for instruction, args in _instructions(dockerfile):
            if instruction != "COPY" or args.startswith("--from"):
                continue
            for source in args.split()[:-1]:
                assert (context / source).exists(), f"COPY {source}: not in the build context"
                assert not any(fnmatch(source, p) for p in ignored), f"{source} is dockerignored"


def test_every_journey_env_var_is_read_by_the_settings_of_its_role(
    compose: dict[str, Any], journey_services: dict[str, Service],
) -> None:
    common = _settings_class(COMMON)
    assert common is not None
    known = {ref: cls for ref in ROLE_SETTINGS.values() if (cls := _settings_class(ref))}
    every = env_names(common).union(*(env_names(cls) for cls in known.values()))
    for name, svc in journey_services.items():
        role = ROLE_SETTINGS.get(svc["command"][0], "")
        # The role's own class if it exists yet; otherwise any Settings class must read it.
        readable = env_names(known[role]) if role in known else every
        unread = {var for var in svc.get("environment", {}) if var.startswith("JOURNEY_")}
        assert unread <= readable, f"{name}: its Settings do not read {sorted(unread - readable)}"
    interpolated = set(ENV_NAME.findall(COMPOSE.read_text()))
    dockerfile = set(ENV_NAME.findall((ROOT / "Dockerfile").read_text()))
    assert interpolated | dockerfile <= every, sorted((interpolated | dockerfile) - every)


def test_every_journey_command_and_option_exists_in_the_cli(
    journey_services: dict[str, Service],
) -> None:
    if importlib.util.find_spec("journey.cli") is None:
        pytest.skip("journey/cli.py is not written yet")
    import typer.main

    from journey.cli import app

    group = typer.main.get_command(app)
    commands: dict[str, Any] = getattr(group, "commands", {})
    cmd_line = next(a for i, a in _instructions(ROOT / "Dockerfile") if i == "CMD")
    used = [svc["command"] for svc in journey_services.values()] + [json.loads(cmd_line)]
    for argv in used:
        assert argv[0] in commands, f"journey {argv[0]}: no such command"
        options = {opt for p in commands[argv[0]].params for opt in (*p.opts, *p.secondary_opts)}
        given = {arg for arg in argv[1:] if arg.startswith("--")}
        assert given <= options, f"journey {argv[0]}: unknown options {sorted(given - options)}"


def test_kafka_is_a_pinned_4x_kraft_broker_with_a_healthcheck(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]
    assert re.fullmatch(r"apache/kafka:4\.\d+\.\d+", kafka["image"])
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    check = " ".join(kafka["healthcheck"]["test"])
    assert "/opt/kafka/bin/kafka-broker-api-versions.sh --bootstrap-server localhost:9092" in check
    init = compose["services"]["topic-init"]
    assert init["image"] == kafka["image"]
    assert init["depends_on"]["kafka"]["condition"] == "service_healthy"
    script = " ".join(init["command"])
    assert "--create" in script and "--partitions" in script
    assert init["environment"]["TOPIC"] == "${JOURNEY_TOPIC:-journey.events}"


def test_roles_share_kafka_and_the_data_volume_and_the_processor_scales(
    compose: dict[str, Any], journey_services: dict[str, Service],
) -> None:
    assert {svc["command"][0] for svc in journey_services.values()} >= set(ROLE_SETTINGS)
    for name, svc in journey_services.items():
        env = svc["environment"]
        assert env["JOURNEY_KAFKA_BOOTSTRAP"] == "kafka:9092" and env["JOURNEY_DATA_DIR"] == "/data"
        volume = next(v.split(":")[0] for v in svc["volumes"] if v.endswith(":/data"))
        assert volume in compose["volumes"], name
        assert svc["depends_on"]["topic-init"]["condition"] == "service_completed_successfully"
    by_role = {svc["command"][0]: svc for svc in journey_services.values()}
    assert "container_name" not in by_role["processor"] and "ports" not in by_role["processor"]
    assert by_role["collector"]["ports"] == ["8001:8001"]
    assert by_role["api"]["ports"] == ["8000:8000"]
    assert by_role["collector"]["environment"]["JOURNEY_WRITE_KEYS"].startswith(
        "${JOURNEY_WRITE_KEYS:-")
    assert by_role["api"]["environment"]["JOURNEY_API_TOKENS"].startswith("${JOURNEY_API_TOKENS:-")


def test_the_image_runs_journey_as_a_non_root_user() -> None:
    steps = _instructions(ROOT / "Dockerfile")
    assert steps[0] == ("FROM", "python:3.11-slim")
    assert any(i == "RUN" and "pip install" in a for i, a in steps)
    user = [a for i, a in steps if i == "USER"]
    assert user and user[-1] not in {"root", "0"}
    assert ("ENTRYPOINT", '["journey"]') in steps
    assert 'journey = "journey.cli:main"' in (ROOT / "pyproject.toml").read_text()


def test_the_processor_runs_several_replicas_that_divide_the_partitions(
    compose: dict[str, Any], journey_services: dict[str, Service],
) -> None:
    by_role = {svc["command"][0]: svc for svc in journey_services.values()}
    replicas = by_role["processor"]["deploy"]["replicas"]
    assert isinstance(replicas, int) and replicas >= 2
    # They share the work through a consumer group on Kafka (processor/app.py): the setting
    # that makes them members rather than standbys is the bootstrap address.
    assert by_role["processor"]["environment"]["JOURNEY_KAFKA_BOOTSTRAP"]
    assert "JOURNEY_GROUP_ID" not in by_role["processor"]["environment"]  # one group for all
    partitions = by_role["processor"]["environment"]["JOURNEY_PARTITIONS"]
    assert partitions == "${JOURNEY_PARTITIONS:-12}"
    # The topic is made with the partitions journey expects, enough for every replica.
    assert compose["services"]["topic-init"]["environment"]["PARTITIONS"] == partitions
    assert int(partitions.split(":-")[1].rstrip("}")) >= replicas


def test_the_catalog_url_points_at_the_postgres_service(
    compose: dict[str, Any], journey_services: dict[str, Service],
) -> None:
    from psycopg.conninfo import conninfo_to_dict

    from warehouse.lake import locate

    services = compose["services"]
    postgres = services["postgres"]
    assert re.fullmatch(r"postgres:\d+(\.\d+)?", postgres["image"])
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    volume = next(v.split(":")[0] for v in postgres["volumes"]
                  if v.endswith(":/var/lib/postgresql/data"))
    assert volume in compose["volumes"]
    db = postgres["environment"]
    for name, svc in journey_services.items():
        url = svc["environment"]["JOURNEY_CATALOG_URL"]
        conninfo = locate(Path("/data/warehouse"), url).pg_conninfo
        assert conninfo is not None, f"{name}: {url} is not a PostgreSQL catalog"
        parts = conninfo_to_dict(conninfo)
        assert parts["host"] in services and services[parts["host"]] is postgres, name
        assert (parts["dbname"], parts["user"], parts["password"]) == (
            db["POSTGRES_DB"], db["POSTGRES_USER"], db["POSTGRES_PASSWORD"]), name
        assert svc["depends_on"]["postgres"]["condition"] == "service_healthy", name
