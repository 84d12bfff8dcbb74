"""The `journey` command: run the pipeline or one of its roles, rebuild, load the demo."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from journey.logsafe import install, private_dir, private_files

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
console = Console()

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="Where everything is stored [JOURNEY_DATA_DIR].")
]
Kafka = Annotated[
    str | None,
    typer.Option(
        "--kafka-bootstrap", help="Kafka HOST:PORT; unset = embedded log [JOURNEY_KAFKA_BOOTSTRAP]."
    ),
]
Host = Annotated[
    str, typer.Option("--host", envvar="JOURNEY_HOST", help="Address to listen on [JOURNEY_HOST].")
]
AllInOnePort = Annotated[
    int,
    typer.Option("--port", envvar="JOURNEY_PORT",
                 help="Port of collector, API and dashboard [JOURNEY_PORT]."),
]
RolePort = Annotated[int, typer.Option("--port", envvar="JOURNEY_PORT", help="[JOURNEY_PORT]")]
LogLevel = Annotated[
    str,
    typer.Option("--log-level", envvar="JOURNEY_LOG_LEVEL",
                 help="debug, info, warning or error; Kafka client logs show only at debug."),
]


def overrides(data_dir: Path | None, kafka_bootstrap: str | None) -> dict[str, Any]:
    """Command-line options that override the environment."""
    found: dict[str, Any] = {}
    if data_dir is not None:
        found["data_dir"] = data_dir
    if kafka_bootstrap is not None:
        found["kafka_bootstrap"] = kafka_bootstrap
    return found


def _logging(level: str = "info") -> None:
    name = level.strip().upper()
    if name not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise typer.BadParameter(f"unknown log level {level!r}", param_hint="--log-level")
    logging.basicConfig(level=name, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger().setLevel(name)  # basicConfig leaves an already configured root alone
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per demo request is noise
    if name != "DEBUG":  # kafka-python logs every connection and rebalance at INFO
        logging.getLogger("kafka").setLevel(logging.WARNING)
    # The processor child of `journey up` reads it from the environment it inherits.
    os.environ["JOURNEY_LOG_LEVEL"] = level


def _serve(config: Any) -> None:
    """Run a uvicorn.Config with secrets redacted from its access log (SPEC 6.5)."""
    import uvicorn

    install()  # uvicorn.Config has configured its loggers by now
    uvicorn.Server(config).run()


def _check_port(host: str, port: int) -> None:
    """A taken port ends the command with one line and exit status 1, before anything starts."""
    from journey.ports import PortInUseError, check_free

    try:
        check_free(host, port)
    except PortInUseError as error:
        typer.echo(f"journey: {error.message}", err=True)
        raise typer.Exit(1) from None


@app.command()
def up(
    data_dir: DataDir = None,
    kafka_bootstrap: Kafka = None,
    port: AllInOnePort = 8000,
    host: Host = "127.0.0.1",
    log_level: LogLevel = "info",
) -> None:
    """Start collector, processor and API (embedded log unless a Kafka address is given)."""
    _check_port(host, port)
    from journey.launch import serve

    _logging(log_level)
    serve(overrides(data_dir, kafka_bootstrap), host, port, demo=None)


@app.command()
def demo(
    data_dir: DataDir = None,
    kafka_bootstrap: Kafka = None,
    port: AllInOnePort = 8000,
    host: Host = "127.0.0.1",
    customers: Annotated[int, typer.Option(help="Demo customers to generate.")] = 400,
    serve_after: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Keep serving after loading the demo.")
    ] = True,
    log_level: LogLevel = "info",
) -> None:
    """Start the pipeline and load a generated multi-channel demo dataset through the collector."""
    _check_port(host, port)
    from journey.launch import DemoPlan, serve

    _logging(log_level)
    serve(
        overrides(data_dir, kafka_bootstrap),
        host,
        port,
        demo=DemoPlan(customers=customers, keep_serving=serve_after),
    )


@app.command()
def collector(
    data_dir: DataDir = None,
    kafka_bootstrap: Kafka = None,
    port: RolePort = 8001,
    host: Host = "127.0.0.1",
    log_level: LogLevel = "info",
) -> None:
    """Run only the collector."""
    _check_port(host, port)
    import uvicorn

    from ingest.app import create_app
    from ingest.settings import IngestSettings
    from journey.log.factory import open_producer

    _logging(log_level)
    settings = IngestSettings(**overrides(data_dir, kafka_bootstrap))
    private_dir(settings.data_dir)
    _serve(uvicorn.Config(create_app(settings, open_producer(settings)), host=host, port=port))


@app.command()
def processor(
    data_dir: DataDir = None, kafka_bootstrap: Kafka = None, log_level: LogLevel = "info",
    metrics_port: Annotated[int | None, typer.Option(
        "--metrics-port", help="Also serve the processor's /metrics on this port.")] = None,
) -> None:
    """Run only the stream processor."""
    from journey.log.errors import LogCorrupt
    from processor.app import run
    from processor.settings import ProcessorSettings
    from warehouse.errors import DAMAGED_EXIT_STATUS, REPAIR_COMMAND, StoreDamagedError

    _logging(log_level)
    try:
        run(ProcessorSettings(**overrides(data_dir, kafka_bootstrap)), metrics_port)
    except StoreDamagedError as error:  # SPEC 6.5: stop with the error and the repair command
        typer.echo(f"journey processor: {error}", err=True)
        raise typer.Exit(DAMAGED_EXIT_STATUS) from None
    except LogCorrupt as error:
        typer.echo(f"journey processor: {error}; stopped without deleting anything: run "
                   f"`{REPAIR_COMMAND}`", err=True)
        raise typer.Exit(DAMAGED_EXIT_STATUS) from None


@app.command()
def api(
    data_dir: DataDir = None,
    port: RolePort = 8000,
    host: Host = "127.0.0.1",
    log_level: LogLevel = "info",
) -> None:
    """Run only the analytics API and dashboard."""
    _check_port(host, port)
    import uvicorn

    from api.settings import ApiSettings
    from journey.server import create_api_app

    _logging(log_level)
    settings = ApiSettings(**overrides(data_dir, None))
    private_dir(settings.data_dir)
    _serve(uvicorn.Config(create_api_app(settings), host=host, port=port))


@app.command()
def rebuild(data_dir: DataDir = None) -> None:
    """Re-derive every customer, session and stage from the stored raw events (beside a running
    processor too: it builds the new version and switches to it while the API serves)."""
    from journey.rebuild_cli import run as run_rebuild
    from processor.settings import ProcessorSettings

    _logging("warning")  # the progress bar says what happens
    if not run_rebuild(ProcessorSettings(**overrides(data_dir, None)), console):
        raise typer.Exit(1)


@app.command()
def doctor(
    data_dir: DataDir = None,
    kafka_bootstrap: Kafka = None,
    repair: Annotated[bool, typer.Option(
        "--repair", help="Repair what can be (pipeline stopped); damaged files are moved to "
        "DATA_DIR/quarantine/, never deleted.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the findings as JSON.")] = False,
) -> None:
    """Check the warehouse, the log and the dead letters (SPEC 6.5); exit 0 when healthy."""
    import orjson

    from journey.doctor.run import diagnose
    from processor.settings import ProcessorSettings

    _logging("warning")
    logging.getLogger("kafka").setLevel(logging.CRITICAL)  # a broker that is down is a finding
    result = diagnose(ProcessorSettings(**overrides(data_dir, kafka_bootstrap)), repair)
    if as_json:
        typer.echo(orjson.dumps({"healthy": result.healthy, "refused": result.refused,
                                 "findings": [f.as_dict() for f in result.findings]}).decode())
    else:
        for finding in result.findings:
            typer.echo(finding.line())
        if not result.healthy and not repair:
            typer.echo("run `journey doctor --repair` with the pipeline stopped to repair")
    if not result.healthy:
        raise typer.Exit(2 if result.refused else 1)


@app.command()
def status(
    data_dir: DataDir = None,
    kafka_bootstrap: Kafka = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
) -> None:
    """The processors' progress: running or not, last commit, lag per partition, and each
    processor's partitions, lag and last commit (read-only)."""
    from datetime import UTC, datetime

    import orjson

    from journey.settings import CommonSettings
    from journey.status import status as read_status

    _logging("warning")
    logging.getLogger("kafka").setLevel(logging.CRITICAL)  # a broker that is down is reported
    now = datetime.now(UTC)
    found = read_status(CommonSettings(**overrides(data_dir, kafka_bootstrap)), now)
    if as_json:
        typer.echo(orjson.dumps(found.as_dict()).decode())
    else:
        for line in found.lines(now):
            typer.echo(line)


@app.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV or JSONL file.")],
    kind: Annotated[str, typer.Option("--kind", help="call, store or events.")],
    mapping: Annotated[
        str | None, typer.Option("--mapping", help="Column renames: column=field,column=field.")
    ] = None,
    url: Annotated[str, typer.Option("--url", help="Collector address.")] = "http://127.0.0.1:8000",
    write_key: Annotated[
        str | None, typer.Option("--write-key", help="Write key [JOURNEY_WRITE_KEYS].")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Import a call-centre, store (POS) or Segment export through the collector."""
    from ingest.settings import IngestSettings
    from journey.import_cli import default_write_key, print_summary, run_import

    key = write_key or default_write_key(IngestSettings(**overrides(data_dir, None)))
    summary = run_import(file, kind, mapping, url, key)
    print_summary(summary, console)
    if summary.rejected and not summary.imported:
        raise typer.Exit(1)


deadletter = typer.Typer(no_args_is_help=True, help="List and replay rejected events.")
app.add_typer(deadletter, name="deadletter")


@deadletter.command("list")
def deadletter_list(
    data_dir: DataDir = None,
    limit: Annotated[int, typer.Option("--limit", help="Newest dead letters to show.")] = 50,
) -> None:
    """Show the newest dead letters of every stage, newest first."""
    from ingest.settings import IngestSettings
    from journey.import_cli import print_dead_letters

    print_dead_letters(IngestSettings(**overrides(data_dir, None)), limit, console)


@deadletter.command("replay")
def deadletter_replay(
    data_dir: DataDir = None,
    kafka_bootstrap: Kafka = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Only letters received at/after (ISO-8601).")
    ] = None,
) -> None:
    """Re-normalise the collector's dead letters and append those that now pass."""
    from ingest.import_routes import parse_since
    from ingest.settings import IngestSettings
    from journey.import_cli import run_replay

    result = run_replay(IngestSettings(**overrides(data_dir, kafka_bootstrap)), parse_since(since))
    console.print(f"replayed {result.replayed}, still failing {len(result.failing)}, "
                  f"already replayed {result.already}")
    for name, reason in result.failing[:50]:
        console.print(f"  {name}: {reason}")


@app.command()
def erase(
    key: Annotated[str, typer.Argument(help="Any identity key of the customer (value or "
                                            "type:value).")],
    data_dir: DataDir = None,
    kafka_bootstrap: Kafka = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait.")] = 120.0,
) -> None:
    """Erase the customer holding KEY from every store (SPEC 2.4); the running processor applies
    it, or this command does when no processor holds the warehouse."""
    from journey.settings import CommonSettings
    from processor.erasure import request

    _logging("warning")
    result = request(CommonSettings(**overrides(data_dir, kafka_bootstrap)), key, timeout)
    if result is None:
        console.print("the erasure is queued but was not applied in time (is the processor "
                      "running?); it stays queued")
        raise typer.Exit(2)
    if result["status"] == "failed":
        console.print(f"the erasure failed: {result['message']}")
        raise typer.Exit(3)
    if result["status"] != "erased":
        console.print("no customer holds this key")
        raise typer.Exit(1)
    console.print(f"erased customer {result['customer_id']}: {result['keys']} keys, "
                  f"{result['log_records']} log records, {result['dead_letters']} dead letters")


@app.command()
def sql(
    data_dir: DataDir = None,
    command: Annotated[
        str | None, typer.Option("-c", "--command", help="Run this one query, print it, exit.")
    ] = None,
    print_init: Annotated[
        bool, typer.Option("--print-init", help="Print the analysts' init SQL for "
                           "`duckdb -init` (loads the extensions offline, attaches the lake).")
    ] = False,
    unsafe_full_duckdb: Annotated[
        bool, typer.Option("--unsafe-full-duckdb", help="The full DuckDB (files, ATTACH, SET, "
                           "...) instead of read-only SELECTs over the views.")
    ] = False,
) -> None:
    """Query the warehouse's views with DuckDB (see docs/analysts.md)."""
    import duckdb

    from api.sqlguard import QueryRefusedError
    from journey.settings import CommonSettings
    from journey.sql_shell import NoSnapshotError, init_sql, run_one, shell

    common = CommonSettings(**overrides(data_dir, None))
    warehouse_dir, catalog = common.warehouse_dir, common.catalog_url
    try:
        if print_init:
            typer.echo(init_sql(warehouse_dir, pinned=False, catalog_url=catalog), nl=False)
        elif command is not None:
            run_one(warehouse_dir, command, console, unsafe_full_duckdb, catalog)
        else:
            raise typer.Exit(shell(warehouse_dir, console, unsafe_full_duckdb, catalog))
    except (NoSnapshotError, QueryRefusedError, duckdb.Error) as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from None


def main() -> None:
    private_files()  # every file journey or its children create: owner-only (SPEC 6.5)
    app()
