"""riskgate: events."""
