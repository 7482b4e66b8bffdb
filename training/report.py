"""Human-readable test reports: the model next to the baseline rules and the ground truth."""

from __future__ import annotations

HEADLINE = (
    "roc_auc",
    "average_precision",
    "recall_at_0.5pct_fpr",
    "recall_at_1pct_fpr",
    "precision_top50_per_day",
    "precision_top50_accounts_per_day",
    "brier",
    "ece",
    "money_net_value",
    "money_value_saved",
    "money_cost_of_false_flags",
    "money_flagged_share",
)


def format_report(title: str, report: dict[str, dict[str, float]]) -> str:
    """A Markdown table of the headline metrics per scorer, then the model's standing."""
    order = ("model", "baseline", "truth", "model_on_true_fraud", "truth_on_true_fraud")
    scorers = [name for name in order if name in report]
    lines = [
        f"### {title}",
        "",
        "| metric | " + " | ".join(scorers) + " |",
        "|---" * (len(scorers) + 1) + "|",
    ]
    for metric in HEADLINE:
        if metric in report["model"]:
            cells = " | ".join(format_number(report[scorer][metric]) for scorer in scorers)
            lines.append(f"| {metric} | {cells} |")
    standing = report.get("standing", {})
    if standing:
        lines.append("")
        lines.extend(f"- {name}: {format_number(value)}" for name, value in sorted(standing.items()))
    return "\n".join(lines)


def format_number(value: float) -> str:
    """Money-sized values with thousands separators, ratios with four decimals."""
    return f"{value:,.2f}" if abs(value) >= 100 else f"{value:.4f}"
