"""riskgate: the command line and settings that tie the packages together.

The data flow is in the tree: ``events`` (the contract) → ``simulator`` (a synthetic world) → ``features``
(one definition, two engines) → ``training`` (models, MLflow) → ``serving`` (the scoring service).
"""
