"""riskgate: simulator."""
