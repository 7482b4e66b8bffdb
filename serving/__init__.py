"""riskgate: serving."""
