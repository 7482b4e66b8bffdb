"""The rules commands: ``riskgate rules load FILE`` (a YAML file of rules and lists into the state
directory's store, each change a new version with who and why) and ``riskgate rules export`` (the current
set as such a file), over :mod:`serving.store.operations_yaml`; for providers who keep their rules in git."""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from core.settings import get_settings
from riskgate.cli.options import FeatureSetOption, chosen_feature_set

if TYPE_CHECKING:
    from serving.store.operations import Operations

rules_app = typer.Typer(
    name="rules",
    help="The fraud team's rules and allow/block lists: load them from YAML, export them.",
    no_args_is_help=True,
)
StateDirOption = Annotated[
    Path | None,
    typer.Option(
        "--state-dir", help="The service's state directory (default: RISKGATE_STATE_DIR, else state)."
    ),
]


def register(app: typer.Typer) -> None:
    """Add this area's commands to ``app`` (as ``riskgate rules ...``)."""
    app.add_typer(rules_app)


def _operations(state_dir: Path | None, feature_set: str | None) -> Operations:
    from serving.store.operations_sqlite import open_operations  # noqa: PLC0415 (keep --help fast)

    chosen = chosen_feature_set(feature_set).feature_set
    return open_operations(state_dir or get_settings().state_dir, chosen)


@rules_app.command()
def load(
    file: Annotated[
        Path, typer.Argument(help="The YAML file of rules and lists.", exists=True, dir_okay=False)
    ],
    *,
    reason: Annotated[str, typer.Option(help="Why (kept with every version this makes).")],
    by: Annotated[str | None, typer.Option(help="Who makes the change (default: the user's login).")] = None,
    prune: Annotated[
        bool, typer.Option(help="Also delete the rules and lists the file does not name.")
    ] = False,
    state_dir: StateDirOption = None,
    feature_set: FeatureSetOption = None,
) -> None:
    """Bring the store in line with FILE: new rules and lists are created, changed ones get a new version,
    each list's items become the file's. Every expression is checked against the served feature set first;
    a bad file changes nothing. Exit code: 0 loaded, 2 a bad file (the message names the rule or list and
    the position)."""
    from serving.store.operations import Change  # noqa: PLC0415
    from serving.store.operations_yaml import load_file  # noqa: PLC0415

    operations = _operations(state_dir, feature_set)
    try:
        made = Change(by or getpass.getuser(), datetime.now(UTC), reason)
        loaded = load_file(file, operations, made, prune=prune)
    finally:
        operations.store.close()
    for line in loaded.lines():
        typer.echo(line)


@rules_app.command()
def export(
    *,
    output: Annotated[Path | None, typer.Option(help="Write here (default: standard output).")] = None,
    state_dir: StateDirOption = None,
    feature_set: FeatureSetOption = None,
) -> None:
    """Write the current rules (in evaluation order) and lists (with their items) as YAML, the format
    `riskgate rules load` reads."""
    from serving.store.operations_yaml import export_text  # noqa: PLC0415

    operations = _operations(state_dir, feature_set)
    try:
        text = export_text(operations)
    finally:
        operations.store.close()
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
