"""Backtest: replay a period of a data directory through the real scoring engine, as if the service was live.

:func:`run_backtest` first records the history before the period into the online store
(:func:`features.history.load_history`), then takes every event of the period in time order: an attempt is
scored by :meth:`serving.scoring.engine.ScoringEngine.score` (built from the event as the API builds it:
online
features, both models, policy, decision log), an outcome or fraud report is recorded by
:meth:`~serving.scoring.engine.ScoringEngine.record_outcomes` when it happens. Everything lands in a state
directory
laid out as the service's (``online.sqlite``, ``decisions.sqlite``), so trends, drift, the report and
``riskgate serve --state-dir`` read a backtest's log as they read a live one.

A backtest is resumable: its parameters are written to ``backtest.json`` in the state directory, and running
it again with the same parameters continues where it stopped (every step is idempotent on its id). A state
directory that holds another log (a live service's, another backtest's) is refused.
"""

from __future__ import annotations

import bisect
import json
import logging
import math
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from operator import itemgetter
from pathlib import Path
from typing import Any, Final

import pandas as pd

from core.errors import RiskgateError
from core.progress import NO_PROGRESS, Progress
from core.settings import DEV_PSEUDONYM_SECRET
from features.bulk import BulkLoadError
from features.definitions import FeatureSet
from features.history import Event, Loaded, event_stream, load_history, ns_of
from features.online import OnlineEngine
from features.stores.sqlite import SQLiteStore
from registry.names import MODEL_NAMES, TASKS
from serving.scoring.answers import ScoreAnswer
from serving.scoring.engine import ScoringEngine, ThresholdOverrides
from serving.scoring.models import ModelHolder, ModelPair, ServingModel
from serving.scoring.schemas import AttemptIn, FraudReportIn, OutcomeIn
from serving.store.base import DecisionStore
from serving.store.decisions import DecisionLog
from serving.store.pseudonyms import Pseudonymiser

logger = logging.getLogger(__name__)

MANIFEST: Final = "backtest.json"
HISTORY_MARKER: Final = "history.loaded"  # written once the history before the period is in the store
DEFAULT_MONTHS: Final = 1
_PROGRESS_EVERY: Final = 5_000


class BacktestError(RiskgateError, RuntimeError):
    """A backtest that cannot run as asked (state directory in use, empty period, unusable model)."""


@dataclass(frozen=True)
class Period:
    """The replayed period ``[start, end)`` (UTC)."""

    start: datetime
    end: datetime


@dataclass(frozen=True)
class BacktestSummary:
    """What a backtest did, and how long it took."""

    state_dir: str
    start: str
    end: str
    models: dict[str, str | None]
    history_events: int
    attempts: int
    replayed: int  # attempts already decided by an earlier, interrupted run of the same backtest
    outcomes: int
    fraud_reports: int
    actions: dict[str, int]
    fallbacks: int
    history_seconds: float
    replay_seconds: float

    def lines(self) -> list[str]:
        """The summary as the CLI prints it."""
        per_second = self.attempts / self.replay_seconds if self.replay_seconds > 0 else float("nan")
        shares = ", ".join(
            f"{action} {count} ({count / max(self.attempts, 1):.1%})"
            for action, count in self.actions.items()
        )
        return [
            f"backtest {self.start} .. {self.end} -> {self.state_dir}",
            f"models: fraud {self.models['fraud']}, failure {self.models['failure']}",
            f"history: {self.history_events} events before the period, loaded in "
            f"{self.history_seconds:.1f} s",
            f"replayed: {self.attempts} attempts ({self.replayed} already decided), {self.outcomes} "
            f"outcomes, {self.fraud_reports} fraud reports in {self.replay_seconds:.1f} s "
            f"({per_second:.0f} attempts/s)",
            f"decisions: {shares}; {self.fallbacks} fallback",
        ]


def _model_ref(model: ServingModel | None) -> str | None:
    return None if model is None else f"{model.name}/{model.version}"


def default_period(events: Sequence[Event], months: int = DEFAULT_MONTHS) -> Period:
    """The events' last ``months`` calendar months: ``months`` before the last event to just after it."""
    if not events:
        raise BacktestError("the data directory holds no events: nothing to backtest")
    last = pd.Timestamp(events[-1][0], unit="ns", tz=UTC)
    end = (last + pd.Timedelta(microseconds=1)).floor("us")
    return Period((end - pd.DateOffset(months=months)).to_pydatetime(), end.to_pydatetime())


def _manifest(data_dir: Path, period: Period, models: ModelPair, feature_set: FeatureSet) -> dict[str, Any]:
    return {
        "data_dir": str(data_dir.resolve()),
        "start": period.start.isoformat(),
        "end": period.end.isoformat(),
        "models": {task: _model_ref(models.get(task)) for task in TASKS},
        "feature_set": feature_set.hash,
    }


def _claim(state_dir: Path, log: DecisionStore, manifest: dict[str, Any]) -> None:
    """Write the manifest, or refuse a state directory whose log is not this backtest's."""
    path = state_dir / MANIFEST
    decided = log.count()
    if path.exists():
        earlier = {k: v for k, v in json.loads(path.read_text()).items() if k in manifest}
        if earlier != manifest:
            raise BacktestError(
                f"{state_dir} holds another backtest ({path}: {earlier}); choose another --state-dir, or "
                "remove this one to start over"
            )
        if decided:
            logger.info("resuming the backtest in %s: %d attempts already decided", state_dir, decided)
    elif decided:
        raise BacktestError(
            f"{state_dir} holds a decision log with {decided} decisions that no backtest wrote (a live "
            "service's?): a backtest never mixes with it; choose an empty --state-dir"
        )
    path.write_text(json.dumps({**manifest, "claimed_at": datetime.now(UTC).isoformat()}, indent=2))


def _plain(fields: dict[str, Any]) -> dict[str, Any]:
    """An event's fields as the API receives them (timestamps as plain datetimes)."""
    return {k: v.to_pydatetime() if isinstance(v, pd.Timestamp) else v for k, v in fields.items()}


def _attempt_body(fields: dict[str, Any], extension: Sequence[str]) -> dict[str, Any]:
    """An attempt event as the API receives it: the feature set's own fields (``extension``) that it has
    under ``attributes`` (missing ones, None or NaN, left out), the core fields at the top."""
    body = _plain(fields)
    attributes = {name: body.pop(name) for name in extension if name in body}
    present = {name: value for name, value in attributes.items() if not _missing(value)}
    return {**body, "attributes": present} if present else body


def _missing(value: object) -> bool:
    return value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value))


@dataclass
class _Tally:
    attempts: int = 0
    replayed: int = 0
    outcomes: int = 0
    reports: int = 0
    fallbacks: int = 0
    actions: Counter[str] = field(default_factory=Counter)


def _replay(
    engine: ScoringEngine, events: Iterable[Event], period: Period, progress: Progress = NO_PROGRESS
) -> _Tally:
    """Send the period's events to the engine in time order, as the API would have received them;
    ``progress`` hears every ``_PROGRESS_EVERY`` attempts."""
    start, end = ns_of(period.start), ns_of(period.end)
    tally = _Tally()
    extension = [field.name for field in engine.fields]
    for moment, _, kind, fields in events:
        if moment < start:
            continue
        if moment >= end:
            break
        if kind == "attempt":
            body = _attempt_body(fields, extension)
            answer: ScoreAnswer = engine.score(
                AttemptIn.model_validate(body, context=engine.validation_context)
            )
            tally.attempts += 1
            tally.replayed += bool(answer["replayed"])
            tally.actions[answer["decision"]["action"]] += 1
            tally.fallbacks += bool(answer["decision"]["fallback"])
            if tally.attempts % _PROGRESS_EVERY == 0:
                progress.advance(_PROGRESS_EVERY)
                logger.info("backtest: %d attempts scored (at %s)", tally.attempts, fields["occurred_at"])
        elif kind == "outcome":
            engine.record_outcomes([OutcomeIn.model_validate(_plain(fields))], [])
            tally.outcomes += 1
        else:
            engine.record_outcomes([], [FraudReportIn.model_validate(_plain(fields))])
            tally.reports += 1
    return tally


def _attempts_in(events: Sequence[Event], period: Period) -> int:
    """How many of the (time-ordered) ``events`` are attempts in ``period``."""
    start, end = ns_of(period.start), ns_of(period.end)
    low = bisect.bisect_left(events, start, key=itemgetter(0))
    high = bisect.bisect_left(events, end, key=itemgetter(0))
    return sum(1 for event in events[low:high] if event[2] == "attempt")


def _load_history_once(
    state_dir: Path, features: OnlineEngine, events: list[Event], start: datetime
) -> Loaded:
    """The history before the period, loaded in bulk on the first run; a resumed run finds it in the store."""
    marker = state_dir / HISTORY_MARKER
    if marker.exists():
        logger.info("backtest: the history is already in %s (resuming)", state_dir)
        return Loaded(events=int(marker.read_text()), until_ns=ns_of(start))
    try:
        loaded = load_history(features, events, start)
    except BulkLoadError as error:
        raise BacktestError(
            f"{state_dir}: the online store holds state from an interrupted history load; remove {state_dir} "
            "and run the backtest again"
        ) from error
    marker.write_text(str(loaded.events))
    return loaded


def run_backtest(
    data_dir: Path,
    state_dir: Path,
    models: ModelPair,
    feature_set: FeatureSet,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    pseudonym_secret: str = DEV_PSEUDONYM_SECRET,
    overrides: ThresholdOverrides | None = None,
    progress: Progress = NO_PROGRESS,
) -> BacktestSummary:
    """Replay ``[start, end)`` of ``data_dir`` (default: its last month) into ``state_dir`` with ``models``.

    ``models`` is the pair to score with (see :func:`load_models` for registered versions); its feature set
    must be ``feature_set``. ``pseudonym_secret`` should be the one of the service that will show the log
    (``RISKGATE_PSEUDONYM_SECRET``), so that erasure finds the backtest's decisions too. ``progress`` hears
    each step, the replay counted in attempts.
    """
    progress.stage("read events")
    events = event_stream(data_dir)
    chosen = default_period(events)
    period = Period(start or chosen.start, end or chosen.end)
    if period.start >= period.end:
        raise BacktestError(f"the period is empty: start {period.start} is not before end {period.end}")
    state_dir.mkdir(parents=True, exist_ok=True)
    store = SQLiteStore(state_dir / "online.sqlite")
    log = DecisionLog(state_dir / "decisions.sqlite")
    try:
        _claim(state_dir, log, _manifest(data_dir, period, models, feature_set))
        features = OnlineEngine(store, feature_set)
        engine = ScoringEngine(
            features=features,
            feature_names=feature_set.names,
            holder=ModelHolder(models),
            log=log,
            pseudonymise=Pseudonymiser(pseudonym_secret),
            overrides=overrides,
            fields=feature_set.fields,
        )
        began = time.perf_counter()
        progress.stage("load the history before the period")
        loaded = _load_history_once(state_dir, features, events, period.start)
        loaded_at = time.perf_counter()
        logger.info("backtest: %d history events loaded in %.1f s", loaded.events, loaded_at - began)
        progress.stage("replay the period's attempts", _attempts_in(events, period))
        tally = _replay(engine, events, period, progress)
        finished = time.perf_counter()
    finally:
        log.close()
        store.close()
    summary = BacktestSummary(
        state_dir=str(state_dir),
        start=period.start.isoformat(),
        end=period.end.isoformat(),
        models={task: _model_ref(models.get(task)) for task in TASKS},
        history_events=loaded.events,
        attempts=tally.attempts,
        replayed=tally.replayed,
        outcomes=tally.outcomes,
        fraud_reports=tally.reports,
        actions={action: tally.actions.get(action, 0) for action in ("approve", "review", "block", "defer")},
        fallbacks=tally.fallbacks,
        history_seconds=round(loaded_at - began, 3),
        replay_seconds=round(finished - loaded_at, 3),
    )
    (state_dir / "backtest-summary.json").write_text(json.dumps(asdict(summary), indent=2))
    return summary


# -- registered models ---------------------------------------------------------------------------------------


def _name_and_version(client: Any, uri: str) -> tuple[str, str]:
    """``(name, version)`` of ``models:/NAME/VERSION`` or ``models:/NAME@ALIAS`` (the alias resolved)."""
    from registry.store import version_by_alias  # noqa: PLC0415 - MLflow is slow to import

    path = uri.removeprefix("models:/")
    if path == uri or not path:
        raise BacktestError(f"model URI {uri!r}: use models:/NAME/VERSION or models:/NAME@ALIAS")
    if "@" in path:
        name, alias = path.split("@", 1)
        found = version_by_alias(client, name, alias)
        if found is None:
            raise BacktestError(
                f"no version of {name} has the alias @{alias}: train and promote (make train promote), or "
                "pass the version to backtest (models:/NAME/VERSION)"
            )
        return name, str(found.version)
    name, _, version = path.partition("/")
    if not version:
        raise BacktestError(f"model URI {uri!r}: give a version or an alias (models:/{name}/3, @champion)")
    return name, version


def load_models(
    tracking_uri: str,
    feature_set: FeatureSet,
    fraud: str | None = None,
    failure: str | None = None,
    alias: str = "champion",
    *,
    registry_uri: str | None = None,
) -> ModelPair:
    """The registered versions to backtest: the given ``models:/`` URIs, else each task's ``@alias``."""
    from registry.store import load_bundle, tracking_store  # noqa: PLC0415

    uris = {"fraud": fraud, "failure": failure}
    loaded: dict[str, ServingModel] = {}
    with tracking_store(tracking_uri, registry_uri) as client:
        for task in TASKS:
            uri = uris[task] or f"models:/{MODEL_NAMES[task]}@{alias}"
            name, version = _name_and_version(client, uri)
            bundle = load_bundle(client, f"models:/{name}/{version}")
            if bundle.task != task:
                raise BacktestError(f"{uri} is a {bundle.task} model, given as the {task} model")
            bundle.check_features(feature_set.names, feature_set.hash)
            loaded[task] = ServingModel.from_bundle(bundle, name, version, "registry")
            logger.info("backtest %s model: %s version %s (%s)", task, name, version, uri)
    return ModelPair(loaded["fraud"], loaded["failure"])
