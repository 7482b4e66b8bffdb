"""Real servers for the tests: PostgreSQL, Redis and HAProxy from Debian's packages (`make system-deps`), and
an MLflow tracking server (`mlflow server`, from the project's environment), all on loopback.

Each runs from a throwaway folder on a free port and is stopped when its fixture ends. PostgreSQL refuses to
run as root, so as root (CI) its folder belongs to the ``postgres`` user the Debian package creates and its
commands run as that user.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import psycopg
import redis

#: The tests' PostgreSQL trades durability against a machine crash for speed (the tests never see one; a kill
#: of a riskgate instance, which they do test, loses nothing PostgreSQL acknowledged either way).
_FAST = ("fsync=off", "synchronous_commit=off", "full_page_writes=off", "max_connections=300",
         "shared_buffers=64MB")  # fmt: skip


T = TypeVar("T")


def enter_together(stack: ExitStack, managers: Mapping[str, AbstractContextManager[T]]) -> dict[str, T]:
    """Enter the context managers at once, by name (servers that each wait for their process to come up:
    starting them side by side saves that wait); those entered are exited by ``stack``, even when another
    failed (its error is raised)."""
    with ThreadPoolExecutor(len(managers)) as pool:
        futures: dict[str, Future[T]] = {
            name: pool.submit(manager.__enter__) for name, manager in managers.items()
        }
    for name, future in futures.items():
        if future.exception() is None:
            stack.push(managers[name].__exit__)
    return {name: future.result() for name, future in futures.items()}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def postgres_bin() -> Path | None:
    """The folder of Debian's PostgreSQL server programs (the newest installed), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


@dataclass(frozen=True)
class PostgresServer:
    """A running PostgreSQL: its superuser ``riskgate`` connects without a password on ``port``."""

    port: int
    folder: Path

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://riskgate@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str, template: str | None = None) -> str:
        """A new database (a copy of ``template`` if given); its URL."""
        with psycopg.connect(self.url(), autocommit=True) as connection:
            clause = f" TEMPLATE {template}" if template else ""
            connection.execute(f'CREATE DATABASE "{name}"{clause}')
        return self.url(name)


def _as_postgres() -> list[str]:
    """The prefix that runs a command as the ``postgres`` user when this process is root (else nothing)."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError as missing:
        raise RuntimeError(
            "running as root needs the 'postgres' user: apt-get install postgresql"
        ) from missing
    return ["runuser", "-u", "postgres", "--"]


@contextlib.contextmanager
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server in a new folder on a free port, stopped (and its folder removed) at the end."""
    binaries = postgres_bin()
    if binaries is None:
        raise RuntimeError("PostgreSQL is not installed: run `make system-deps` (apt-get install postgresql)")
    prefix = _as_postgres()
    folder = Path(tempfile.mkdtemp(prefix="riskgate-pg-"))
    if prefix:
        shutil.chown(folder, "postgres", "postgres")
    data = folder / "data"
    port = free_port()
    subprocess.run(
        [*prefix, str(binaries / "initdb"), "-D", str(data), "-U", "riskgate", "--auth=trust", "-E", "UTF8",
         "--no-sync"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    options = " ".join(f"-c {setting}" for setting in (*_FAST, f"unix_socket_directories={folder}"))
    subprocess.run(
        [*prefix, str(binaries / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"), "-w", "-t", "60",
         "-o", f"-p {port} -h 127.0.0.1 {options}", "start"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        yield PostgresServer(port, folder)
    finally:
        subprocess.run(
            [*prefix, str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """A redis-server bound to 127.0.0.1 on a free port, with nothing saved to disk; its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError(
            "redis-server is not installed: run `make system-deps` (apt-get install redis-server)"
        )
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        for _ in range(200):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        else:
            raise RuntimeError(f"redis-server did not start on port {port}")
        client.close()
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


#: How long `mlflow server` may take to answer GET /health (it imports MLflow's server: a minute on a loaded
#: machine).
MLFLOW_START_S = 300.0


@dataclass
class MlflowServer:
    """An `mlflow server` on 127.0.0.1:``port`` keeping its runs in ``folder``/server.db and proxying its
    artifacts into ``folder``/artifacts (``--serve-artifacts``); :meth:`stopped` takes it down for a while."""

    folder: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def artifacts(self) -> Path:
        return self.folder / "artifacts"

    def start(self) -> None:
        """Start the server; return once GET /health answers."""
        command = [
            str(Path(sys.executable).with_name("mlflow")), "server",
            "--backend-store-uri", f"sqlite:///{self.folder / 'server.db'}",
            "--artifacts-destination", str(self.artifacts), "--serve-artifacts",
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
        ]  # fmt: skip
        self.folder.mkdir(parents=True, exist_ok=True)
        with (self.folder / "server.log").open("ab") as log:
            self.process = subprocess.Popen(
                command, cwd=self.folder, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + MLFLOW_START_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited: see {self.folder / 'server.log'}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"mlflow server did not answer within {MLFLOW_START_S:.0f} s on port {self.port}")

    def stop(self) -> None:
        """Stop the server and the processes it started (its process group)."""
        if self.process is None:
            return
        process, self.process = self.process, None
        for sent in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sent)
            try:
                process.wait(timeout=15)
                break
            except subprocess.TimeoutExpired:
                continue

    @contextlib.contextmanager
    def stopped(self) -> Iterator[None]:
        """The server down inside the block (connections refused), up again after it."""
        self.stop()
        try:
            yield
        finally:
            self.start()


@contextlib.contextmanager
def mlflow_server(folder: Path) -> Iterator[MlflowServer]:
    """An MLflow tracking server with an artifact proxy, its store in ``folder``; stopped at the end."""
    server = MlflowServer(folder)
    server.start()
    try:
        yield server
    finally:
        server.stop()


#: The HAProxy config shipped for a fleet (its addresses come from the environment: see its header).
HAPROXY_CONFIG = Path(__file__).resolve().parents[1] / "deploy" / "haproxy" / "riskgate.cfg"


@dataclass(frozen=True)
class Proxy:
    """A running HAProxy: callers connect to ``url``; its runtime API listens on ``socket``."""

    url: str
    socket: Path
    pid: int

    def command(self, line: str) -> str:
        """One command of HAProxy's runtime API (``show stat``, ``set server riskgate/a state drain``...)."""
        with socket.socket(socket.AF_UNIX) as connection:
            connection.settimeout(5.0)
            connection.connect(str(self.socket))
            connection.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := connection.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def servers(self, backend: str = "riskgate") -> dict[str, dict[str, str]]:
        """``show stat`` of ``backend``'s servers by name (``status``: UP, DOWN, ...; ``stot``: requests
        sent; ``wretr``, ``wredis``: retries and redispatches)."""
        table = self.command("show stat").lstrip("# ")
        rows = csv.DictReader(line for line in table.splitlines() if line)
        return {
            row["svname"]: row
            for row in rows
            if row["pxname"] == backend and row["svname"] not in {"FRONTEND", "BACKEND"}
        }


def haproxy_binary() -> str:
    """Debian's ``haproxy`` (in /usr/sbin, which a user's PATH may lack)."""
    binary = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin")
    if binary is None:
        raise RuntimeError("HAProxy is not installed: run `make system-deps` (apt-get install haproxy)")
    return binary


@contextlib.contextmanager
def haproxy(instances: Sequence[str], folder: Path, config: Path = HAPROXY_CONFIG) -> Iterator[Proxy]:
    """HAProxy with ``config`` on a free loopback port in front of two ``instances`` (host:port), its stats
    on another free port and its runtime API on a socket in a short-named folder of its own (a socket's path
    holds 97 characters at most: a test's folder can be longer); its log in ``folder``; stopped at the end."""
    binary = haproxy_binary()
    first, second = instances
    sockets = Path(tempfile.mkdtemp(prefix="rg-haproxy-"))
    port, runtime = free_port(), sockets / "haproxy.sock"
    environment = {
        **os.environ,
        "RISKGATE_PROXY_BIND": f"127.0.0.1:{port}",
        "RISKGATE_PROXY_STATS_BIND": f"127.0.0.1:{free_port()}",
        "RISKGATE_PROXY_SOCKET": str(runtime),
        "RISKGATE_INSTANCE_A": first,
        "RISKGATE_INSTANCE_B": second,
    }
    with (folder / "haproxy.log").open("wb") as log:
        process = subprocess.Popen(
            [binary, "-db", "-f", str(config)], env=environment, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        for _ in range(200):
            if process.poll() is not None:
                problem = (folder / "haproxy.log").read_text()[-2000:]
                raise RuntimeError(f"haproxy exited with {process.returncode}: {problem}")
            if runtime.exists():
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                    break
            time.sleep(0.05)
        else:
            raise RuntimeError(f"haproxy did not start on port {port}")
        yield Proxy(f"http://127.0.0.1:{port}", runtime, process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(sockets, ignore_errors=True)
