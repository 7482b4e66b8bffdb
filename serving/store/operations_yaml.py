"""Rules and lists as a YAML file, for providers who keep them in git: :func:`load_file` brings the store in
line with a file (every change a new version, with who and why), :func:`export_text` writes the current set.

The format (the one the service reads at start-up, ``RISKGATE_RULES_FILE``)::

    rules:
      - name: block-stolen-devices
        action: block                         # allow | block | review
        expression: device_id in @stolen_devices
        enabled: true                         # optional (true)
        description: devices seen in card testing   # optional
    lists:
      - name: stolen_devices
        field: device_id                      # the attempt field it holds (``kind`` is read as a synonym)
        reason: card testing, 2026-11         # optional: the reason of items that give none
        items: [dev-1, {value: dev-2, reason: chargeback, expires_at: "2027-01-01T00:00:00+00:00"}]
      - name: bad_networks
        field: ip
        csv: bad_networks.csv                 # or a CSV file (value, expires_at, reason), beside this file

A file states each rule and list it names completely: a rule that differs becomes a new version, a list's
items become the file's (others are removed); rules and lists the file does not name stay, unless ``prune``.
Everything is checked before anything is written (expressions against the served schema with the file's and
the store's lists, items against their field), so a bad file changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from core.errors import InputError
from rules.book import RuleAction, RuleSpec
from rules.errors import ListError, RuleError
from rules.lists import ListItem, make_list, read_items
from serving.store.operations import Change, Operations, StoredList

logger = logging.getLogger(__name__)


class RulesFileError(InputError):
    """A rules file that cannot be loaded: the message names the file and the rule or list."""

    code = "invalid_rules_file"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _ItemIn(_In):
    value: str
    reason: str | None = None
    expires_at: AwareDatetime | None = None


class _ListIn(_In):
    name: str
    field: str | None = None
    kind: str | None = Field(None, description="A synonym of field.")
    description: str = ""
    reason: str | None = None
    items: list[str | _ItemIn] | None = None
    csv: Path | None = None

    @model_validator(mode="after")
    def _one_of_each(self) -> _ListIn:
        if (self.field is None) == (self.kind is None):
            raise ValueError("give the list's field (the attempt field it holds)")
        if self.items is not None and self.csv is not None:
            raise ValueError("give the list's items or a csv file, not both")
        return self

    @property
    def holds(self) -> str:
        return self.field or self.kind or ""


#: A list of the file, built, and its description.
_Listed = tuple[StoredList, str]


class _RuleIn(_In):
    name: str
    action: RuleAction
    expression: str
    enabled: bool = True
    description: str = ""


class _FileIn(_In):
    rules: list[_RuleIn] = Field(default_factory=list)
    lists: list[_ListIn] = Field(default_factory=list)


@dataclass
class Loaded:
    """What loading a file changed (names), for the operator."""

    rules_created: list[str] = field(default_factory=list)
    rules_changed: list[str] = field(default_factory=list)
    rules_deleted: list[str] = field(default_factory=list)
    lists_created: list[str] = field(default_factory=list)
    lists_changed: list[str] = field(default_factory=list)
    lists_deleted: list[str] = field(default_factory=list)
    unchanged: int = 0

    def lines(self) -> list[str]:
        parts = [
            (what, names)
            for what, names in (
                ("rules created", self.rules_created),
                ("rules changed", self.rules_changed),
                ("rules deleted", self.rules_deleted),
                ("lists created", self.lists_created),
                ("lists changed", self.lists_changed),
                ("lists deleted", self.lists_deleted),
            )
            if names
        ]
        return [f"{what}: {', '.join(names)}" for what, names in parts] + [f"unchanged: {self.unchanged}"]


def read_file(path: Path) -> tuple[str, _FileIn]:
    """The file's text and its rules and lists, checked for shape; a problem raises :class:`RulesFileError`
    naming the file and where in it (the entry, its line)."""
    text, document = _document(path)
    try:
        return text, _FileIn.model_validate(document if document is not None else {})
    except ValidationError as error:
        first = error.errors(include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise RulesFileError(
            f"{path}: {where}{_line(text, first['loc'])}: {first['msg']} "
            f"({error.error_count()} problem(s) in all)"
        ) from None


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
    """`` (line N)``: where the entry of ``rules`` or ``lists`` that ``loc`` falls in starts (the YAML is
    composed again, only on an error); empty when it cannot be told."""
    node = yaml.compose(text)
    for part in loc[:2]:
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            node = next((value for key, value in node.value if key.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            return ""
    return "" if node is None else f" (line {node.start_mark.line + 1})"


def _entry(path: Path, text: str, what: str, index: int, name: str) -> str:
    """How a problem names an entry: ``<file>: rule 'x' (rules[1], line 5)``."""
    line = _line(text, (f"{what}s", index)).strip(" ()")
    return f"{path}: {what} {name!r} ({what}s[{index}]{', ' + line if line else ''})"


def _items(path: Path, listed: _ListIn, operations: Operations) -> tuple[ListItem, ...]:
    if listed.csv is not None:
        return read_items(path.parent / listed.csv, listed.holds, operations.fields, listed.reason)
    items = []
    for entry in listed.items or ():
        one = _ItemIn(value=entry) if isinstance(entry, str) else entry
        items.append(ListItem(one.value, one.reason or listed.reason or "", one.expires_at))
    return tuple(items)


def load_file(path: Path, operations: Operations, made: Change, prune: bool = False) -> Loaded:
    """Bring the store in line with the file at ``path`` (see the module's docstring); every change is made
    by ``made``. A bad file raises :class:`RulesFileError` (or the rule's or list's error, named) and
    changes nothing."""
    text, document = read_file(path)
    store = operations.store
    lists: dict[str, StoredList] = {}
    for index, listed in enumerate(document.lists):
        where = _entry(path, text, "list", index, listed.name)
        if listed.name in lists:
            raise RulesFileError(f"{where}: a list of this name is given earlier; give each its own name")
        try:
            lists[listed.name] = make_list(
                listed.name, listed.holds, _items(path, listed, operations), operations.fields
            )
        except (ListError, RuleError) as error:
            raise RulesFileError(f"{where}: {error}") from error
    current_lists = {info.name: info for info in store.list_infos()}
    for name, built in lists.items():
        known = current_lists.get(name)
        if known is not None and known.field != built.field:
            raise RulesFileError(
                f"{path}: list {name!r} holds {known.field} in the store, {built.field} in the file: delete "
                "it first, or give the list another name"
            )
    kept = {} if prune else {name: info.kind for name, info in current_lists.items()}
    schema = operations.schema({**kept, **{name: built.kind for name, built in lists.items()}})
    specs: list[RuleSpec] = []
    for index, rule in enumerate(document.rules):
        where = _entry(path, text, "rule", index, rule.name)
        if any(known.name == rule.name for known in specs):
            raise RulesFileError(f"{where}: a rule of this name is given earlier; give each its own name")
        try:
            spec = RuleSpec(rule.name, rule.action, rule.expression, rule.enabled, rule.description)
            operations.check_rule(spec, schema)
        except RuleError as error:
            raise RulesFileError(f"{where}: {error}") from error
        specs.append(spec)
    described = {
        name: (built, listed.description)
        for (name, built), listed in zip(lists.items(), document.lists, strict=True)
    }
    with operations.together():
        return _apply(operations, specs, described, made, prune)


def _apply(
    operations: Operations, specs: list[RuleSpec], lists: dict[str, _Listed], made: Change, prune: bool
) -> Loaded:
    loaded = Loaded()
    current = {spec.name: spec for spec in operations.store.current_rules()}
    stored_lists = operations.store.current_lists()
    for name, (built, description) in lists.items():
        _apply_list(operations, built, description, stored_lists.get(name), made=made, loaded=loaded)
    for spec in specs:
        if spec.name not in current:
            operations.create_rule(spec, made)
            loaded.rules_created.append(spec.name)
        elif current[spec.name] != spec:
            operations.change_rule(spec, made)
            loaded.rules_changed.append(spec.name)
        else:
            loaded.unchanged += 1
    if prune:
        named = {spec.name for spec in specs}
        for name in (name for name in current if name not in named):
            operations.delete_rule(name, made)
            loaded.rules_deleted.append(name)
        for name in (name for name in stored_lists if name not in lists):
            operations.delete_list(name, made)
            loaded.lists_deleted.append(name)
    logger.info("rules file loaded by %s: %s", made.by, "; ".join(loaded.lines()))
    return loaded


def _apply_list(
    operations: Operations,
    built: StoredList,
    description: str,
    before: StoredList | None,
    *,
    made: Change,
    loaded: Loaded,
) -> None:
    """Make the stored list ``built``: created if new, its items those of the file."""
    if before is None:
        operations.create_list(built.name, built.field, description, made)
        loaded.lists_created.append(built.name)
    had = {} if before is None else {item.value: item for item in before.items}
    wanted = {item.value: item for item in built.items}
    added = [item for value, item in wanted.items() if had.get(value) != item]
    removed = [value for value in had if value not in wanted]
    if added:
        operations.add_items(built.name, added, made)
    if removed:
        operations.remove_items(built.name, removed, made)
    if before is not None:
        if added or removed:
            loaded.lists_changed.append(built.name)
        else:
            loaded.unchanged += 1


def export_text(operations: Operations) -> str:
    """The current rules and lists as a file of the format above (items with their reason and expiry)."""
    store = operations.store
    document: dict[str, Any] = {
        "rules": [
            {
                "name": spec.name,
                "action": spec.action.value,
                "expression": spec.expression,
                "enabled": spec.enabled,
                "description": spec.description,
            }
            for spec in store.current_rules()
        ],
        "lists": [
            {"name": name, "field": built.field, "items": [_item_out(item) for item in _by_value(built)]}
            for name, built in sorted(store.current_lists().items())
        ],
    }
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def _by_value(built: StoredList) -> list[ListItem]:
    return sorted(built.items, key=lambda item: item.value)


def _item_out(item: ListItem) -> dict[str, str]:
    out = {"value": item.value, "reason": item.reason}
    if item.expires_at is not None:
        out["expires_at"] = item.expires_at.isoformat()
    return out
