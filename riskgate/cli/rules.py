"""The rules commands: ``riskgate rules load FILE`` (a YAML file of rules and lists into the state
directory's store, each change a new version with who and why) and ``riskgate rules export`` (the current
set as such a file), over :mod:`serving.store.operations_yaml`; for providers who keep their rules in git;
``riskgate rules backtest`` (a draft or stored rule replayed over a period of the decision log or of a data
directory, over :mod:`serving.readers.rule_backtest`)."""

from __future__ import annotations

import getpass
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from core.settings import get_settings
from riskgate.cli.options import FeatureSetOption, chosen_feature_set

if TYPE_CHECKING:
    from features.definitions import FeatureSet
    from rules.schema import Schema
    from serving.readers.rule_backtest import Draft
    from serving.store.operations import Operations
    from serving.store.sources import DecisionSource

rules_app = typer.Typer(
    name="rules",
    help="The fraud team's rules and allow/block lists: load them from YAML, export them.",
    no_args_is_help=True,
)
StateDirOption = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        help="The service's state directory (default: RISKGATE_DATABASE_URL's database when it is set, else "
        "RISKGATE_STATE_DIR, else state).",
    ),
]


def register(app: typer.Typer) -> None:
    """Add this area's commands to ``app`` (as ``riskgate rules ...``)."""
    app.add_typer(rules_app)


def _operations(state_dir: Path | None, feature_set: str | None) -> Operations:
    """The store the service reads: RISKGATE_DATABASE_URL's (unless --state-dir names a directory), else the
    state directory's file."""
    from serving.store.operations import Operations  # noqa: PLC0415 (keep --help fast)
    from serving.store.operations_sqlite import open_operations  # noqa: PLC0415

    chosen = chosen_feature_set(feature_set).feature_set
    settings = get_settings()
    if state_dir is None and settings.database_url is not None:
        from serving.store.postgres.operations import PostgresOperations  # noqa: PLC0415

        store = PostgresOperations.connect(settings.database_url.get_secret_value(), chosen.fields)
        return Operations(store, chosen)
    return open_operations(state_dir or settings.state_dir, chosen)


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


RULE_BACKTEST_DIR = Path("state/rule-backtest")


@rules_app.command()
def backtest(
    *,
    expression: Annotated[str | None, typer.Option(help="A draft rule's condition.")] = None,
    action: Annotated[str, typer.Option(help="The draft's action: allow, block or review.")] = "block",
    rule: Annotated[str | None, typer.Option(help="A stored rule's name (instead of --expression).")] = None,
    draft_list: Annotated[
        list[str] | None,
        typer.Option(
            "--list",
            help="A draft list NAME:FIELD:CSV (value, expires_at, reason), in place of a stored list NAME.",
        ),
    ] = None,
    start: Annotated[str | None, typer.Option(help="Period start, ISO (default: end - 30 days).")] = None,
    end: Annotated[
        str | None, typer.Option(help="Period end, exclusive (default: after the last one).")
    ] = None,
    as_of: Annotated[
        str | None, typer.Option(help="Judge labels as known then (default: the newest label known).")
    ] = None,
    maturity_days: Annotated[
        float | None,
        typer.Option(help="Fraud label delay (default: the fraud model's with --data-dir, else 90 days)."),
    ] = None,
    sample: Annotated[int, typer.Option(min=0, max=200, help="How many hit attempt ids to show.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer as JSON.")] = False,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Replay a data directory's period instead of the decision log (every field)."),
    ] = None,
    replay_dir: Annotated[
        Path, typer.Option(help="With --data-dir: where the period is scored (resumed when run again).")
    ] = RULE_BACKTEST_DIR,
    state_dir: StateDirOption = None,
    feature_set: FeatureSetOption = None,
) -> None:
    """What a rule would have done over a period, before enabling it: the attempts it hits, the fraud it
    catches (mature labels as known then, as the trends count them), the good customers and revenue it hits,
    and its overlap with what was blocked or reviewed already. Over the state directory's decision log
    (seconds), or with --data-dir over a data directory scored by the registered models first (every
    attempt field, ids included). Nothing is saved. Exit code: 0 done, 2 a bad rule (the position named),
    a field the log does not keep, an empty log or period."""
    from serving.readers.rule_backtest import lines  # noqa: PLC0415 (keep --help fast)
    from serving.store.sources import decision_source  # noqa: PLC0415

    settings = get_settings()
    chosen = chosen_feature_set(feature_set).feature_set
    operations = _operations(state_dir, feature_set)
    try:
        draft = _draft(operations, expression, action, rule, draft_list or [])
        schema = operations.schema({name: member.kind for name, member in draft.lists.items()})
    finally:
        operations.store.close()
    query = _Query(start, end, as_of, maturity_days, sample)
    if data_dir is None:
        result = _log_backtest(decision_source(settings, state_dir), draft, schema, chosen, query)
    else:
        result = _data_backtest(data_dir, replay_dir, draft, schema, chosen, query=query)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        for line in lines(result):
            typer.echo(line)


def _draft(
    operations: Operations, expression: str | None, action: str, rule: str | None, draft_lists: list[str]
) -> Draft:
    from core.errors import InputError  # noqa: PLC0415
    from rules.book import RuleAction, RuleSpec  # noqa: PLC0415
    from rules.lists import MemberList, make_list, read_items  # noqa: PLC0415
    from serving.readers.rule_backtest import Draft  # noqa: PLC0415

    if (rule is None) == (expression is None):
        raise InputError("give a stored rule's name (--rule) or a draft (--expression), not both or neither")
    if rule is not None:
        spec = operations.store.rule(rule).spec
    else:
        if action not in {a.value for a in RuleAction}:
            raise InputError(f"--action {action!r}: use allow, block or review")
        spec = RuleSpec("draft", RuleAction(action), expression or "")
    lists: dict[str, MemberList] = dict(operations.store.current_lists())
    for given in draft_lists:
        name, _, rest = given.partition(":")
        field, _, csv = rest.partition(":")
        if not (name and field and csv):
            raise InputError(f"--list {given!r}: give NAME:FIELD:CSV, e.g. suspects:device_id:devices.csv")
        items = read_items(Path(csv), field, operations.fields, "draft")
        lists[name] = make_list(name, field, items, operations.fields)
    return Draft(spec, lists)


@dataclass(frozen=True)
class _Query:
    """The period and label options of ``riskgate rules backtest``, as typed."""

    start: str | None
    end: str | None
    as_of: str | None
    maturity_days: float | None
    sample: int


def _log_backtest(
    log: DecisionSource, draft: Draft, schema: Schema, chosen: FeatureSet, query: _Query
) -> dict[str, Any]:
    from serving.readers.rule_backtest import Sources, log_backtest  # noqa: PLC0415
    from serving.readers.trends import FALLBACK_FRAUD_MATURITY_DAYS, parse_moment, resolve_range  # noqa: PLC0415

    delay = FALLBACK_FRAUD_MATURITY_DAYS if query.maturity_days is None else query.maturity_days
    with log.ranges() as reader:
        span = resolve_range(reader, parse_moment("--start", query.start), parse_moment("--end", query.end))
        sources = Sources(tuple(chosen.names), tuple(chosen.fields))
        as_of = parse_moment("--as-of", query.as_of)
        return log_backtest(reader, draft, schema, sources, span, delay, as_of, query.sample)


def _data_backtest(
    data_dir: Path, replay_dir: Path, draft: Draft, schema: Schema, chosen: FeatureSet, *, query: _Query
) -> dict[str, Any]:
    from serving.readers.backtest import load_models  # noqa: PLC0415
    from serving.readers.rule_backtest import data_backtest  # noqa: PLC0415
    from serving.readers.trends import maturity_days, parse_moment  # noqa: PLC0415

    settings = get_settings()
    models = load_models(
        settings.tracking_uri, chosen, alias=settings.model_alias, registry_uri=settings.registry_uri
    )
    period = parse_moment("--start", query.start), parse_moment("--end", query.end)
    fraud = models.fraud
    delay = query.maturity_days
    if delay is None:
        delay = maturity_days(None if fraud is None else fraud.bundle)
    as_of = parse_moment("--as-of", query.as_of)
    secret = settings.pseudonym_secret.get_secret_value()
    return data_backtest(
        data_dir, replay_dir, models, chosen, draft, schema, period, delay, as_of, query.sample, secret
    )
