"""riskgate: features."""
