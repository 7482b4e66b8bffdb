"""Every error class riskgate defines derives from :class:`core.errors.RiskgateError` and carries how each
entry point reports it: the API's status and code, the command line's exit status. The product's modules are
walked (the packages the wheel ships, from pyproject.toml), so a class added without its root fails here."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import tomllib
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

from core.errors import EXIT_FAILURE, EXIT_USAGE, InputError, RiskgateError
from events.currencies import UnknownCurrencyError
from events.io import EventTableMissingError, ExtensionRecordError
from events.mapping import MappingError
from events.sources import UnsupportedFileError
from events.validate import UnknownKindError
from features.batch import FeatureInputError
from features.bulk import BulkLoadError
from features.registry import FeatureSetSpecError
from features.stores.base import StoreError
from recovery.config import RecoveryConfigError
from recovery.learned import RetryModelFormatError
from serving.api.connections import HeadTooLargeError
from serving.errors import ConfigurationError, ServingError
from serving.readers.backtest import BacktestError
from serving.readers.trends import TrendQueryError
from serving.store.decisions import LogNotFoundError
from serving.store.journal import JournalError
from simulator.config import ConfigFileError
from simulator.recovery_eval import EvaluationError
from simulator.run import OutputExistsError
from training.errors import TrainingError

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
CODE = re.compile(r"[a-z][a-z0-9_]*")

#: The exit status each error class ended its commands with before the CLI had one mapping (its
#: ``except ...: raise typer.Exit(N)`` sites); the one mapping reads them from the classes.
CLI_EXIT_STATUSES: dict[type[RiskgateError], int] = {
    TrainingError: EXIT_FAILURE,  # train, evaluate, promote, score
    OutputExistsError: EXIT_FAILURE,  # simulate
    ConfigFileError: EXIT_FAILURE,  # simulate
    MappingError: EXIT_USAGE,
    UnknownKindError: EXIT_USAGE,
    UnsupportedFileError: EXIT_USAGE,
    ExtensionRecordError: EXIT_USAGE,
    FeatureSetSpecError: EXIT_USAGE,
    EventTableMissingError: EXIT_USAGE,
    FeatureInputError: EXIT_USAGE,
    BulkLoadError: EXIT_USAGE,
    JournalError: EXIT_USAGE,
    ConfigurationError: EXIT_USAGE,
    TrendQueryError: EXIT_USAGE,
    BacktestError: EXIT_USAGE,
    LogNotFoundError: EXIT_USAGE,
    RecoveryConfigError: EXIT_USAGE,
    EvaluationError: EXIT_USAGE,
    RetryModelFormatError: EXIT_USAGE,
}


def product_packages() -> list[str]:
    """The packages the wheel ships (pyproject.toml's hatch build target)."""
    with PYPROJECT.open("rb") as file:
        packages: list[str] = tomllib.load(file)["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    return packages


def product_modules() -> Iterator[ModuleType]:
    for name in product_packages():
        package = importlib.import_module(name)
        yield package
        for module in pkgutil.walk_packages(package.__path__, f"{name}."):
            yield importlib.import_module(module.name)


def defined_exceptions(modules: Iterable[ModuleType]) -> list[type[BaseException]]:
    """The exception classes the modules define (not those they import)."""
    return [
        member
        for module in modules
        for _, member in inspect.getmembers(module, inspect.isclass)
        if issubclass(member, BaseException) and member.__module__ == module.__name__
    ]


def problems(error: type[BaseException]) -> list[str]:
    """What is wrong with an error class for the API's and the CLI's one mappings (nothing: empty)."""
    if not issubclass(error, RiskgateError):
        return ["does not derive from core.errors.RiskgateError"]
    found = []
    if not 400 <= error.http_status <= 599:
        found.append(f"http_status {error.http_status} is not an error status (400-599)")
    if CODE.fullmatch(error.code) is None:
        found.append(f"code {error.code!r} is not snake_case")
    if error.exit_code not in {EXIT_FAILURE, EXIT_USAGE}:
        found.append(f"exit_code {error.exit_code} is neither EXIT_FAILURE (1) nor EXIT_USAGE (2)")
    return found


@pytest.fixture(scope="module")
def exceptions() -> list[type[BaseException]]:
    return defined_exceptions(product_modules())


def test_the_walk_finds_the_errors_of_every_product_package(exceptions: list[type[BaseException]]) -> None:
    known = {TrainingError, ServingError, MappingError, OutputExistsError, HeadTooLargeError, StoreError}
    assert known <= set(exceptions)
    packages = {error.__module__.partition(".")[0] for error in exceptions}
    assert packages >= {"core", "events", "features", "recovery", "serving", "simulator", "training"}


def test_every_error_class_is_rooted_with_a_status_a_code_and_an_exit_status(
    exceptions: list[type[BaseException]],
) -> None:
    wrong = {
        f"{error.__module__}.{error.__qualname__}": found
        for error in exceptions
        if (found := problems(error))
    }
    assert wrong == {}


def test_a_class_that_forgets_its_root_or_sets_a_bad_status_is_reported() -> None:
    class ForgottenError(ValueError):
        pass

    class BadAttributesError(InputError):
        http_status = 200
        code = "Not-Snake"
        exit_code = 0

    assert problems(ForgottenError) == ["does not derive from core.errors.RiskgateError"]
    assert len(problems(BadAttributesError)) == 3
    assert problems(InputError) == []


@pytest.mark.parametrize(
    ("error", "status"), CLI_EXIT_STATUSES.items(), ids=lambda v: getattr(v, "__name__", v)
)
def test_each_error_keeps_the_exit_status_its_commands_had(error: type[RiskgateError], status: int) -> None:
    assert error.exit_code == status


@pytest.mark.parametrize(
    ("error", "builtin"),
    [
        (UnknownCurrencyError, KeyError),
        (EventTableMissingError, FileNotFoundError),
        (LogNotFoundError, FileNotFoundError),
        (OutputExistsError, FileExistsError),
        (StoreError, RuntimeError),
        (MappingError, ValueError),
        (TrendQueryError, ValueError),
    ],
)
def test_rooted_errors_keep_their_builtin_base(error: type[RiskgateError], builtin: type[Exception]) -> None:
    """``except FileNotFoundError`` (and the like) in callers still catches them, with their message."""
    with pytest.raises(builtin, match="what went wrong"):
        raise error("what went wrong")
