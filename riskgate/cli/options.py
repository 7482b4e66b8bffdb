"""What several command modules share: the options they declare alike, the one choice of feature set, the
settings with ``--data-dir``, logging and the progress bars of the long commands."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from core.progress import NO_PROGRESS, Progress
from core.settings import Settings, get_settings
from riskgate.progress import RichProgress

if TYPE_CHECKING:
    from rich.console import Console

    from training.data import ChosenFeatureSet

FeatureSetOption = Annotated[
    str | None,
    typer.Option(
        "--feature-set",
        help="Feature set as 'module:ATTRIBUTE' (default: RISKGATE_FEATURE_SET, else features.iptv).",
    ),
]
DataDirOption = Annotated[
    Path | None, typer.Option("--data-dir", help="Data directory (default: RISKGATE_DATA_DIR, else data).")
]


def configure_logging(settings: Settings) -> None:
    """Configure logging once, at the entry point (the CLI's callback, or a ``serve`` worker process)."""
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def chosen_feature_set(spec: str | None) -> ChosenFeatureSet:
    """The one choice of feature set of every command: ``--feature-set``, else the setting
    (``RISKGATE_FEATURE_SET``), else the IPTV set (an unusable spec is a usage error)."""
    from features.registry import DEFAULT_SPEC  # noqa: PLC0415 (keep --help fast)
    from training.data import ChosenFeatureSet  # noqa: PLC0415

    return ChosenFeatureSet.named(spec or get_settings().feature_set or DEFAULT_SPEC)


def settings_with(data_dir: Path | None) -> Settings:
    """The settings, with ``--data-dir`` in place of the setting's when given."""
    settings = get_settings()
    return settings if data_dir is None else settings.model_copy(update={"data_dir": data_dir})


def progress_console() -> Console | None:
    """The console progress bars are drawn on: stderr when it is a terminal, else none (no bars and no
    control characters in pipes, logs and tests; stdout is never touched)."""
    if not sys.stderr.isatty():
        return None
    from rich.console import Console  # noqa: PLC0415 (keep --help fast)

    return Console(stderr=True)


@contextlib.contextmanager
def progress_bars(context: typer.Context) -> Iterator[Progress]:
    """Progress bars for the command of ``context`` while the block runs: none with ``riskgate --quiet`` or
    without a terminal on stderr."""
    quiet = bool(context.find_root().params.get("quiet"))
    console = None if quiet else progress_console()
    if console is None:
        yield NO_PROGRESS
        return
    with RichProgress(console) as bars:
        yield bars
