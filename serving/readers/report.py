"""A static HTML report of a decision log's period: the dashboard's charts as images, in one shareable file.

The figures come from the same functions as ``GET /v1/trends`` and ``GET /v1/drift``
(:func:`serving.readers.trends.trends`, :func:`serving.readers.drift.drift`); the charts are matplotlib PNGs
embedded as
base64, so the file needs nothing else to be read (no server, no network). Charts: attempts per bucket,
action shares, fraud and failure score quantiles, predicted against realised decline and fraud rates
(buckets whose fraud labels are not mature yet are shaded), money at risk, and the drift table coloured by
band.
"""

from __future__ import annotations

import base64
import html
import io
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

from core.urls import redact
from registry.names import TASKS
from serving.readers.drift import DriftModel, drift
from serving.readers.trends import ACTIONS, FALLBACK_FRAUD_MATURITY_DAYS, maturity_days, resolve_range, trends
from serving.store.base import epoch_us
from serving.store.sources import DecisionSource

logger = logging.getLogger(__name__)

ACTION_COLOURS: Final = {"approve": "#2e7d32", "review": "#f9a825", "block": "#c62828", "defer": "#1565c0"}
BAND_COLOURS: Final = {
    "stable": "#c8e6c9",
    "moderate": "#ffe082",
    "significant": "#ef9a9a",
    "insufficient_data": "#e0e0e0",
}
PREDICTED, REALISED = "#1565c0", "#c62828"
MAX_SEGMENT_LINES: Final = 8


@dataclass(frozen=True)
class ReportInput:
    """What a report shows: a log, a period, and the model versions whose drift it tables."""

    log: DecisionSource
    start: datetime | None = None
    end: datetime | None = None
    bucket: str = "day"
    segment: str = "none"
    drift_models: Mapping[str, DriftModel | None] | None = None  # None: no drift section
    drift_note: str = ""  # why a drift section is missing or partial
    fraud_maturity_days: float = FALLBACK_FRAUD_MATURITY_DAYS


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _times(points: Sequence[dict[str, Any]]) -> list[datetime]:
    return [datetime.fromisoformat(p["bucket_start"]) for p in points]


def _values(points: Sequence[dict[str, Any]], part: str, key: str) -> list[float]:
    return [float("nan") if p[part][key] is None else p[part][key] for p in points]


def _axes(figure: Figure, rows: int = 1) -> list[Any]:
    axes = [figure.add_subplot(rows, 1, i + 1) for i in range(rows)]
    for ax in axes:
        locator = AutoDateLocator()  # type: ignore[no-untyped-call]
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
        ax.grid(alpha=0.3)
    return axes


def volume_chart(points: Sequence[dict[str, Any]]) -> Figure:
    """Attempts per bucket, stacked by action, and each action's share."""
    figure = Figure(figsize=(10, 5.5))
    count_ax, share_ax = _axes(figure, 2)
    times = _times(points)
    width = _width(times)
    totals = [max(p["attempts"], 1) for p in points]
    bottom = [0.0] * len(points)
    share_bottom = [0.0] * len(points)
    for action in ACTIONS:
        counts = [float(p["actions"][action]) for p in points]
        shares = [c / t for c, t in zip(counts, totals, strict=True)]
        colour = ACTION_COLOURS[action]
        count_ax.bar(times, counts, width, bottom=bottom, color=colour, label=action, align="edge")
        share_ax.bar(times, shares, width, bottom=share_bottom, color=colour, align="edge")
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
        share_bottom = [b + s for b, s in zip(share_bottom, shares, strict=True)]
    count_ax.set(title="Attempts per bucket, by action", ylabel="attempts")
    count_ax.legend(loc="upper left", ncols=4, fontsize="small")
    share_ax.set(title="Action shares", ylabel="share", ylim=(0, 1))
    figure.tight_layout()
    return figure


def _width(times: Sequence[datetime]) -> float:
    """A bucket's width in days (matplotlib's date unit), from two consecutive bucket starts."""
    if len(times) < 2:
        return 1.0
    return (times[1] - times[0]).total_seconds() / 86_400


def quantile_chart(points: Sequence[dict[str, Any]]) -> Figure:
    """Mean, p50, p90 and p99 of both scores per bucket."""
    figure = Figure(figsize=(10, 5.5))
    times = _times(points)
    for ax, task in zip(_axes(figure, 2), ("fraud", "failure"), strict=True):
        for key, style in (("p99", ":"), ("p90", "--"), ("p50", "-"), ("mean", "-.")):
            ax.plot(times, _values(points, task, key), style, label=key)
        ax.set(title=f"{task.capitalize()} probability: quantiles per bucket", ylabel="probability")
        ax.legend(loc="upper left", ncols=4, fontsize="small")
    figure.tight_layout()
    return figure


def rates_chart(points: Sequence[dict[str, Any]], maturity_days: float) -> Figure:
    """Predicted against realised decline and fraud rates; buckets with immature fraud labels shaded."""
    figure = Figure(figsize=(10, 5.5))
    failure_ax, fraud_ax = _axes(figure, 2)
    times = _times(points)
    failure_ax.plot(times, _values(points, "failure", "predicted_rate"), color=PREDICTED, label="predicted")
    failure_ax.plot(times, _values(points, "failure", "realised_rate"), color=REALISED, label="realised")
    failure_ax.set(title="Decline rate: predicted vs realised (attempts with an outcome)", ylabel="rate")
    fraud_ax.plot(times, _values(points, "fraud", "predicted_rate"), color=PREDICTED, label="predicted")
    fraud_ax.plot(times, _values(points, "fraud", "realised_rate"), color=REALISED, label="realised")
    width = timedelta(days=_width(times))
    immature = [t for t, p in zip(times, points, strict=True) if not p["fraud"]["mature"]]
    for i, moment in enumerate(immature):
        label = "labels not mature" if i == 0 else None
        fraud_ax.axvspan(moment, moment + width, color="grey", alpha=0.15, lw=0, label=label)
    if len(immature) == len(points):
        fraud_ax.text(
            0.5, 0.5, "no bucket has mature fraud labels yet", transform=fraud_ax.transAxes, ha="center"
        )
    fraud_ax.set(
        title=f"Fraud rate: predicted vs reported (mature attempts: {maturity_days:g} days before as_of)",
        ylabel="rate",
    )
    for ax in (failure_ax, fraud_ax):
        ax.legend(loc="upper left", ncols=3, fontsize="small")
    figure.tight_layout()
    return figure


def money_chart(points: Sequence[dict[str, Any]]) -> Figure:
    """Money at risk per bucket (main currency only)."""
    figure = Figure(figsize=(10, 3))
    [ax] = _axes(figure)
    times = _times(points)
    currency = next((p["money_at_risk"]["currency"] for p in points if p["money_at_risk"]["currency"]), "")
    ax.plot(times, [p["money_at_risk"]["fraud"] for p in points], color=REALISED, label="fraud")
    ax.plot(times, [p["money_at_risk"]["failure"] for p in points], color=PREDICTED, label="failure")
    ax.set(title=f"Money at risk: sum(amount x probability), {currency or 'no amounts'}", ylabel=currency)
    ax.legend(loc="upper left", fontsize="small")
    figure.tight_layout()
    return figure


def segment_chart(result: dict[str, Any]) -> Figure:
    """Attempts and mean fraud probability of the biggest segment values."""
    figure = Figure(figsize=(10, 5.5))
    count_ax, fraud_ax = _axes(figure, 2)
    for series in result["series"][:MAX_SEGMENT_LINES]:
        label = str(series["segment_value"]) if series["segment_value"] is not None else "(none)"
        times = _times(series["points"])
        count_ax.plot(times, [p["attempts"] for p in series["points"]], label=label)
        fraud_ax.plot(times, _values(series["points"], "fraud", "mean"), label=label)
    count_ax.set(title=f"Attempts by {result['segment']}", ylabel="attempts")
    fraud_ax.set(title=f"Mean fraud probability by {result['segment']}", ylabel="probability")
    count_ax.legend(loc="upper left", ncols=4, fontsize="small")
    figure.tight_layout()
    return figure


def _psi_text(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def _drift_table(result: dict[str, Any] | None, note: str) -> str:
    if result is None:
        return f"<p class='note'>Drift not shown: {html.escape(note)}</p>"
    parts = []
    for table in result["models"]:
        title = f"{table['task']} — {table['model'] or 'no model'} (reference: {table['reference_window']})"
        if table["status"] != "ok":
            parts.append(f"<h3>{html.escape(title)}</h3><p class='note'>{html.escape(table['status'])}</p>")
            continue
        rows = "".join(
            f"<tr style='background:{BAND_COLOURS[r['band']]}'><td>{html.escape(r['name'])}</td>"
            f"<td>{r['kind']}</td><td>{_psi_text(r['psi'])}</td>"
            f"<td>{r['band']}</td><td>{r['n']}</td></tr>"
            for r in table["rows"]
        )
        parts.append(
            f"<h3>{html.escape(title)}</h3><table><tr><th>name</th><th>kind</th><th>PSI</th><th>band</th>"
            f"<th>n</th></tr>{rows}</table>"
        )
    legend = " ".join(f"<span style='background:{c}'>{b}</span>" for b, c in BAND_COLOURS.items())
    bands = "Bands: PSI &lt; 0.1 stable, 0.1–0.25 moderate, ≥ 0.25 significant."
    extra = f"<p class='note'>{html.escape(note)}</p>" if note else ""
    return "".join(parts) + f"<p class='note'>{bands} {legend}</p>{extra}"


_STYLE: Final = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #bbb;padding:.2em .6em;text-align:left}
.note{color:#555;font-size:.9em}img{max-width:100%}
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}
"""


def _summary(result: dict[str, Any], log: DecisionSource) -> str:
    points = [p for s in result["series"] for p in s["points"]]
    attempts = sum(p["attempts"] for p in points)
    actions = {a: sum(p["actions"][a] for p in points) for a in ACTIONS}
    shares = ", ".join(f"{a} {n} ({n / max(attempts, 1):.1%})" for a, n in actions.items())
    facts = {
        "decision log": str(log),
        "period": f"{result['start']} to {result['end']} ({result['bucket']} buckets, UTC)",
        "attempts": f"{attempts}: {shares}",
        "labels as of": str(result["as_of"]),
        "fraud maturity": f"{result['fraud_maturity_days']:g} days",
    }
    items = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in facts.items())
    return f"<dl>{items}</dl>"


def build_report(spec: ReportInput) -> str:
    """The report as one HTML document (charts as embedded PNGs)."""
    with spec.log.ranges() as reader:
        span = resolve_range(reader, spec.start, spec.end)
        overall = trends(reader, span, spec.bucket, "none", spec.fraud_maturity_days)
        segmented = (
            None
            if spec.segment == "none"
            else trends(reader, span, spec.bucket, spec.segment, spec.fraud_maturity_days)
        )
        drifted = (
            None if spec.drift_models is None else drift(reader, span.start, span.end, spec.drift_models)
        )
    points = overall["series"][0]["points"]
    charts = [
        ("Volumes and actions", volume_chart(points)),
        ("Score quantiles", quantile_chart(points)),
        ("Predicted vs realised rates", rates_chart(points, spec.fraud_maturity_days)),
        ("Money at risk", money_chart(points)),
    ]
    if segmented is not None:
        charts.append((f"By {spec.segment}", segment_chart(segmented)))
    body = "".join(
        f"<h2>{html.escape(title)}</h2>"
        f"<img alt='{html.escape(title)}' src='data:image/png;base64,{_png(fig)}'>"
        for title, fig in charts
    )
    made = datetime.now(UTC).isoformat(timespec="seconds")
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>riskgate report {html.escape(span.start.date().isoformat())} – "
        f"{html.escape(span.end.date().isoformat())}</title><style>{_STYLE}</style></head><body>"
        f"<h1>riskgate risk report</h1><p class='note'>Made {made} by riskgate report.</p>"
        f"{_summary(overall, spec.log)}{body}<h2>Drift (PSI against the training reference)</h2>"
        f"{_drift_table(drifted, spec.drift_note)}</body></html>"
    )


def write_report(spec: ReportInput, out: Path) -> Path:
    """Write :func:`build_report` to ``out`` (folders created); returns the path."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(build_report(spec), encoding="utf-8")
    logger.info("report of %s written to %s", spec.log, out)
    return out


def registered_models(
    tracking_uri: str,
    log: DecisionSource,
    start: datetime | None,
    end: datetime | None,
    registry_uri: str | None = None,
) -> tuple[dict[str, DriftModel | None], str, float]:
    """The versions that scored most of the period's decisions, from the registry, for drift and maturity.

    Returns the drift models per task (None where the log names none or it cannot be loaded), a note saying
    what could not be loaded, and the fraud label delay (the fraud bundle's, else the fallback).
    """
    from registry.store import load_bundle, tracking_store  # noqa: PLC0415 - MLflow is slow to import

    with log.ranges() as reader:
        span = resolve_range(reader, start, end)
        used = {task: reader.models_used(epoch_us(span.start), epoch_us(span.end), task) for task in TASKS}
    models: dict[str, DriftModel | None] = {task: None for task in TASKS}
    notes: list[str] = []
    maturity = FALLBACK_FRAUD_MATURITY_DAYS
    for task, versions in used.items():
        if not versions:
            notes.append(f"no {task} model scored the period's decisions")
            continue
        ref = versions[0][0]
        if len(versions) > 1:
            notes.append(f"{task}: {len(versions)} versions scored the period; drift is shown for {ref}")
        try:
            with tracking_store(tracking_uri, registry_uri) as client:
                bundle = load_bundle(client, f"models:/{ref}")
        except Exception as error:  # the report still shows the trends without this model's drift
            logger.warning("report: cannot load %s for drift: %s", ref, error)
            notes.append(f"{ref} could not be loaded from {redact(registry_uri or tracking_uri)}: {error}")
            continue
        models[task] = DriftModel(task, ref, bundle.reference, bundle.features.names)
        if task == "fraud":
            maturity = maturity_days(bundle)
    return models, "; ".join(notes), maturity
