"""SPEC 6.3 `journey sql`: the views of the current snapshot in a DuckDB shell, one query with -c,
and --print-init for `duckdb -init`; run as the real `python -m journey` process."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from rich.console import Console

from journey.sql_shell import open_views, repl
from tests.api.test_sql_escape import build_warehouse

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("sql-shell")
    build_warehouse(d, customers=10)
    return d


def journey_sql(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "journey", "sql", *args], cwd=ROOT, input=stdin,
                          capture_output=True, text=True, timeout=60, env={"COLUMNS": "200",
                                                                           "PATH": "/usr/bin"})


def customers(data_dir: Path) -> int:
    con = open_views(data_dir / "warehouse")
    row = con.execute("SELECT count(*) FROM customers").fetchone()
    con.close()
    assert row is not None
    return int(row[0])


def test_6_3_dash_c_runs_one_query_and_prints_it(data_dir: Path) -> None:
    done = journey_sql("--data-dir", str(data_dir), "-c",
                       "SELECT count(*) AS n_customers FROM customers")
    assert done.returncode == 0, done.stderr
    assert "n_customers" in done.stdout and f" {customers(data_dir)} " in done.stdout


def test_6_3_print_init_creates_the_views_in_a_plain_duckdb(data_dir: Path) -> None:
    done = journey_sql("--data-dir", str(data_dir), "--print-init")
    assert done.returncode == 0, done.stderr
    con = duckdb.connect()
    con.execute(done.stdout)
    views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal")
             .fetchall()}
    assert {"events", "customers", "sessions", "stage_entries", "models", "meta"} <= views
    assert con.execute("SELECT count(*) FROM customers").fetchone() == (customers(data_dir),)


def test_6_3_a_bad_query_or_no_snapshot_exits_1_with_the_reason(data_dir: Path,
                                                                 tmp_path: Path) -> None:
    bad = journey_sql("--data-dir", str(data_dir), "-c", "SELECT nope FROM customers")
    assert bad.returncode == 1 and "nope" in bad.stdout
    empty = journey_sql("--data-dir", str(tmp_path), "-c", "SELECT 1")
    assert empty.returncode == 1 and "no warehouse snapshot" in empty.stdout


def test_6_3_the_builtin_prompt_runs_statements_across_lines_and_survives_errors(
    data_dir: Path,
) -> None:
    lines = iter([".tables", "SELECT count(*) AS n", "FROM customers;", "SELECT nope;",
                  "SELECT 41 + 1 AS answer;", ".quit", "SELECT 'never';"])
    out = io.StringIO()
    con = open_views(data_dir / "warehouse")
    repl(con, Console(file=out, width=200), lambda prompt: next(lines))
    con.close()
    text = out.getvalue()
    assert "stage_entries" in text and f" {customers(data_dir)} " in text
    assert "nope" in text and " 42 " in text and "never" not in text


def test_6_3_without_the_duckdb_cli_the_shell_is_the_builtin_prompt(data_dir: Path) -> None:
    done = journey_sql("--data-dir", str(data_dir), stdin="SELECT 6 * 7 AS answer;\n")
    assert done.returncode == 0, done.stderr
    assert "built-in prompt" in done.stdout and " 42 " in done.stdout


def test_6_5_by_default_an_escape_is_refused_and_the_flag_gives_the_full_duckdb(
    data_dir: Path, tmp_path: Path,
) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("password\nhunter2\n")
    escape = f"SELECT * FROM read_csv('{secret}')"
    refused = journey_sql("--data-dir", str(data_dir), "-c", escape)
    assert refused.returncode == 1 and "read_csv" in refused.stdout
    assert "hunter2" not in refused.stdout
    allowed = journey_sql("--data-dir", str(data_dir), "--unsafe-full-duckdb", "-c", escape)
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert "hunter2" in allowed.stdout


@pytest.mark.parametrize("sql", [
    "SELECT * FROM read_csv('{out}')",
    "COPY (SELECT 1 AS x) TO '{out}.copy.csv'",
    "ATTACH '{out}.duckdb' AS x",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
])
def test_6_5_the_default_connection_refuses_escapes_even_without_the_parse_check(
    data_dir: Path, tmp_path: Path, sql: str,
) -> None:
    out = tmp_path / "outside.csv"
    out.write_text("x\n1\n")
    con = open_views(data_dir / "warehouse")
    try:
        with pytest.raises((duckdb.PermissionException, duckdb.InvalidInputException)):
            con.execute(sql.format(out=out))
        assert con.execute("SELECT count(*) FROM customers").fetchone() == (customers(data_dir),)
    finally:
        con.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outside.csv"]


def test_6_5_the_prompt_refuses_writes_by_default(data_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "stolen.csv"
    done = journey_sql("--data-dir", str(data_dir),
                       stdin=f"COPY customers TO '{target}';\nSELECT 6 * 7 AS answer;\n")
    assert done.returncode == 0, done.stderr
    assert "only SELECT" in done.stdout and " 42 " in done.stdout and not target.exists()
