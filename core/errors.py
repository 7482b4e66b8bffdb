"""The root of every error riskgate raises on purpose, carrying how each entry point reports it.

Each package derives its errors from :class:`RiskgateError` (directly or through its own base) and sets, where
the default does not fit, the HTTP status the API answers with (:attr:`RiskgateError.http_status`), the stable
machine-readable code of the answer (:attr:`RiskgateError.code`) and the exit status of the command line
(:attr:`RiskgateError.exit_code`). The API maps errors to answers in one place (``serving.api.answers``), the
CLI maps them to exit statuses in one place (``riskgate.cli``); neither lists error classes.

An error answered 500 (the default) is internal: the API logs it and answers ``internal_error`` without its
message. Any other status is answered with the message (card numbers masked), so a class sets one only when
its messages are written for the API's callers: they name fields and rules, never a request's values.

Messages say what went wrong, where, why and what to do, and never carry personal data.
"""

from __future__ import annotations

from typing import ClassVar, Final

#: The command failed on its own terms (a run that did not succeed, a check that found problems).
EXIT_FAILURE: Final = 1
#: The command was given something it cannot use (an option, a file, a configuration, missing data).
EXIT_USAGE: Final = 2


class RiskgateError(Exception):
    """Base class of every error riskgate raises on purpose."""

    #: the HTTP status the API answers with when this error ends a request (500: internal, message not shown)
    http_status: ClassVar[int] = 500
    #: the stable machine-readable code of the API's error answer (every 500 answers ``internal_error``)
    code: ClassVar[str] = "internal_error"
    #: the exit status of the command line when this error ends a command
    exit_code: ClassVar[int] = EXIT_USAGE


class InputError(RiskgateError, ValueError):
    """Values the caller supplied (a request's fields, a case to plan) cannot be used as they are: answered
    422 with the message, which names the field and the rule, never the value. A file or configuration the
    server reads that cannot be used is a plain :class:`RiskgateError` (internal to an API caller)."""

    http_status = 422
    code = "invalid_input"
    exit_code = EXIT_USAGE
