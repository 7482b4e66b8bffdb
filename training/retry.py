"""The retry model as a versioned model: trained, evaluated, logged and registered as ``riskgate-retry``.

:class:`recovery.learned.RetryModel` scores the planner's candidate retry times (issue 7). Here it gets what
the two LightGBM models get (:mod:`training.pipeline`, :mod:`training.tracking`, :mod:`training.promotion`):

* **the failure model's time split with its own test window** (:func:`retry_split`: laid back from the end
  of the same data, no label delay, ``retry.test_days`` long, ~3 months by default where the LightGBM models
  hold out 28 days: the recovery evaluation of the served model needs declined renewals whose whole dunning
  window lies after the model's training data, and 28 days leave too few for a stable figure). The model is
  fitted on the observed attempts that follow a decline *before the test window* (a logistic model needs no
  early stopping) and evaluated on those *inside* it, so the test window stays honest;
* **metrics** of retry outcomes on the test window: log loss, mean log-likelihood (the promotion metric,
  higher is better), Brier, ROC AUC of failure, reliability (ECE); next to a timing-blind baseline (the
  failure rate per decline family and retry number in training: what a fixed schedule assumes), riskgate's
  LightGBM failure model on the same attempts when it was trained in the same run, and the simulator's truth
  when the data has it;
* **one MLflow run** in the project's experiment: params (data window, design hash, rows), metrics, the
  report, two plots (reliability; failure rate by days since the decline), the coefficients as an artifact,
  and the model as a pyfunc (:class:`registry.pyfunc.RetryPyfunc`, with signature and input example)
  registered as ``riskgate-retry`` with the tags the promotion gate reads (test window, design hash, primary
  metric) and ``trained_until`` (the end of its training data: the recovery evaluation refuses a model that
  saw its period);
* the model's stored form (its artifact, the pyfunc, reading it back) is the registry's
  (:mod:`registry.retry`, :mod:`registry.pyfunc`, :func:`registry.store.load_retry_model`), which serving
  reads through;
* **the same gate** (:func:`training.promotion.promote_model`), re-scoring both versions on the current data
  when their test windows differ.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import mlflow
import numpy as np
import numpy.typing as npt
import pandas as pd
from mlflow import MlflowClient
from mlflow.models import infer_signature
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from events.io import EventTableMissingError, read_events, read_table
from events.schema import DECLINE_CODES, EventKind
from recovery.learned import (
    RETRY_DESIGN_HASH,
    RetryModel,
    RetryModelFormatError,
    observed_attempts,
    retry_history,
)
from registry.errors import FeatureContractError, RegistryError
from registry.names import (
    FEATURE_HASH_TAG,
    PRIMARY_METRIC_TAG,
    RETRY_MODEL_NAME,
    TASK_TAG,
    TEST_WINDOW_TAG,
    TRAINED_UNTIL_TAG,
)
from registry.pyfunc import RetryPyfunc
from registry.retry import MODEL_ARTIFACT, MODEL_FILE, SIGNATURE_COLUMNS
from registry.store import ensure_experiment, load_retry_model, tracking_store
from training.config import TrainingConfig
from training.errors import DatasetError, SplitError
from training.evaluation import flatten
from training.metrics import reliability
from training.plots import _pyplot, close
from training.promotion import PromotionDecision, Rescorer, promote_model
from training.splits import SplitPlan, plan_split
from training.tracking import INPUT_EXAMPLE_ROWS, LoggedModel, test_window_key

logger = logging.getLogger(__name__)

#: Mean log-likelihood of the test window's retry outcomes per attempt (= −log loss): higher is better.
PRIMARY_METRIC: Final = "log_likelihood"
_FAMILY_OF: Final = {code.value: rule.family.value for code, rule in DECLINE_CODES.items()}

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]
#: riskgate's LightGBM failure model's probabilities of the test rows (None when it cannot score them all).
ReferenceScorer = Callable[["RetryData"], FloatArray | None]


# -- data ----------------------------------------------------------------------------------------------------


def retry_split(occurred_at: pd.Series, reported_at: pd.Series, config: TrainingConfig) -> SplitPlan:
    """The failure model's split of the same data (:func:`training.dataset.task_data`: no label delay, data
    ending at the latest attempt or fraud report, test window ending at the last attempt), with the retry
    model's test window (``retry.test_days``)."""
    as_of = occurred_at.max() if reported_at.dropna().empty else max(occurred_at.max(), reported_at.max())
    # its own window by length, whatever dates the LightGBM models' test window was given
    split = config.split.model_copy(
        update={"test_days": config.retry.test_days, "test_start": None, "test_end": None}
    )
    return plan_split(
        occurred_at.min(), pd.Timestamp(as_of), pd.Timedelta(0), split, last_attempt=occurred_at.max()
    )


@dataclass(frozen=True)
class RetryData:
    """The retry model's rows: attempts that follow a decline, before the test window and inside it."""

    plan: SplitPlan
    train: pd.DataFrame
    train_failed: BoolArray
    test: pd.DataFrame
    test_failed: BoolArray
    truth: FloatArray | None = None  # the simulator's p_fail of the test rows, when the data has it

    @property
    def trained_until(self) -> pd.Timestamp:
        return self.plan.test.start

    @property
    def window_key(self) -> str:
        return test_window_key(self.plan.to_params(), float(self.test_failed.sum()), len(self.test_failed))


def retry_data(data_dir: Path, config: TrainingConfig) -> RetryData:
    """Split ``data_dir``'s observed retries like the failure model's attempts (see the module docstring)."""
    frame = observed_attempts(data_dir)
    reports = read_events(data_dir, EventKind.FRAUD_REPORTS, columns=["reported_at"])
    plan = retry_split(frame["occurred_at"], pd.to_datetime(reports["reported_at"], utc=True), config)
    train, train_failed = retry_history(frame, plan.test.start, since=plan.train.start)
    test, test_failed = retry_history(frame, plan.test.end, since=plan.test.start)
    for part, failed in (("training (before the test window)", train_failed), ("test", test_failed)):
        if len(np.unique(failed)) < 2:
            raise DatasetError(
                f"the retry model's {part} rows in {data_dir} hold {len(failed)} attempts after a decline, "
                f"{int(failed.sum())} of them declined: it needs both outcomes; simulate or import a longer "
                "history, or change retry.test_days"
            )
    return RetryData(plan, train, train_failed, test, test_failed, _truth_of(data_dir, test))


def _truth_of(data_dir: Path, rows: pd.DataFrame) -> FloatArray | None:
    try:
        truth = read_table(data_dir, "truth").to_pandas()
    except EventTableMissingError:
        return None
    p_fail = rows["attempt_id"].map(truth.set_index("attempt_id")["p_fail"])
    return None if p_fail.isna().any() else p_fail.to_numpy(np.float64)


# -- evaluation ----------------------------------------------------------------------------------------------


def outcome_metrics(p_fail: FloatArray, failed: BoolArray) -> dict[str, float]:
    """How well failure probabilities of retries match their outcomes."""
    labels = failed.astype(np.float64)
    p = np.clip(p_fail, 1e-6, 1.0 - 1e-6)
    loss = float(log_loss(labels, p, labels=[0.0, 1.0]))
    return {
        "log_loss": loss,
        PRIMARY_METRIC: -loss,
        "brier": float(brier_score_loss(labels, p)),
        "roc_auc": float(roc_auc_score(labels, p)),
        "ece": reliability(p, labels).ece,
        "failure_rate": float(labels.mean()),
        "mean_score": float(p.mean()),
        "attempts": float(len(labels)),
    }


class TimingBlindBaseline:
    """The failure rate per decline family and retry number (capped at 4) in training, whenever the retry is
    made: what a fixed retry schedule assumes. Unseen groups get the overall rate."""

    def fit(self, rows: pd.DataFrame, failed: BoolArray) -> TimingBlindBaseline:
        keys = self._keys(rows)
        frame = pd.DataFrame({"key": keys, "failed": failed.astype(float)})
        self.rates_ = {str(k): float(v) for k, v in frame.groupby("key")["failed"].mean().items()}
        self.overall_ = float(failed.mean())
        return self

    def __call__(self, rows: pd.DataFrame) -> FloatArray:
        keys = self._keys(rows)
        return np.array([self.rates_.get(key, self.overall_) for key in keys], dtype=np.float64)

    @staticmethod
    def _keys(rows: pd.DataFrame) -> list[str]:
        families = rows["last_decline_code"].map(_FAMILY_OF).fillna("none")
        numbers = rows["retry_number"].clip(upper=4).astype(int).astype(str)
        return list(families + "/" + numbers)


def evaluate_retry_model(
    model: RetryModel, data: RetryData, reference: FloatArray | None = None
) -> dict[str, dict[str, float]]:
    """Test-window metrics of the model, the timing-blind baseline, and (when given) the LightGBM failure
    model's and the truth's scores of the same attempts."""
    scores = _scores(model, data, reference)
    return {name: outcome_metrics(values, data.test_failed) for name, values in scores.items()}


def _scores(model: RetryModel, data: RetryData, reference: FloatArray | None) -> dict[str, FloatArray]:
    scores = {
        "model": model(data.test),
        "baseline": TimingBlindBaseline().fit(data.train, data.train_failed)(data.test),
    }
    if reference is not None:
        scores["failure_model"] = reference
    if data.truth is not None:
        scores["truth"] = data.truth
    return scores


def format_retry_report(title: str, report: dict[str, dict[str, float]]) -> str:
    """A Markdown table of the retry outcomes' metrics per scorer."""
    scorers = [name for name in ("model", "baseline", "failure_model", "truth") if name in report]
    lines = [
        f"### {title}",
        "",
        "| metric | " + " | ".join(scorers) + " |",
        "|---" * (len(scorers) + 1) + "|",
    ]
    for metric in ("log_loss", "brier", "roc_auc", "ece", "failure_rate", "mean_score", "attempts"):
        cells = " | ".join(f"{report[name][metric]:.4f}" for name in scorers)
        lines.append(f"| {metric} | {cells} |")
    return "\n".join(lines)


# -- figures -------------------------------------------------------------------------------------------------


def retry_figures(data: RetryData, scores: dict[str, FloatArray]) -> dict[str, Any]:
    """Reliability of each scorer, and failure rate vs days since the decline (observed and predicted)."""
    plt = _pyplot()
    labels = data.test_failed.astype(np.float64)
    figures: dict[str, Any] = {}
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, values in scores.items():
        curve = reliability(values, labels, bins=15)
        ax.plot(curve.predicted, curve.observed, "o-", label=f"{name} (ECE {curve.ece:.4f})")
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set(
        xlabel="predicted failure probability", ylabel="observed failure rate", title="Retry outcomes, test"
    )
    ax.legend()
    figures["calibration.png"] = fig

    days = (data.test["occurred_at"] - data.test["last_declined_at"]).dt.total_seconds() / 86_400.0
    bins = pd.cut(days, [0, 1, 2, 3, 5, 7, 10, 14, 21, 35, 60], include_lowest=True)
    fig, ax = plt.subplots(figsize=(7, 4))
    observed = pd.Series(labels).groupby(bins.to_numpy(), observed=True).mean()
    ax.plot(range(len(observed)), observed.to_numpy(), "ko-", label="observed")
    for name, values in scores.items():
        mean = pd.Series(values).groupby(bins.to_numpy(), observed=True).mean()
        ax.plot(range(len(mean)), mean.to_numpy(), ".--", label=name)
    ax.set_xticks(range(len(observed)), [str(b) for b in observed.index], rotation=45, fontsize=7)
    ax.set(
        xlabel="days since the decline", ylabel="failure rate", title="Retry failure by time since decline"
    )
    ax.legend()
    fig.tight_layout()
    figures["failure_by_days_since_decline.png"] = fig
    return figures


# -- training, logging, registration -------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryTrainResult:
    logged: LoggedModel
    report: dict[str, dict[str, float]]
    trained_until: pd.Timestamp
    seconds: float


def train_retry_model(
    data_dir: Path,
    config: TrainingConfig,
    *,
    tracking_uri: str,
    artifact_root: Path | None,
    registry_uri: str | None = None,
    reference: ReferenceScorer | None = None,
) -> RetryTrainResult:
    """Fit the retry model before the test window, evaluate it inside, log the run, register a version."""
    started = time.perf_counter()
    data = retry_data(data_dir, config)
    model = RetryModel().fit(data.train, data.train_failed)
    model.info_ = _info(data)
    reference_scores = None if reference is None else reference(data)
    scores = _scores(model, data, reference_scores)
    report = {name: outcome_metrics(values, data.test_failed) for name, values in scores.items()}
    with tracking_store(tracking_uri, registry_uri) as client:
        experiment_id = ensure_experiment(client, config.experiment, artifact_root)
        logged = _log_run(model, data, report, scores, config=config, experiment_id=experiment_id)
        _tag_version(client, logged, data, report)
    logger.info("retry model: %s", {k: round(v, 4) for k, v in report["model"].items()})
    return RetryTrainResult(logged, report, data.trained_until, time.perf_counter() - started)


def _info(data: RetryData) -> dict[str, str]:
    return {
        "trained_from": data.plan.train.start.isoformat(),
        TRAINED_UNTIL_TAG: data.trained_until.isoformat(),
        "test_window": data.window_key,
    }


def _log_run(
    model: RetryModel,
    data: RetryData,
    report: dict[str, dict[str, float]],
    scores: dict[str, FloatArray],
    *,
    config: TrainingConfig,
    experiment_id: str,
) -> LoggedModel:
    with mlflow.start_run(experiment_id=experiment_id, run_name="retry-train") as run:
        mlflow.set_tags({TASK_TAG: "retry", FEATURE_HASH_TAG: RETRY_DESIGN_HASH})
        mlflow.log_params(
            {
                **data.plan.to_params(),
                "seed": str(config.seed),
                "regularisation": f"{model.regularisation:g}",
                "design_hash": RETRY_DESIGN_HASH,
                "n_columns": str(len(model.coef_)),
                "rows_train": str(len(data.train)),
                "rows_test": str(len(data.test)),
                TRAINED_UNTIL_TAG: data.trained_until.isoformat(),
            }
        )
        mlflow.log_metrics(flatten(report))
        mlflow.log_dict(report, "report/test_report.json")
        mlflow.log_text(model.coefficients().to_csv(index=False), "model_coefficients/coefficients.csv")
        figures = retry_figures(data, scores)
        try:
            for file_name, figure in figures.items():
                mlflow.log_figure(figure, f"plots/{file_name}")
        finally:
            close(figures)
        info = _log_model(model, data)
    version = info.registered_model_version
    if version is None:
        raise RegistryError(f"MLflow did not register {RETRY_MODEL_NAME} for run {run.info.run_id}")
    return LoggedModel(run.info.run_id, RETRY_MODEL_NAME, str(version))


def _log_model(model: RetryModel, data: RetryData) -> Any:
    example = input_example(data.test)
    with tempfile.TemporaryDirectory(prefix="riskgate-retry-") as scratch:
        path = model.save(Path(scratch) / MODEL_FILE)
        output = pd.DataFrame({"probability": model(example)})
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=RetryPyfunc(),
            artifacts={MODEL_ARTIFACT: str(path)},
            signature=infer_signature(example, output),
            input_example=example,
            registered_model_name=RETRY_MODEL_NAME,
            pip_requirements=[
                f"mlflow=={mlflow.__version__}",
                f"numpy=={np.__version__}",
                f"pandas=={pd.__version__}",
            ],
        )


def input_example(rows: pd.DataFrame) -> pd.DataFrame:
    """A few rows in the pyfunc's columns, times as naive UTC (MLflow's datetime type), the retry number as a
    double, and a method without card funding when there is one (so the signature marks it optional)."""
    no_funding = rows[rows["card_funding"].isna()].head(1)
    chosen = pd.concat([rows.head(INPUT_EXAMPLE_ROWS - len(no_funding)), no_funding])
    example = chosen[list(SIGNATURE_COLUMNS)].copy()
    for column in ("occurred_at", "last_declined_at"):
        example[column] = pd.to_datetime(example[column], utc=True).dt.tz_convert(None)
    example["retry_number"] = example["retry_number"].astype(np.float64)
    return example.reset_index(drop=True)


def _tag_version(
    client: MlflowClient, logged: LoggedModel, data: RetryData, report: dict[str, dict[str, float]]
) -> None:
    tags = {
        TEST_WINDOW_TAG: data.window_key,
        FEATURE_HASH_TAG: RETRY_DESIGN_HASH,
        PRIMARY_METRIC_TAG: json.dumps({PRIMARY_METRIC: report["model"][PRIMARY_METRIC]}),
        TRAINED_UNTIL_TAG: data.trained_until.isoformat(),
    }
    for key, value in tags.items():
        client.set_model_version_tag(logged.name, logged.version, key, value)
    logger.info("registered %s version %s (run %s)", logged.name, logged.version, logged.run_id)


# -- promotion -----------------------------------------------------------------------------------------------


def promote_retry_model(
    config: TrainingConfig, *, tracking_uri: str, data_dir: Path | None, registry_uri: str | None = None
) -> PromotionDecision:
    """The promotion gate on ``riskgate-retry``: the newest version's log-likelihood against the champion's
    on the same test window (both re-scored on ``data_dir``'s when their windows differ)."""
    with tracking_store(tracking_uri, registry_uri) as client:
        rescore = None if data_dir is None else _retry_rescorer(client, data_dir, config)
        return promote_model(
            client,
            RETRY_MODEL_NAME,
            PRIMARY_METRIC,
            config.promotion.min_improvement,
            rescore,
            feature_hash=RETRY_DESIGN_HASH,
        )


def _retry_rescorer(client: MlflowClient, data_dir: Path, config: TrainingConfig) -> Rescorer:
    loaded: list[RetryData] = []

    def rescore(model_uri: str) -> tuple[str, float]:
        if not loaded:
            loaded.append(retry_data(data_dir, config))
        data = loaded[0]
        try:
            model = load_retry_model(client, model_uri)
        except RetryModelFormatError as error:  # the gate's "cannot be served"
            raise FeatureContractError(str(error)) from error
        trained_until = pd.Timestamp(model.info_.get(TRAINED_UNTIL_TAG, data.plan.test.start.isoformat()))
        if trained_until > data.plan.test.start:
            raise SplitError(
                f"{model_uri} learned from retries until {trained_until:%Y-%m-%d %H:%M}, inside the test "
                f"window it would be judged on (from {data.plan.test.start:%Y-%m-%d %H:%M}, "
                f"retry.test_days={config.retry.test_days:g}): no honest comparison exists. Train with the "
                "champion's retry.test_days, or move the alias by hand (`make ui`) if the new window is "
                "meant to replace it"
            )
        return data.window_key, outcome_metrics(model(data.test), data.test_failed)[PRIMARY_METRIC]

    return rescore
