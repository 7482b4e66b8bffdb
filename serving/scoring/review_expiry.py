"""When open review cases expire, and how (``RISKGATE_REVIEW_EXPIRY``), and the background job that applies
it while the service runs.

The setting is YAML or JSON (a file's path, or the text itself starting with ``{``)::

    tenure_feature: account_attempts_since_first_days   # the feature that says how long the account is known
    rules:                                              # the first rule matching a case decides
      - kinds: [renewal, retry]                         # attempt kinds (omitted: any)
        min_tenure_days: 180                            # omitted: any tenure
        after_hours: 24
        outcome: approve
      - after_hours: 48
        outcome: decline

A case no rule matches never expires. An expired case is resolved by ``expiry`` with its rule's outcome
(``approve`` -> ``approved``, ``decline`` -> ``declined``) and emits ``review.resolved``; a case an analyst
holds waits until the claim lapses. Without the setting, :data:`DEFAULT_EXPIRY` applies (the example above:
renewals of subscribers known for half a year are approved after a day, everything else declined after two).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Final

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from events.schema import AttemptKind
from serving.errors import ConfigurationError
from serving.scoring.review import ReviewDesk
from serving.store.cases import Case, Outcome

logger = logging.getLogger(__name__)


class ExpiryOutcome(StrEnum):
    APPROVE = "approve"
    DECLINE = "decline"


#: The resolution an expired case gets.
OUTCOMES: Final = {ExpiryOutcome.APPROVE: Outcome.APPROVED, ExpiryOutcome.DECLINE: Outcome.DECLINED}


class ExpiryRule(BaseModel):
    """A segment of cases (kinds, tenure) and what becomes of them after ``after_hours`` open."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    after_hours: Annotated[float, Field(gt=0)]
    outcome: ExpiryOutcome
    kinds: tuple[AttemptKind, ...] = ()
    min_tenure_days: Annotated[float, Field(ge=0)] | None = None
    max_tenure_days: Annotated[float, Field(ge=0)] | None = None

    def matches(self, kind: str | None, tenure_days: float | None) -> bool:
        if self.kinds and kind not in self.kinds:
            return False
        if self.min_tenure_days is None and self.max_tenure_days is None:
            return True
        if tenure_days is None:  # unknown tenure (no features, erased): no tenure segment holds it
            return False
        low, high = self.min_tenure_days, self.max_tenure_days
        return (low is None or tenure_days >= low) and (high is None or tenure_days < high)


class ExpiryPolicy(BaseModel):
    """The expiry rules, the first matching a case deciding (see the module's docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: tuple[ExpiryRule, ...]
    tenure_feature: str = "account_attempts_since_first_days"

    def due(self, case: Case, now: datetime) -> tuple[Outcome, str] | None:
        """The outcome and note of ``case`` if it has expired at ``now``, else None."""
        tenure = _tenure(case, self.tenure_feature)
        for rule in self.rules:
            if rule.matches(case.kind, tenure):
                if case.opened_at + timedelta(hours=rule.after_hours) > now:
                    return None
                return OUTCOMES[rule.outcome], f"expired: open {rule.after_hours:g} h ({rule.outcome.value})"
        return None


#: The documented default: renewals and retries of subscribers known for at least 180 days are approved after
#: 24 hours; every other case is declined after 48 hours.
DEFAULT_EXPIRY: Final = ExpiryPolicy(
    rules=(
        ExpiryRule(
            after_hours=24,
            outcome=ExpiryOutcome.APPROVE,
            kinds=(AttemptKind.RENEWAL, AttemptKind.RETRY),
            min_tenure_days=180,
        ),
        ExpiryRule(after_hours=48, outcome=ExpiryOutcome.DECLINE),
    )
)


def _tenure(case: Case, feature: str) -> float | None:
    features = case.answer.get("features")
    value = features.get(feature) if isinstance(features, dict) else None
    return float(value) if isinstance(value, int | float) else None


def read_expiry(setting: str | None) -> ExpiryPolicy:
    """The policy ``RISKGATE_REVIEW_EXPIRY`` gives (a path or the YAML/JSON text), the default without it;
    :class:`ConfigurationError` naming what is wrong otherwise."""
    if setting is None:
        return DEFAULT_EXPIRY
    where = "RISKGATE_REVIEW_EXPIRY"
    text = setting
    if not setting.lstrip().startswith("{"):
        where = f"RISKGATE_REVIEW_EXPIRY file {setting}"
        try:
            text = Path(setting).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigurationError(f"{where}: cannot be read ({error})") from None
    try:
        document: Any = yaml.safe_load(text)
        return ExpiryPolicy.model_validate(document)
    except yaml.YAMLError as error:
        raise ConfigurationError(f"{where}: not YAML or JSON ({error})") from None
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or 'the document'}: {problem['msg']}"
            for problem in error.errors()
        )
        raise ConfigurationError(f"{where}: {problems} (see serving.scoring.review_expiry)") from None


#: How often the job keeps the values of newly opened cases (what a kill can lose of them).
KEEP_EVERY_S: Final = 1.0


class ExpiryJob:
    """The queue's background work while the service runs, in a thread, until :meth:`stop` (as the background
    checkpoints of :mod:`serving.store.upkeep` run): about every second, the values of newly opened cases are
    kept (:meth:`ReviewDesk.keep_pending`); every ``interval`` seconds, the policy is applied to the open
    cases. Stopping keeps what is held."""

    def __init__(self, desk: ReviewDesk, policy: ExpiryPolicy, interval: float) -> None:
        self.desk = desk
        self.policy = policy
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="review-queue", daemon=True)

    def start(self) -> ExpiryJob:
        self._thread.start()
        return self

    def run_once(self) -> int:
        """Resolve the cases expired now; how many."""
        resolved = self.desk.expire(self.policy.due)
        if resolved:
            logger.info("review queue: %d expired cases resolved", resolved)
        return resolved

    def _run(self) -> None:
        due = time.monotonic() + self.interval
        while not self._stop.wait(min(KEEP_EVERY_S, self.interval)):
            try:
                self.desk.keep_pending()
                if time.monotonic() >= due:
                    due = time.monotonic() + self.interval
                    self.run_once()
            except Exception:  # the next round tries again (held values stay held)
                self.desk.metrics.count_error("review")
                logger.exception("review queue upkeep failed; trying again")

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30.0)
        try:
            self.desk.keep_pending()
        except Exception:  # shutting down: say what is lost
            logger.exception("review queue: the values of newly opened cases were not kept")
