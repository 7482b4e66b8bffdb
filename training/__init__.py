"""riskgate: training."""
