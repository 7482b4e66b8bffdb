"""The service's parts, built once from the settings: online features, models, decision log, keys, metrics."""

from __future__ import annotations

import logging
import os
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from core.settings import Settings
from features.stores.writebehind import WriteBehindStore
from serving.api.security import KeyRing, check_production_secrets
from serving.api.webhooks import Deliverer
from serving.metrics import ServiceMetrics
from serving.scoring.billing import BUILTIN_RULES, BillingGate
from serving.scoring.engine import FeatureSource, ScoringEngine, ThresholdOverrides
from serving.scoring.models import LoadResult, ModelHolder, ModelLoader
from serving.scoring.review import ReviewDesk
from serving.scoring.review_expiry import ExpiryJob, read_expiry
from serving.scoring.rulebook import RuleBookHolder
from serving.store.base import DecisionStore
from serving.store.cases_sqlite import SQLiteCases
from serving.store.decisions import DecisionLog
from serving.store.journal import Journal, shared_lock
from serving.store.operations import Change, Operations
from serving.store.operations_sqlite import open_operations
from serving.store.operations_yaml import load_file
from serving.store.outbox import Outbox
from serving.store.pseudonyms import Pseudonymiser
from serving.store.sqlite_outbox import SQLiteOutbox
from serving.store.upkeep import Checkpointer
from serving.store.writebehind import WriteBehind

if TYPE_CHECKING:
    from features.definitions import FeatureSet
    from serving.store.billing import BillingStore
    from serving.store.cases import CaseStore
    from serving.store.postgres.database import Database
    from serving.store.postgres.notices import Listener

logger = logging.getLogger(__name__)

#: Who the changes a rules file brings are made by, in the rules' versions.
RULES_FILE_AUTHOR: Final = "rules file"


@dataclass
class Limits:
    max_batch: int = 500
    max_body_bytes: int = 1_048_576
    reload_seconds: float = 60.0
    rules_poll_seconds: float = 1.0


@dataclass
class Service:
    """Everything a request needs; routes reach it as ``request.app.state.service``."""

    engine: ScoringEngine
    loader: ModelLoader
    keys: KeyRing
    limits: Limits
    store: Any = None  # the online store, closed on shutdown
    metrics: ServiceMetrics = field(default_factory=ServiceMetrics)
    sqlite_files: list[Path] = field(default_factory=list)  # checkpointed in the background while running
    scratch_features: FeatureSource | None = None  # a throwaway engine for the start-up warm-up
    write_behind: WriteBehind | None = None
    journal_lock: int | None = None  # without write-behind: the journal's lock, held shared
    recovery_config: Path | None = None  # the dunning policy the recovery planner follows (None: defaults)
    operations: Operations | None = None  # the fraud team's rules and lists (shared by every instance)
    rules_file: Path | None = None  # with a file, the whole set of rules and lists (None: the store's)
    outbox: Outbox | None = None  # signed webhooks' events and deliveries (the admin API reads them)
    deliverer: Deliverer | None = None  # posts them in the background (None: no endpoint is configured)
    review: ReviewDesk | None = None  # the review queue (its cases live beside the decision log)
    expiry: ExpiryJob | None = None  # resolves expired cases in the background while running
    database: Database | None = None  # PostgreSQL shared by the fleet (None: the SQLite files of state_dir)
    listener: Listener | None = None  # hears the fleet's change notices (with PostgreSQL, while running)
    instance: str = field(default_factory=lambda: uuid.uuid4().hex)  # names this instance's own notices
    _checkpointers: list[Checkpointer] = field(default_factory=list)
    _rules_served: int = -1  # the store's change counter when the served book was read (-1: never)
    _rules_refresh: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        """Start-up: apply what the journal holds, load the models, warm the one-row path, start background
        flushes and checkpoints."""
        if self.write_behind is not None:
            self.write_behind.recover(self.engine.features)
            self.write_behind.start()
        self.reload()
        self.engine.warm_up(self.scratch_features)
        self._checkpointers = [Checkpointer(path).start() for path in self.sqlite_files]
        if self.deliverer is not None:
            self.deliverer.start()
        if self.expiry is not None:
            self.expiry.start()
        if self.database is not None:
            self.listener = self._listen(self.database.url)

    def _listen(self, url: str) -> Listener:
        """Hear the other instances' notices: a reload asked of one reloads all; a rules change is served."""
        from serving.store.postgres import notices  # noqa: PLC0415 (SQLite needs no driver)

        def reload(sender: str) -> None:
            if sender != self.instance:  # this instance reloaded before it told the others
                self.reload()

        handlers = {notices.RELOAD: reload, notices.RULES: lambda _: self.serve_rule_changes()}
        return notices.Listener(url, handlers).start()

    def announce_reload(self) -> None:
        """Tell every other instance to reload its models now (with PostgreSQL; alone, nothing to tell)."""
        if self.database is None:
            return
        from serving.store.postgres.notices import RELOAD, notify  # noqa: PLC0415

        try:
            with self.database.transaction() as connection:
                notify(connection, RELOAD, self.instance)
        except Exception:  # this instance reloaded; the others' periodic checks will follow
            logger.exception("the other instances could not be told to reload")
            self.metrics.count_error("notice")

    def reload(self) -> list[LoadResult]:
        """Load what ``@alias`` points at now; swap the pair in one step if anything changed."""
        holder = self.engine.holder
        with holder.reload_lock:
            pair, results = self.loader.load_pair(holder.current)
            if pair is not holder.current:
                holder.swap(pair)
                self.metrics.reloads.labels("swapped").inc()
                logger.info("models now served: %s", _describe(results))
            else:
                self.metrics.reloads.labels("unchanged").inc()
            served = [(r.task, r.model.name, r.model.version, r.model.source) for r in results if r.model]
            self.metrics.show_models(served)
        return results

    def load_rules_file(self, when: str) -> None:
        """With a rules file (``RISKGATE_RULES_FILE``): bring the store in line with it. The file is the whole
        set: rules and lists it does not name are deleted; each change is a version by ``rules file``. A bad
        file raises :class:`serving.store.operations_yaml.RulesFileError` and changes nothing."""
        if self.rules_file is None or self.operations is None:
            return
        made = Change(RULES_FILE_AUTHOR, datetime.now(UTC), f"{self.rules_file}, read {when}")
        load_file(self.rules_file, self.operations, made, prune=True)

    def refresh_rules(self) -> bool:
        """Serve the store's rules and lists if they changed since the book served was read (the store's
        change counter moved; every instance polls it); True when a new book is served. A stored rule that
        no longer compiles raises :class:`rules.errors.RuleError` naming it, and the book served stays."""
        holder, operations = self.engine.rules, self.operations
        if holder is None or operations is None:
            return False
        with self._rules_refresh:
            version = operations.store.version()
            if version == self._rules_served:
                return False
            holder.install(operations.store.current_rules(), operations.store.current_lists())
            self._rules_served = version
        self.metrics.rule_books.inc()
        return True

    def serve_rule_changes(self) -> None:
        """:meth:`refresh_rules` for the periodic check and after a change: a failure is logged and counted,
        the book served stays, and the next check tries again."""
        try:
            self.refresh_rules()
        except Exception:
            logger.exception("the rules store's changes could not be served; the rules served stay")
            self.metrics.count_error("rules_refresh")

    def reload_rules(self) -> int | None:
        """Read the rules file again (if there is one) and serve the store's rules; how many rules are
        enabled (None without a store)."""
        self.load_rules_file("on reload")
        self.refresh_rules()
        return (
            None if self.engine.rules is None or self.operations is None else len(self.engine.rules.current)
        )

    def ready(self) -> dict[str, bool]:
        pair = self.engine.holder.current
        checks = {"fraud_model": pair.fraud is not None, "failure_model": pair.failure is not None}
        checks["decision_log"] = self.engine.log.ping()
        checks["online_store"] = _store_alive(self.store)
        if self.write_behind is not None:
            checks["write_behind"] = not self.write_behind.failing
        return checks

    def close(self) -> None:
        if self.listener is not None:
            self.listener.stop()
        if self.expiry is not None:
            self.expiry.stop()
        if self.deliverer is not None:
            self.deliverer.stop()
        if self.write_behind is not None:
            self.write_behind.close()  # the last flush: SQLite holds everything, the journal is empty
        for checkpointer in self._checkpointers:
            checkpointer.stop()
        self.engine.log.close()
        if self.review is not None:
            self.review.cases.close()
        if self.engine.billing is not None:
            self.engine.billing.close()
        if self.store is not None:
            self.store.close()
        if self.outbox is not None:
            self.outbox.close()
        if self.operations is not None:
            self.operations.store.close()
        if self.journal_lock is not None:
            os.close(self.journal_lock)
        if self.database is not None:
            self.database.close()  # last: the stores above may use it while closing


def _describe(results: list[LoadResult]) -> str:
    return ", ".join(
        f"{r.task}={'none' if r.model is None else f'{r.model.name}/{r.model.version} ({r.model.source})'}"
        for r in results
    )


def journal_dir(settings: Settings) -> Path:
    """Where the service keeps its journal (and the lock that keeps writers of the state directory apart)."""
    return settings.state_dir / "journal"


def _store_alive(store: Any) -> bool:
    if store is None:
        return True
    backend = (
        store.inner if isinstance(store, WriteBehindStore) else store
    )  # the cache would answer from memory
    try:
        backend.get_many(["rg:readiness-probe"])
    except Exception:  # any failure means: not ready
        logger.exception("online store readiness probe failed")
        return False
    return True


def open_store(settings: Settings, write_behind: bool = False) -> Any:
    """The online store the settings name: SQLite in the state directory (behind a write-behind cache with
    ``write_behind``: only for the service, which holds the journal), or Redis at a redis:// URL."""
    if settings.online_store.startswith(("redis://", "rediss://", "unix://")):
        from features.stores.redis import RedisStore  # noqa: PLC0415

        return RedisStore(settings.online_store)
    if settings.online_store != "sqlite":
        from serving.errors import ConfigurationError  # noqa: PLC0415

        raise ConfigurationError(
            f"RISKGATE_ONLINE_STORE={settings.online_store!r}: use 'sqlite' or a redis:// URL"
        )
    from features.stores.sqlite import SQLiteStore  # noqa: PLC0415

    path = settings.state_dir / "online.sqlite"
    if write_behind:
        return WriteBehindStore(SQLiteStore(path), writer=SQLiteStore(path))
    return SQLiteStore(path)


def build_service(settings: Settings, features: FeatureSource | None = None, store: Any = None) -> Service:
    """Build the service from the settings (models are loaded by :meth:`Service.reload` at start-up)."""
    from features.online import OnlineEngine  # noqa: PLC0415
    from features.registry import load_feature_set  # noqa: PLC0415
    from features.stores.memory import MemoryStore  # noqa: PLC0415
    from rules.schema import schema_for  # noqa: PLC0415

    check_production_secrets(settings)
    feature_set = load_feature_set(settings.feature_set)
    database = open_database(settings)
    directory = journal_dir(settings)
    # PostgreSQL: no journal (it is per instance; one decision per attempt is settled by the shared database
    # when answering), each decision committed before its answer
    local = settings.write_behind and database is None
    journal = Journal(directory, settings.decision_log_sync == "FULL") if local else None
    journal_lock = None if journal is not None or database is not None else shared_lock(directory)
    if features is None:
        store = open_store(settings, write_behind=journal is not None)
        features = OnlineEngine(store, feature_set)
    log = _decision_log(settings, database, journal)
    metrics = ServiceMetrics()
    pseudonymise = Pseudonymiser(settings.pseudonym_secret.get_secret_value())
    billing = _billing_gate(settings, pseudonymise, metrics, database)
    rules = RuleBookHolder(
        schema_for(feature_set),
        feature_set.fields,
        on_error=lambda _: metrics.count_error("rule_value"),
        builtin=BUILTIN_RULES if billing is not None else (),
    )
    operations = _operations(settings, feature_set, database)
    outbox = _outbox(settings, database)
    deliverer = Deliverer.from_settings(outbox, settings) if settings.webhooks else None
    behind = None
    if journal is not None:
        buffered = store if isinstance(store, WriteBehindStore) else None
        failed = partial(metrics.count_error, "write_behind")
        behind = WriteBehind(journal, log, buffered, settings.write_behind_ms / 1000, on_failure=failed)
    review = ReviewDesk(
        _review_cases(settings, database),
        metrics,
        flush=(lambda: None) if behind is None else behind.flush,
        claim_for=timedelta(minutes=settings.review_claim_minutes),
        outbox=outbox if deliverer is not None else None,
        report_online=features.record_report,
    )
    engine = ScoringEngine(
        features=features,
        feature_names=feature_set.names,
        holder=ModelHolder(),
        log=log,
        pseudonymise=pseudonymise,
        overrides=ThresholdOverrides(
            settings.fraud_elevated_threshold,
            settings.fraud_highest_threshold,
            settings.failure_defer_threshold,
        ),
        metrics=metrics,
        flush=None if behind is None else behind.flush,
        fields=feature_set.fields,
        rules=rules,
        outbox=outbox if deliverer is not None else None,  # no endpoint: no event is kept
        review=review,
        billing=billing,
    )
    loader = ModelLoader(
        settings.tracking_uri,
        settings.state_dir / "models",
        feature_set.names,
        feature_set.hash,
        alias=settings.model_alias,
        registry_uri=settings.registry_uri,
    )
    limits = Limits(
        settings.max_batch,
        settings.max_body_bytes,
        settings.model_reload_seconds,
        settings.rules_poll_seconds,
    )
    files = [log.path] if isinstance(log, DecisionLog) else []
    files += [outbox.path] if isinstance(outbox, SQLiteOutbox) else []
    files += [Path(store.path)] if hasattr(store, "path") else []
    if billing is not None and billing.store.path is not None:
        files.append(billing.store.path)
    scratch = OnlineEngine(MemoryStore(), feature_set)
    service = Service(
        engine,
        loader,
        KeyRing(settings.api_keys),
        limits,
        store,
        metrics,
        files,
        scratch,
        behind,
        journal_lock,
        settings.recovery_config,
        operations,
        settings.rules_file,
        outbox,
        deliverer,
        review,
        ExpiryJob(review, read_expiry(settings.review_expiry), settings.review_expiry_check_seconds),
        database,
    )
    service.load_rules_file("at start-up")  # refused here, before anything starts, when the file is bad
    service.refresh_rules()
    operations.on_change = service.serve_rule_changes  # a change made here is served when its call answers
    return service


def open_database(settings: Settings) -> Database | None:
    """The PostgreSQL pool of ``RISKGATE_DATABASE_URL`` once its schema is checked (None: unset, the SQLite
    files under the state directory)."""
    if settings.database_url is None:
        return None
    from serving.store.postgres.schema import open_checked  # noqa: PLC0415 (SQLite needs no driver)

    return open_checked(settings.database_url.get_secret_value(), settings.database_pool_size)


def _decision_log(settings: Settings, database: Database | None, journal: Journal | None) -> DecisionStore:
    """The decision log: PostgreSQL's with a database (shared by the fleet), else the state directory's."""
    if database is None:
        path = settings.state_dir / "decisions.sqlite"
        return DecisionLog(path, settings.decision_log_sync, journal=journal)
    from serving.store.postgres.decisions import PostgresDecisions  # noqa: PLC0415 (SQLite needs no driver)

    return PostgresDecisions(database)


def _outbox(settings: Settings, database: Database | None) -> Outbox:
    """The webhook outbox: ``STATE_DIR/outbox.sqlite``, or with a database its tables (the fleet's one)."""
    if database is None:
        return SQLiteOutbox(settings.state_dir / "outbox.sqlite", settings.decision_log_sync)
    from serving.store.postgres.outbox import PostgresOutbox  # noqa: PLC0415

    return PostgresOutbox(database)


def _operations(settings: Settings, feature_set: FeatureSet, database: Database | None) -> Operations:
    """The rules and lists every instance serves: in PostgreSQL with a database, else in the state
    directory's SQLite file."""
    if database is None:
        return open_operations(settings.state_dir, feature_set)
    from serving.store.postgres.operations import PostgresOperations  # noqa: PLC0415

    return Operations(PostgresOperations(database, feature_set.fields), feature_set)


def _review_cases(settings: Settings, database: Database | None) -> CaseStore:
    """The review queue, beside the decisions it reads: in PostgreSQL with a database, else in the state
    directory's decision log file."""
    if database is None:
        return SQLiteCases(settings.state_dir / "decisions.sqlite")
    from serving.store.postgres.cases import PostgresCases  # noqa: PLC0415

    return PostgresCases(database)


def _billing_gate(
    settings: Settings, pseudonymise: Pseudonymiser, metrics: ServiceMetrics, database: Database | None
) -> BillingGate | None:
    """The billing checks over ``STATE_DIR/billing.sqlite`` (or the database's tables, the fleet's one) and
    the catalogue the settings name (None: turned off by ``RISKGATE_BILLING_CHECKS=false``); a catalogue
    that cannot be read stops the service starting."""
    if not settings.billing_checks:
        return None
    from billing.catalogue import read_catalogue  # noqa: PLC0415

    catalogue = None if settings.catalogue_file is None else read_catalogue(settings.catalogue_file)
    store: BillingStore
    if database is None:
        from serving.store.billing_sqlite import SQLiteBillingStore  # noqa: PLC0415

        store = SQLiteBillingStore(settings.state_dir / "billing.sqlite", settings.decision_log_sync)
    else:
        from serving.store.postgres.billing import PostgresBillingStore  # noqa: PLC0415

        store = PostgresBillingStore(database)
    return BillingGate(store, catalogue, pseudonymise, on_error=partial(metrics.count_error, "billing"))
