"""The billing command: ``riskgate billing check`` replays a data directory through the billing checks
(:mod:`billing.replay`) and reports, per check, what it flags; on a simulated world also what it caught,
missed and falsely flagged against the simulator's truth (:mod:`simulator.billing_eval`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from core.settings import get_settings
from riskgate.cli.options import progress_bars

if TYPE_CHECKING:
    from billing.catalogue import Catalogue

billing_app = typer.Typer(
    name="billing",
    help="Billing-error checks (double charges, prices off the catalogue, early renewals) over a data dir.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add this area's commands to ``app`` (as ``riskgate billing ...``)."""
    app.add_typer(billing_app)


def _catalogue(data_dir: Path, given: Path | None) -> Catalogue | None:
    """The catalogue to check prices against: ``--catalogue``, else RISKGATE_CATALOGUE_FILE, else the one a
    simulated world wrote beside its data (None: none, prices not checked)."""
    from billing.catalogue import CATALOGUE_FILE, read_catalogue  # noqa: PLC0415 (keep --help fast)

    path = given or get_settings().catalogue_file
    if path is None and (data_dir / CATALOGUE_FILE).is_file():
        path = data_dir / CATALOGUE_FILE
    return None if path is None else read_catalogue(path)


@billing_app.command()
def check(
    context: typer.Context,
    *,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data", "--data-dir", help="Data directory (default: RISKGATE_DATA_DIR, else data)."),
    ] = None,
    catalogue: Annotated[
        Path | None,
        typer.Option(
            dir_okay=False,
            help="Price catalogue, CSV or YAML (default: RISKGATE_CATALOGUE_FILE, else DIR/catalogue.csv "
            "if there; without one prices are not checked).",
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Also write the figures to this JSON file.")] = None,
) -> None:
    """Replay DIR's attempts and outcomes in time order through the billing checks and count, per check, the
    attempts flagged and those it could not check; on a simulated world, caught / missed / false alarms.

    Exit code: 0 done, 2 unreadable data or catalogue.
    """
    from billing.replay import replay  # noqa: PLC0415 (keep --help fast)
    from simulator.billing_eval import against_truth, has_truth  # noqa: PLC0415

    directory = data_dir or get_settings().data_dir
    prices = _catalogue(directory, catalogue)
    with progress_bars(context) as progress:
        result = replay(directory, prices, progress=progress)
    report = result.report(directory, prices)
    if has_truth(directory):
        report = against_truth(result, report, directory)
    text = report.model_dump_json(indent=2)
    if out is not None:
        out.write_text(text + "\n", encoding="utf-8")
    typer.echo(text)
    typer.echo(report.headline())
