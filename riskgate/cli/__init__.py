"""The ``riskgate`` command line: thin commands over the packages' functions, one module per area.

Each command reads the settings once and calls the function of its package that does the work (and can be
called from a test); heavy libraries are imported inside the commands so that ``riskgate --help`` is fast.
Areas: :mod:`~riskgate.cli.data` (info, validate, import, simulate), :mod:`~riskgate.cli.features`,
:mod:`~riskgate.cli.models` (train, evaluate-rolling, evaluate, promote, score, config show),
:mod:`~riskgate.cli.service` (serve, api-key), :mod:`~riskgate.cli.recovery` (recovery-eval),
:mod:`~riskgate.cli.trends` (backtest, report), :mod:`~riskgate.cli.rules` (rules load, backtest,
export), :mod:`~riskgate.cli.labels` (labels pull), :mod:`~riskgate.cli.billing` (billing check) and
:mod:`~riskgate.cli.db` (db upgrade, status); what they share is in :mod:`~riskgate.cli.options`.

Errors end a command in one place, :meth:`RiskgateGroup.invoke`: a :class:`~core.errors.RiskgateError`
prints ``error: <message>`` on stderr and exits with the error's ``exit_code``; no command catches errors to
pick an exit status.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Final, NoReturn

import typer
from pydantic import ValidationError
from typer.core import TyperGroup

from core.errors import EXIT_FAILURE, RiskgateError
from core.settings import get_settings
from riskgate.cli import billing, data, db, features, labels, models, recovery, rules, service, trends
from riskgate.cli.options import configure_logging

if TYPE_CHECKING:
    from typer._click.core import Context  # the click typer carries (its groups take its contexts)

#: Errors that are not riskgate's but reach a command from the libraries under it, as the command line has
#: always reported them (exit status 1): a value pydantic refuses (e.g. ``simulate --accounts -1``) and a
#: file that is not there (e.g. ``train --config missing.yaml``).
FOREIGN_ERRORS: Final = (ValidationError, FileNotFoundError)


def _fail(message: str, exit_code: int) -> NoReturn:
    """End the command: ``error: <message>`` on stderr, and the exit status."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(exit_code)


class RiskgateGroup(TyperGroup):
    """The root command group: the one place where an error ends a command (see the module docstring)."""

    def invoke(self, ctx: Context) -> Any:
        """Run the command; an error it raises on purpose becomes its message and its exit status."""
        try:
            return super().invoke(ctx)
        except RiskgateError as error:
            _fail(str(error), error.exit_code)
        except FOREIGN_ERRORS as error:
            _fail(str(error), EXIT_FAILURE)


app = typer.Typer(
    name="riskgate",
    cls=RiskgateGroup,
    help="Payment-risk scoring for IPTV providers: simulate, import, build features, train, serve.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def main(
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet", "-q", help="No progress bars (they are drawn on stderr only when it is a terminal)."
        ),
    ] = False,
) -> None:
    """riskgate command line."""
    del quiet  # the long commands read it from their context (see options.progress_bars)
    configure_logging(get_settings())


for area in (data, features, models, service, recovery, trends, rules, labels, billing, db):
    area.register(app)
