"""The engine's answer types (:mod:`serving.scoring.answers`) against the documents they mirror."""

from __future__ import annotations

from typing import Any, is_typeddict

import pytest
from pydantic import BaseModel

from serving.scoring import answers
from serving.scoring.schemas import (
    BatchOut,
    DecisionOut,
    FailureOut,
    FraudOut,
    ModelRef,
    ReasonOut,
    RecoveryBatchOut,
    RecoveryPlanOut,
    RecoveryStepOut,
    ScoreOut,
)

#: Each answer type and the response document it mirrors.
DOCUMENTS: dict[Any, type[BaseModel]] = {
    answers.ModelRefAnswer: ModelRef,
    answers.ReasonAnswer: ReasonOut,
    answers.FraudAnswer: FraudOut,
    answers.FailureAnswer: FailureOut,
    answers.DecisionAnswer: DecisionOut,
    answers.ScoreAnswer: ScoreOut,
    answers.BatchAnswer: BatchOut,
    answers.RecoveryStepAnswer: RecoveryStepOut,
    answers.RecoveryPlanAnswer: RecoveryPlanOut,
    answers.RecoveryBatchAnswer: RecoveryBatchOut,
}


@pytest.mark.parametrize("answer", DOCUMENTS, ids=lambda answer: answer.__name__)
def test_an_answer_type_has_exactly_its_documents_fields(answer: Any) -> None:
    document = DOCUMENTS[answer]
    assert answer.__required_keys__ == set(document.model_fields), document.__name__
    assert not answer.__optional_keys__  # the engine always writes every key (null when unknown)


def test_every_answer_type_has_a_document() -> None:
    types = {getattr(answers, name) for name in answers.__all__}
    partial = {answers.PlannedAnswer}  # the planner's part of RecoveryPlanAnswer, never answered alone
    assert all(is_typeddict(t) for t in types)
    assert types - partial == set(DOCUMENTS)
    assert answers.PlannedAnswer.__required_keys__ < answers.RecoveryPlanAnswer.__required_keys__
