"""A real, throwaway PostgreSQL cluster for tests: initdb into a temporary directory, pg_ctl start
on a free port of 127.0.0.1, one fresh database per test, pg_ctl stop at the end of the session.

scripts/postgres.sh installs Debian's server binaries when they are missing and prints where they
are. initdb refuses to run as root, so as root the cluster runs as the `postgres` system user the
Debian package creates; its directory then lives outside pytest's root-only temporary tree.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
POSTGRES_SH = REPO / "scripts" / "postgres.sh"
SERVER_USER = "postgres"  # the Debian package's system user, for a test session run as root
SUPERUSER = "journey"  # the cluster's own superuser role, whoever runs its processes


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PgCluster:
    """One running cluster: libpq connection strings for its databases."""

    def __init__(self, bindir: Path, base: Path, port: int, run_as: str | None) -> None:
        self.bindir, self.base, self.port, self._run_as = bindir, base, port, run_as
        self.datadir = base / "data"
        self.socket_dir = base / "sock"
        self.log = base / "server.log"

    def conninfo(self, dbname: str = "journey") -> str:
        """A libpq key=value connection string to one database of the cluster, over TCP."""
        return f"dbname={dbname} host=127.0.0.1 port={self.port} user={SUPERUSER}"

    def catalog_url(self) -> str:
        """A DuckLake catalog URL (JOURNEY_CATALOG_URL) on a database nobody has used yet."""
        name = f"lake_{uuid.uuid4().hex[:12]}"
        self.run("createdb", *self._client_args(), name)
        return f"postgres:{self.conninfo(name)}"

    def run(self, tool: str, *args: str, timeout_s: float = 60) -> str:
        """Run one of the cluster's binaries (as its owner); fail the test loudly if it fails."""
        command: Sequence[str] = [str(self.bindir / tool), *args]
        if self._run_as is not None:
            command = ["runuser", "-u", self._run_as, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s,
                              check=False, cwd=self.base)
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            pytest.fail(f"{tool} {' '.join(args)} exited {done.returncode}\n{done.stdout}\n"
                        f"{done.stderr}\n{log}", pytrace=False)
        return done.stdout

    def _client_args(self) -> list[str]:
        return ["-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER]

    def start(self) -> None:
        """initdb, start on the port (its socket in the temporary directory), create `journey`."""
        self.run("initdb", "-D", str(self.datadir), "-U", SUPERUSER, "-A", "trust",
                 "-E", "UTF8", "--locale=C", "--no-sync", timeout_s=120)
        # fsync off: a throwaway cluster, and the tests' commits are what they measure.
        options = (f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                   "-c max_connections=200")
        self.run("pg_ctl", "start", "-D", str(self.datadir), "-l", str(self.log), "-w",
                 "-t", "60", "-o", options, timeout_s=90)
        self.run("createdb", *self._client_args(), "journey")

    def stop(self) -> None:
        """Stop the server (fast: open connections are cut) and remove its directory."""
        try:
            if (self.datadir / "postmaster.pid").exists():
                self.run("pg_ctl", "stop", "-D", str(self.datadir), "-m", "fast", "-w",
                         "-t", "60", timeout_s=90)
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


def postgres_bindir() -> Path:
    """Where initdb and pg_ctl are (scripts/postgres.sh installs them when they are missing)."""
    try:
        done = subprocess.run(["bash", str(POSTGRES_SH)], capture_output=True, text=True,
                              timeout=900, check=False)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"scripts/postgres.sh timed out: {exc}", pytrace=False)
    if done.returncode != 0:
        pytest.fail(f"scripts/postgres.sh exited {done.returncode}\n{done.stdout}\n"
                    f"{done.stderr}", pytrace=False)
    return Path(done.stdout.strip().splitlines()[-1])


def _server_user() -> str | None:
    """The user the server runs as: None for the current user, the Debian one under root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        pytest.fail(f"running as root and there is no {SERVER_USER!r} user to run PostgreSQL "
                    "as: run scripts/postgres.sh", pytrace=False)
    return SERVER_USER


def start_cluster() -> PgCluster:
    """A started cluster in a new temporary directory (owned by the server's user)."""
    bindir = postgres_bindir()
    run_as = _server_user()
    # Short and outside pytest's 0700 tree: the server's user must reach it, and a unix
    # socket path may not exceed 107 bytes.
    base = Path(tempfile.mkdtemp(prefix="journey-pg-"))
    if run_as is not None:
        user = pwd.getpwnam(run_as)
        os.chown(base, user.pw_uid, user.pw_gid)
    cluster = PgCluster(bindir, base, free_port(), run_as)
    (base / "sock").mkdir()
    if run_as is not None:
        os.chown(base / "sock", user.pw_uid, user.pw_gid)
    try:
        cluster.start()
    except BaseException:
        cluster.stop()
        raise
    return cluster


@pytest.fixture(scope="session")
def postgres() -> Iterator[PgCluster]:
    """A real PostgreSQL server on 127.0.0.1, started once per session; a failure to install
    or start it fails the tests that need it, never skips them."""
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        cluster.stop()
