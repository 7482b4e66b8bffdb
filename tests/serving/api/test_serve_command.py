"""``make serve`` (issue 16, item 8): the demo command from a fresh shell, and a clean stop on SIGTERM."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

import pytest

from registry.bundle import ModelBundle
from tests.serving.api.test_process import free_port, wait_until_up
from tests.serving.factories import seed_cache

pytestmark = pytest.mark.slow

REPOSITORY = Path(__file__).resolve().parents[3]


def make(*args: str, **kwargs: object) -> subprocess.Popen[str]:
    """``make -o install ARGS`` in the repository (the environment is installed already)."""
    return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
        ["make", "--no-print-directory", "-o", "install", *args], cwd=REPOSITORY, text=True, **kwargs
    )


def test_make_serve_takes_the_state_dir_of_the_demo() -> None:
    """The README's demo works from a fresh shell (``riskgate`` need not be on PATH)."""
    dry = make("-n", "serve", "STATE_DIR=state/backtest", stdout=subprocess.PIPE)
    out, _ = dry.communicate(timeout=60)
    assert "riskgate serve --state-dir state/backtest" in out
    assert dry.returncode == 0


def children(pid: int) -> list[int]:
    """The processes ``pid`` started, and theirs (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(stat.parent.name))
    return found + [grandchild for child in found for grandchild in children(child)]


def test_make_serve_stopped_with_sigterm_ends_with_status_0(
    tmp_path: Path, bundles: dict[str, ModelBundle]
) -> None:
    seed_cache(tmp_path / "state" / "models", bundles)
    port = free_port()
    environment = {
        **os.environ,
        "RISKGATE_MLRUNS_DIR": str(tmp_path / "mlruns"),
        "RISKGATE_MODEL_RELOAD_SECONDS": "0",
        "RISKGATE_SERVE_PORT": str(port),
    }
    process = make(
        "serve",
        f"STATE_DIR={tmp_path / 'state'}",
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        wait_until_up(process, f"http://127.0.0.1:{port}")  # type: ignore[arg-type]
        servers = [
            pid
            for pid in children(process.pid)
            if b"serve" in Path(f"/proc/{pid}/cmdline").read_bytes()
            and b"riskgate" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        assert servers
        os.kill(servers[-1], signal.SIGTERM)  # the service itself, as a supervisor stops it
        _, errors = process.communicate(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 0, errors[-2000:]
    assert "Error" not in errors
