"""The service commands: ``serve`` (the scoring service under uvicorn) and ``api-key``; and
:func:`worker_app`, the application of each process of ``serve --workers N``."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from core.settings import get_settings
from riskgate.cli.options import configure_logging

if TYPE_CHECKING:
    from fastapi import FastAPI

logger = logging.getLogger(__name__)


def register(app: typer.Typer) -> None:
    """Add this area's commands to ``app``."""
    app.command()(serve)
    app.command("api-key")(api_key)


def serve(
    host: Annotated[
        str | None, typer.Option(help="Interface to bind (default: RISKGATE_SERVE_HOST).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: RISKGATE_SERVE_PORT, 8000).")] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            help="State directory (default: RISKGATE_STATE_DIR); e.g. state/backtest to show a backtest."
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Server processes sharing the port and the SQLite state (WAL): 2 uses both cores of a "
            "2-core machine. Each loads the models; an admin reload reaches the process that answers it.",
        ),
    ] = 1,
    root_path: Annotated[
        str,
        typer.Option(
            help="The URL prefix a reverse proxy serves the API under (e.g. /risk), for links and the docs."
        ),
    ] = "",
) -> None:
    """Run the scoring service (uvicorn) until Ctrl-C or SIGTERM, draining in-flight requests."""
    import uvicorn  # noqa: PLC0415 (keep --help fast)

    from serving.api.app import create_app  # noqa: PLC0415
    from serving.api.connections import LimitedHttpProtocol, use_limits  # noqa: PLC0415

    settings = get_settings()
    if state_dir is not None:
        settings = settings.model_copy(update={"state_dir": state_dir})
        os.environ["RISKGATE_STATE_DIR"] = str(state_dir)  # worker processes build their settings from it
    if workers > 1 and settings.write_behind:  # write-behind needs one process per state directory
        typer.echo(
            f"--workers {workers}: write-behind off, the processes share the state through SQLite", err=True
        )
        settings = settings.model_copy(update={"write_behind": False})
        os.environ["RISKGATE_WRITE_BEHIND"] = "false"
    application = create_app(settings, freeze_heap=True)  # validates the configuration first
    use_limits(settings)
    if workers > 1:
        application.state.service.close()  # each worker process builds its own service
    _exit_zero_after_a_graceful_stop()
    uvicorn.run(
        application if workers == 1 else f"{__name__}:{worker_app.__name__}",
        factory=workers > 1,
        workers=workers if workers > 1 else None,
        host=host or settings.serve_host,
        port=port or settings.serve_port,
        access_log=False,  # paths can hold account ids; the service keeps its own metrics by route template
        log_config=None,  # keep the logging configured by the CLI (and by worker_app in worker processes)
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
        loop="uvloop",
        http=LimitedHttpProtocol,  # httptools, with limits on the request head's size and time
        timeout_keep_alive=settings.keep_alive_seconds,
        server_header=False,  # name no server software to callers
        root_path=root_path,
    )


def _exit_zero_after_a_graceful_stop() -> None:
    """SIGTERM and Ctrl-C stop the service cleanly: uvicorn drains the requests in flight, then raises the
    signal again for the handler in force before it ran; this one lets the command end with status 0 (not
    143, which `make serve` reported as an error, nor a KeyboardInterrupt traceback)."""
    import signal  # noqa: PLC0415

    def stopped(signum: int, frame: object) -> None:
        del frame
        logger.info("riskgate serve stopped by %s", signal.Signals(signum).name)

    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, stopped)


def worker_app() -> FastAPI:
    """The application in one worker process of ``riskgate serve --workers N`` (uvicorn calls this factory
    in each process it starts): logging configured, then the app built from the same settings."""
    from serving.api.app import create_app  # noqa: PLC0415
    from serving.api.connections import use_limits  # noqa: PLC0415

    settings = get_settings()
    configure_logging(settings)
    use_limits(settings)  # before uvicorn accepts this process's first connection
    return create_app(settings, freeze_heap=True)


def api_key(
    name: Annotated[str, typer.Argument(help="Who holds the key, e.g. billing-eu.")],
    scope: Annotated[list[str], typer.Option(help="score and/or admin (repeat the option).")] = ["score"],  # noqa: B006
) -> None:
    """Create an API key: prints the key once, and the entry to add to RISKGATE_API_KEYS (its hash only)."""
    import json  # noqa: PLC0415

    from core.errors import InputError  # noqa: PLC0415
    from serving.api.security import Scope, new_key  # noqa: PLC0415

    unknown = sorted(set(scope) - {s.value for s in Scope})
    if unknown:
        raise InputError(f"unknown scope(s) {unknown}: use score and/or admin")
    key, digest = new_key()
    typer.echo(f"key (shown once, give it to {name}): {key}")
    typer.echo(
        "RISKGATE_API_KEYS entry: " + json.dumps({"name": name, "sha256": digest, "scopes": sorted(scope)})
    )
