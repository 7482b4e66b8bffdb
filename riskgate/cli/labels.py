"""The labels commands: ``riskgate labels pull`` (the fraud reports the service holds, review resolutions
included, into a data directory's ``fraud_reports`` table, where the next training reads them), over
:mod:`serving.readers.labels`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from core.settings import get_settings

labels_app = typer.Typer(
    name="labels",
    help="Labels the service learned (fraud reports, review cases resolved as fraud) for the next training.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add this area's commands to ``app`` (as ``riskgate labels ...``)."""
    app.add_typer(labels_app)


@labels_app.command()
def pull(
    *,
    data: Annotated[
        Path | None, typer.Option("--data", help="The data directory (default: RISKGATE_DATA_DIR).")
    ] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option("--state-dir", help="The service's state directory (default: RISKGATE_STATE_DIR)."),
    ] = None,
) -> None:
    """Write the decision log's fraud reports that the data directory lacks into its fraud_reports table,
    through the import's checks (idempotent by report_id). Exit code: 0 pulled, 1 refused."""
    from serving.readers.labels import pull_labels  # noqa: PLC0415 (keep --help fast)
    from serving.store.labels_sqlite import SQLiteReports  # noqa: PLC0415

    settings = get_settings()
    source = SQLiteReports((state_dir or settings.state_dir) / "decisions.sqlite")
    try:
        pulled = pull_labels(source, data or settings.data_dir)
    finally:
        source.close()
    for line in pulled.summary():
        typer.echo(line)
