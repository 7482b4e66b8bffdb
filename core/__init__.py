"""Names every package shares (the progress interface); imports nothing of riskgate's own packages."""
