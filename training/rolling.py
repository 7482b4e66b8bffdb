"""Rolling evaluation: N consecutive test windows, a model trained and evaluated on each, none registered.

The last fold's test window is the configured one (``split.test_start`` / ``split.test_end``, else laid back
from the data's end by ``split.test_days``); each earlier fold's ends exactly where the next one starts and
is as long. Every fold lays its own gap, validation and train windows back from its test window with the same
``split`` settings, so the folds differ only by where they stand in time. The features are built once (the
caller's :class:`~training.data.Inputs`); each fold's model is searched, calibrated and evaluated as
``riskgate train`` does, next to the same baselines and truth.

MLflow: one parent run ``rolling-<N>-folds`` with the mean and the standard deviation over the folds of
every test metric of every scorer (``<task>_mean_test_model_roc_auc``, ``<task>_std_test_model_roc_auc``,
...), and one nested run per task and fold (``fraud-fold-1`` is the oldest) with its windows as params and
its whole test report as metrics and ``report/test_report.json``. No model is logged or registered.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np

from core.progress import NO_PROGRESS, Prefixed, Progress
from registry.store import ensure_experiment, tracking_store
from training.config import Task, TrainingConfig
from training.data import Inputs
from training.dataset import plan_for, task_data
from training.errors import ConfigError
from training.evaluation import flatten
from training.report import HEADLINE, format_number
from training.splits import SplitPlan
from training.trainer import train_task

logger = logging.getLogger(__name__)

Report = dict[str, dict[str, float]]


@dataclass(frozen=True)
class Fold:
    """One fold of one task: its windows and its test report."""

    task: Task
    number: int
    plan: SplitPlan
    report: Report


@dataclass(frozen=True)
class RollingResult:
    """The parent run and every fold, oldest first per task."""

    run_id: str
    folds: tuple[Fold, ...]

    def of(self, task: Task) -> list[Fold]:
        return [fold for fold in self.folds if fold.task is task]


def fold_configs(inputs: Inputs, task: Task, config: TrainingConfig, folds: int) -> list[TrainingConfig]:
    """The config of each fold (oldest first): the configured test window last, earlier ones before it."""
    if folds < 1:
        raise ConfigError(f"--folds must be at least 1, got {folds}")
    last = plan_for(inputs.frame, task, config).test
    length = last.end - last.start
    configs = []
    for back in range(folds - 1, -1, -1):
        end = last.end - back * length
        split = config.split.model_copy(
            update={"test_start": (end - length).to_pydatetime(), "test_end": end.to_pydatetime()}
        )
        configs.append(config.model_copy(update={"split": split}))
    return configs


def summarise(reports: list[Report]) -> dict[str, Report]:
    """``{"mean": report, "std": report}`` over the folds' reports (the scorers and metrics all share)."""
    scorers = set.intersection(*(set(report) for report in reports))
    summary: dict[str, Report] = {"mean": {}, "std": {}}
    for scorer in sorted(scorers):
        metrics = set.intersection(*(set(report[scorer]) for report in reports))
        values = {name: np.array([report[scorer][name] for report in reports]) for name in sorted(metrics)}
        summary["mean"][scorer] = {name: float(v.mean()) for name, v in values.items()}
        summary["std"][scorer] = {
            name: float(v.std(ddof=1)) if len(v) > 1 else 0.0 for name, v in values.items()
        }
    return summary


def evaluate_rolling(
    inputs: Inputs,
    config: TrainingConfig,
    *,
    folds: int,
    tracking_uri: str,
    artifact_root: Path | None,
    tasks: tuple[Task, ...] = (Task.FRAUD, Task.FAILURE),
    progress: Progress = NO_PROGRESS,
) -> RollingResult:
    """Train and evaluate one model per task and fold; log the parent run and the nested fold runs.
    ``progress`` hears each fold's steps, prefixed with its task and number."""
    done: list[Fold] = []
    with tracking_store(tracking_uri) as client:
        experiment_id = ensure_experiment(client, config.experiment, artifact_root)
        with mlflow.start_run(experiment_id=experiment_id, run_name=f"rolling-{folds}-folds") as parent:
            mlflow.set_tags({"kind": "rolling-evaluation", "feature_set_hash": inputs.contract.hash})
            mlflow.log_params(
                {
                    "folds": str(folds),
                    "tasks": ",".join(task.value for task in tasks),
                    "feature_set_hash": inputs.contract.hash,
                    **inputs.provenance,
                    "config": json.dumps(config.model_dump(mode="json"), sort_keys=True)[:6000],
                }
            )
            for task in tasks:
                task_folds = [
                    _fold(inputs, task, fold_config, number, experiment_id, progress)
                    for number, fold_config in enumerate(fold_configs(inputs, task, config, folds), start=1)
                ]
                summary = summarise([fold.report for fold in task_folds])
                for statistic, report in summary.items():
                    mlflow.log_metrics(flatten(report, prefix=f"{task.value}_{statistic}_test"))
                mlflow.log_dict(summary, f"report/{task.value}_summary.json")
                done.extend(task_folds)
    return RollingResult(parent.info.run_id, tuple(done))


def _fold(  # noqa: PLR0917 (one fold's inputs)
    inputs: Inputs, task: Task, config: TrainingConfig, number: int, experiment_id: str, progress: Progress
) -> Fold:
    steps = Prefixed(progress, f"{task.value} fold {number}: ")
    steps.stage("windows")
    data = task_data(inputs.frame, task, inputs.contract, config)
    model = train_task(data, config, progress=steps)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"{task.value}-fold-{number}", nested=True):
        mlflow.set_tags({"task": task.value, "fold": str(number)})
        mlflow.log_params({**data.plan.to_params(), "fold": str(number)})
        mlflow.log_metrics({**flatten(model.report), **{f"data_{k}": v for k, v in data.counts.items()}})
        mlflow.log_dict(model.report, "report/test_report.json")
    logger.info("%s fold %d: test %s to %s", task.value, number, data.plan.test.start, data.plan.test.end)
    return Fold(task, number, data.plan, model.report)


def format_rolling(result: RollingResult, tasks: tuple[Task, ...]) -> str:
    """Per task, a Markdown table of the headline metrics of the model per fold, their mean and spread, and
    the baseline's mean when there is one."""
    texts = []
    for task in tasks:
        folds = result.of(task)
        summary = summarise([fold.report for fold in folds])
        windows = [f"fold {f.number}: test {f.plan.test.start} to {f.plan.test.end}" for f in folds]
        columns = [f"fold {fold.number}" for fold in folds] + ["mean", "std"]
        has_baseline = "baseline" in summary["mean"]
        columns += ["baseline mean"] if has_baseline else []
        lines = [
            f"### {task.value}: {len(folds)} folds (MLflow run {result.run_id}), model on each test window",
            "",
            *[f"- {window}" for window in windows],
            "",
            "| metric | " + " | ".join(columns) + " |",
            "|---" * (len(columns) + 1) + "|",
        ]
        for metric in HEADLINE:
            if metric not in summary["mean"]["model"]:
                continue
            cells = [fold.report["model"][metric] for fold in folds]
            cells += [summary["mean"]["model"][metric], summary["std"]["model"][metric]]
            cells += [summary["mean"]["baseline"][metric]] if has_baseline else []
            lines.append(f"| {metric} | " + " | ".join(format_number(value) for value in cells) + " |")
        texts.append("\n".join(lines))
    return "\n\n".join(texts)
