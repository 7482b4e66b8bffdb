"""The analysts' rules and lists as the decision path serves them: a holder of the current book, and the YAML
file of rules and lists (``RISKGATE_RULES_FILE``) that providers keep in git.

:class:`RuleBookHolder` holds one :class:`rules.book.RuleBook`; :meth:`RuleBookHolder.install` compiles a new
one from rules and lists and replaces the reference in one assignment (as
:class:`serving.scoring.models.ModelHolder` swaps models), so a request evaluates one book from start to end.
The admin API installs the book of its stored rules and lists the same way.

The file (:func:`read_rules_file`)::

    rules:
      - name: block-stolen-devices
        action: block                    # allow | block | review
        expression: device_id in @blocked_devices
        enabled: true                    # optional (true)
        description: devices seen in card testing   # optional
    lists:
      - name: blocked_devices
        field: device_id                 # the attempt field (or key/category extension field) it holds
        reason: card testing, 2026-11    # optional: the reason of items that give none
        items: [dev-1, {value: dev-2, reason: chargeback, expires_at: 2027-01-01T00:00:00Z}]
      - name: blocked_ips
        field: ip                        # IP addresses and CIDR ranges
        csv: blocked_ips.csv             # or a CSV file (value, expires_at, reason), relative to this file

Every rule is parsed and type-checked against the served feature set (disabled ones too); every problem names
the file, the rule or list (its name and its place in the file) and, for an expression, the position in it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from events.schema import ExtensionField
from rules.book import RuleAction, RuleBook, RuleSpec
from rules.checker import check
from rules.errors import ListError, RuleError
from rules.lists import ListItem, MemberList, make_list, read_items
from rules.schema import Schema
from rules.syntax import parse
from serving.errors import ConfigurationError
from serving.scoring.billing import with_builtin

logger = logging.getLogger(__name__)


class RulesFileError(ConfigurationError):
    """A rules file that cannot be served: the service refuses to start with it, a reload keeps the book it
    serves. The message names the file, the rule or list and the position."""

    http_status = 422
    code = "invalid_rules_file"


class RuleBookHolder:
    """The current :class:`RuleBook`; reading it is one attribute access, replacing it one assignment."""

    def __init__(
        self,
        schema: Schema,
        extension: Sequence[ExtensionField] = (),
        on_error: Callable[[RuleSpec], None] | None = None,
        builtin: Sequence[RuleSpec] = (),
    ) -> None:
        #: the served feature set's schema, without lists (each book adds its own)
        self.schema = schema
        #: rules served with every book unless it has one of the same name (the billing checks' rules)
        self.builtin = tuple(builtin)
        #: whether the book served holds only the built-in rules as they are (none matches an attempt that
        #: fails no billing check: the decision path need not gather the values)
        self.builtin_only = True
        #: the provider's extension fields (lists of its key and category fields)
        self.extension = tuple(extension)
        self._on_error = on_error
        self._book = RuleBook(on_error=on_error)
        self.lock = threading.Lock()

    @property
    def current(self) -> RuleBook:
        return self._book

    def install(self, specs: Sequence[RuleSpec], lists: Mapping[str, MemberList]) -> RuleBook:
        """Compile ``specs`` over ``lists`` and serve them from now on (the previous book until this returns);
        a rule that does not compile raises :class:`rules.book.RuleBookError` and nothing changes."""
        served = with_builtin(specs, self.builtin)
        book = RuleBook.compile(served, lists, self.schema, self._on_error)
        with self.lock:
            self._book = book
            self.builtin_only = all(spec in self.builtin for spec in served if spec.enabled)
        logger.info("rules now served: %d enabled rule(s), %d list(s)", len(book), len(book.lists))
        return book


# -- the YAML file ------------------------------------------------------------------------------------------


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _ItemIn(_In):
    value: str
    reason: str | None = None
    expires_at: AwareDatetime | None = None


class _ListIn(_In):
    name: str
    field: str
    reason: str | None = Field(None, description="The reason of the items that give none.")
    items: list[str | _ItemIn] | None = None
    csv: Path | None = None

    @model_validator(mode="after")
    def _one_source(self) -> _ListIn:
        if (self.items is None) == (self.csv is None):
            raise ValueError("give the list's items or a csv file, not both or neither")
        return self


class _RuleIn(_In):
    name: str
    action: RuleAction
    expression: str
    enabled: bool = True
    description: str = ""


class _FileIn(_In):
    rules: list[_RuleIn] = Field(default_factory=list)
    lists: list[_ListIn] = Field(default_factory=list)


@dataclass(frozen=True)
class RulesFile:
    """What a rules file holds: the rules (in file order) and the lists by name."""

    specs: tuple[RuleSpec, ...]
    lists: dict[str, MemberList]


def read_rules_file(path: Path, schema: Schema, extension: Sequence[ExtensionField] = ()) -> RulesFile:
    """The rules and lists of ``path`` (see the module's docstring), every rule checked against ``schema``
    (the served feature set's) with the file's lists; any problem raises :class:`RulesFileError`."""
    text, document = _document(path)
    try:
        parsed = _FileIn.model_validate(document if document is not None else {})
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise RulesFileError(
            f"{path}: {where}{_line(text, first['loc'])}: {first['msg']} "
            f"({error.error_count()} problem(s) in all)"
        ) from error
    lists = {}
    for index, listed in enumerate(parsed.lists):
        if listed.name in lists:
            raise RulesFileError(
                f"{path}: lists[{index}] {listed.name!r}: a list of this name is given twice"
            )
        lists[listed.name] = _list(path, index, listed, extension)
    with_lists = schema.with_lists(lists)
    specs: list[RuleSpec] = []
    for index, rule in enumerate(parsed.rules):
        where = f"{path}: rules[{index}]{_line(text, ('rules', index))} {rule.name!r}"
        try:
            spec = RuleSpec(rule.name, rule.action, rule.expression, rule.enabled, rule.description)
            check(parse(spec.expression), with_lists)
        except RuleError as error:
            raise RulesFileError(f"{where}: {error}") from error
        if any(known.name == spec.name for known in specs):
            raise RulesFileError(
                f"{where}: a rule of this name is given earlier; give each rule its own name"
            )
        specs.append(spec)
    return RulesFile(tuple(specs), lists)


def _document(path: Path) -> tuple[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise RulesFileError(
            f"{path}: cannot read the rules file ({type(error).__name__}); give a UTF-8 YAML file"
        ) from error
    try:
        return text, yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = "" if mark is None else f" at line {mark.line + 1}, column {mark.column + 1}"
        raise RulesFileError(f"{path}: not YAML{at}: {getattr(error, 'problem', error)}") from error


def _line(text: str, loc: Sequence[int | str]) -> str:
    """`` (line N)``: where in the file the entry of ``rules`` or ``lists`` that ``loc`` falls in starts (the
    YAML is composed again, only on an error); empty when it cannot be told."""
    node = yaml.compose(text)
    for part in loc[:2]:
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            node = next((value for key, value in node.value if key.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            return ""
    return "" if node is None else f" (line {node.start_mark.line + 1})"


def _list(path: Path, index: int, listed: _ListIn, extension: Sequence[ExtensionField]) -> MemberList:
    where = f"{path}: lists[{index}] {listed.name!r}"
    try:
        if listed.csv is not None:
            source = listed.csv if listed.csv.is_absolute() else path.parent / listed.csv
            items: Sequence[ListItem] = read_items(source, listed.field, extension, listed.reason)
        else:
            items = [_item(entry, listed.reason) for entry in listed.items or ()]
        return make_list(listed.name, listed.field, items, extension)
    except (ListError, RuleError) as error:
        raise RulesFileError(f"{where}: {error}") from error


def _item(entry: str | _ItemIn, reason: str | None) -> ListItem:
    if isinstance(entry, str):
        entry = _ItemIn(value=entry)
    expires: datetime | None = entry.expires_at
    return ListItem(entry.value, entry.reason or reason or "", expires)
