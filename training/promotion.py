"""The promotion gate: move ``@champion`` to the newest version only if it beats the champion.

"Beats" means a primary metric (config ``promotion.*_metric``) higher by more than ``min_improvement`` on the
*same test window*. When both versions were evaluated on the same window (same bounds, data end and
labelled attempts, recorded as a version tag at training time), their logged metrics are compared. Otherwise
both are re-scored on the current data's test window by ``rescore``. A champion whose feature set no longer
matches the code cannot be served, so any candidate replaces it (and the decision says so).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

from registry.errors import FeatureContractError
from registry.names import CHAMPION, FEATURE_HASH_TAG, MODEL_NAMES, PRIMARY_METRIC_TAG, TEST_WINDOW_TAG
from registry.store import latest_version, version_by_alias
from training.config import Task, TrainingConfig

logger = logging.getLogger(__name__)

#: Re-score a model URI on the current data's test window: returns (window key, primary metric).
Rescorer = Callable[[str], tuple[str, float]]


@dataclass(frozen=True)
class PromotionDecision:
    """What the gate did and why, for one registered model."""

    name: str
    candidate: str
    champion: str | None
    promoted: bool
    reason: str

    def __str__(self) -> str:
        verdict = "promoted" if self.promoted else "kept"
        subject = f"version {self.candidate}" if self.promoted else f"champion {self.champion}"
        return f"{self.name}: {verdict} {subject} — {self.reason}"


def _logged_metric(version: ModelVersion, metric: str) -> float | None:
    raw = version.tags.get(PRIMARY_METRIC_TAG)
    if raw is None:
        return None
    value = json.loads(raw).get(metric)
    return None if value is None else float(value)


def _scores_on_same_window(
    candidate: ModelVersion, champion: ModelVersion, name: str, metric: str, rescore: Rescorer | None
) -> tuple[float, float, str]:
    """Both versions' primary metric on one test window, and a description of that window."""
    window = candidate.tags.get(TEST_WINDOW_TAG)
    logged = (_logged_metric(candidate, metric), _logged_metric(champion, metric))
    if window is not None and window == champion.tags.get(TEST_WINDOW_TAG):
        ours, theirs = logged
        if ours is not None and theirs is not None:
            return ours, theirs, f"test window {window} (logged at training)"
    if rescore is None:
        raise FeatureContractError(
            f"{name} versions {candidate.version} and {champion.version} were evaluated on different test "
            "windows and no data was given to re-score them: run `riskgate promote` with the data directory"
        )
    candidate_window, candidate_score = rescore(f"models:/{name}/{candidate.version}")
    _, champion_score = rescore(f"models:/{name}/{champion.version}")
    return candidate_score, champion_score, f"test window {candidate_window} (both re-scored)"


def promote(
    client: MlflowClient,
    task: Task,
    config: TrainingConfig,
    rescore: Rescorer | None = None,
    feature_hash: str | None = None,
) -> PromotionDecision:
    """Apply the gate to the newest version of ``task``'s model; set ``@champion`` when it passes.

    ``feature_hash`` is the current code's feature-set hash, when known: a champion trained on another
    feature set cannot be served, so a candidate on the current one replaces it.
    """
    return promote_model(
        client,
        MODEL_NAMES[task],
        config.primary_metric(task),
        config.promotion.min_improvement,
        rescore,
        feature_hash=feature_hash,
    )


def promote_model(
    client: MlflowClient,
    name: str,
    metric: str,
    min_improvement: float,
    rescore: Rescorer | None = None,
    *,
    feature_hash: str | None = None,
) -> PromotionDecision:
    """The gate for any registered model whose versions carry the training tags (:mod:`registry.names`):
    ``metric`` higher by more than ``min_improvement`` on the same test window; ``feature_hash`` is the code's
    hash of the model's inputs (a champion of another one cannot be served)."""
    candidate = latest_version(client, name)
    champion = version_by_alias(client, name, CHAMPION)

    def decide(promoted: bool, reason: str) -> PromotionDecision:
        if promoted:
            client.set_registered_model_alias(name, CHAMPION, candidate.version)
        decision = PromotionDecision(
            name,
            str(candidate.version),
            None if champion is None else str(champion.version),
            promoted,
            reason,
        )
        logger.info("%s", decision)
        return decision

    if champion is None:
        return decide(True, "there is no champion yet")
    if champion.version == candidate.version:
        return decide(False, f"version {candidate.version} is already the champion (newest version)")
    champion_hash = champion.tags.get(FEATURE_HASH_TAG)
    if feature_hash is not None and champion_hash != feature_hash == candidate.tags.get(FEATURE_HASH_TAG):
        return decide(
            True,
            f"the champion v{champion.version} uses feature set {champion_hash}, the code now defines "
            f"{feature_hash}: it cannot be served, and version {candidate.version} matches the code",
        )
    try:
        ours, theirs, window = _scores_on_same_window(candidate, champion, name, metric, rescore)
    except FeatureContractError as error:
        if rescore is None:
            raise
        return decide(True, f"the champion cannot score the current features ({error}); it cannot be served")
    margin = ours - theirs
    comparison = (
        f"{metric} {ours:.4f} vs champion v{champion.version} {theirs:.4f} "
        f"(difference {margin:+.4f}, required > {min_improvement:g}) on {window}"
    )
    if margin > min_improvement:
        return decide(True, f"version {candidate.version} beats the champion: {comparison}")
    return decide(False, f"version {candidate.version} does not beat the champion: {comparison}")
