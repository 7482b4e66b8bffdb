"""The documents of the rules and lists admin API (:mod:`serving.api.routes.rules`,
:mod:`serving.api.routes.lists`) and the dependency that gives a route the checked store of rules and lists.

Every change names why (``reason``: kept with the version); who is the API key's name, when is the server's
time. No body may hold a card number (refused 422, never echoed), so no answer does either.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Final

from fastapi import Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from rules.book import NAME_PATTERN, RuleAction, RuleSpec
from rules.lists import ListKind
from serving.api.security import Principal
from serving.errors import NotReadyError
from serving.scoring.schemas import ErrorOut, _Body
from serving.store.operations import (
    MAX_REASON,
    Change,
    ItemChange,
    ItemLogEntry,
    ListInfo,
    Operations,
    RuleChange,
    RuleVersion,
    StoredItem,
)

#: The answers of a route that names a rule or list that may not exist, or may exist already.
Answers = dict[int | str, dict[str, Any]]
NOT_FOUND: Final[Answers] = {404: {"model": ErrorOut, "description": "No rule or list of this name."}}
CONFLICT: Final[Answers] = {
    409: {"model": ErrorOut, "description": "The name is taken, or the change conflicts with the set."}
}
NOT_FOUND_OR_CONFLICT: Final[Answers] = {**NOT_FOUND, **CONFLICT}
#: The answers of every route of rules and lists: the caller's key, and a service without the store.
ROUTER_ANSWERS: Final[Answers] = {
    401: {"model": ErrorOut},
    403: {"model": ErrorOut},
    503: {"model": ErrorOut, "description": "This service has no store of rules and lists."},
}
#: The longest page of items or log entries.
MAX_PAGE: Final = 1000
LIST_NAME_PATTERN: Final = r"^[a-z][a-z0-9_]{0,63}$"

Reason = Annotated[str, Field(min_length=1, max_length=MAX_REASON, description="Why: kept with the change.")]
RuleName = Annotated[str, Field(pattern=NAME_PATTERN, description="Lower case, digits, '_' or '-'.")]
Expression = Annotated[
    str, Field(min_length=1, max_length=4000, description="A condition, e.g. amount > 100 and kind == 'new'.")
]
Description = Annotated[str, Field(max_length=1000)]


async def get_operations(request: Request) -> Operations:
    """The checked store of rules and lists the app was built with (503 if it has none)."""
    operations: Operations | None = getattr(request.app.state, "operations", None)
    if operations is None:
        raise NotReadyError("this service has no store of rules and lists: start it with `riskgate serve`")
    return operations


OperationsDep = Annotated[Operations, Depends(get_operations)]


# -- rules ---------------------------------------------------------------------------------------------------


class RuleIn(_Body):
    """A new rule: its name, what it does when its condition is true, and the condition."""

    name: RuleName
    action: RuleAction
    expression: Expression
    enabled: bool = True
    description: Description = ""
    reason: Reason

    def spec(self) -> RuleSpec:
        return RuleSpec(self.name, self.action, self.expression, self.enabled, self.description)


class RuleChangeIn(_Body):
    """A rule's new content (all of it: what is not given takes its default, as for a new rule)."""

    action: RuleAction
    expression: Expression
    enabled: bool = True
    description: Description = ""
    reason: Reason

    def spec(self, name: str) -> RuleSpec:
        return RuleSpec(name, self.action, self.expression, self.enabled, self.description)


class ReasonIn(_Body):
    """Why the change is made (kept with it)."""

    reason: Reason


class DraftIn(_Body):
    """An expression to check before it is saved."""

    expression: Expression


class DraftOut(BaseModel):
    """A well-typed expression and what it reads: names (fields, features, model outputs) and lists."""

    expression: str
    names: list[str]
    lists: list[str]


class RuleOut(BaseModel):
    """A version of a rule: its content, and who made it, when, why and how (``change``)."""

    name: str
    action: RuleAction
    expression: str
    enabled: bool
    description: str
    version: int
    change: RuleChange
    changed_by: str
    changed_at: datetime
    reason: str

    @classmethod
    def of(cls, version: RuleVersion) -> RuleOut:
        spec, made = version.spec, version.made
        return cls(
            name=spec.name,
            action=spec.action,
            expression=spec.expression,
            enabled=spec.enabled,
            description=spec.description,
            version=version.version,
            change=version.change,
            changed_by=made.by,
            changed_at=made.at,
            reason=made.reason,
        )


class RulesOut(BaseModel):
    """The current rules in evaluation order (allow, block, review; creation order within each), and the
    store's change counter."""

    version: int
    rules: list[RuleOut]


class RuleVersionsOut(BaseModel):
    """Every version of a rule, the first first."""

    name: str
    versions: list[RuleOut]


# -- lists ---------------------------------------------------------------------------------------------------


class ListIn(_Body):
    """A new, empty list of one text field of the attempt (e.g. device_id, ip, card_bin)."""

    name: Annotated[str, Field(pattern=LIST_NAME_PATTERN, description="As rules read it: @name.")]
    field: Annotated[str, Field(min_length=1, max_length=64, description="The attempt field it holds.")]
    description: Description = ""
    reason: Reason


class ListOut(BaseModel):
    """A list without its items."""

    name: str
    field: str
    kind: ListKind
    description: str
    items: int
    created_by: str
    created_at: datetime
    reason: str

    @classmethod
    def of(cls, info: ListInfo) -> ListOut:
        return cls(
            name=info.name,
            field=info.field,
            kind=info.kind,
            description=info.description,
            items=info.items,
            created_by=info.created.by,
            created_at=info.created.at,
            reason=info.created.reason,
        )


class ListsOut(BaseModel):
    version: int
    lists: list[ListOut]


class ItemIn(_Body):
    """An item to list: its value, until when (null: until removed), why (default: the change's reason)."""

    value: Annotated[str, Field(min_length=1, max_length=200)]
    expires_at: datetime | None = None
    reason: Annotated[str, Field(max_length=MAX_REASON)] | None = None


class ItemsIn(_Body):
    items: Annotated[list[ItemIn], Field(min_length=1, max_length=10_000)]
    reason: Reason


class ValuesIn(_Body):
    values: Annotated[list[Annotated[str, Field(min_length=1, max_length=200)]], Field(min_length=1)]
    reason: Reason


class ItemOut(BaseModel):
    value: str
    reason: str
    expires_at: datetime | None
    added_by: str
    added_at: datetime

    @classmethod
    def of(cls, stored: StoredItem) -> ItemOut:
        item = stored.item
        return cls(
            value=item.value,
            reason=item.reason,
            expires_at=item.expires_at,
            added_by=stored.added.by,
            added_at=stored.added.at,
        )


class ItemsPageOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    """A page of a list's items in value order."""

    list_name: str = Field(alias="list")
    total: int
    offset: int
    items: list[ItemOut]


class ItemsChangedOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    """How many items a change added or removed, and how many the list holds now."""

    list_name: str = Field(alias="list")
    changed: int
    items: int
    version: int


class LogEntryOut(BaseModel):
    change: ItemChange
    value: str | None
    changed_by: str
    changed_at: datetime
    reason: str

    @classmethod
    def of(cls, entry: ItemLogEntry) -> LogEntryOut:
        made = entry.made
        return cls(
            change=entry.change, value=entry.value, changed_by=made.by, changed_at=made.at, reason=made.reason
        )


class ListLogOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    """A page of a list's change log, the newest first."""

    list_name: str = Field(alias="list")
    entries: list[LogEntryOut]


def made_by(principal: Principal, reason: str) -> Change:
    """A change the caller (its API key's name) makes now, for ``reason``."""
    return Change(principal.name, datetime.now(UTC), reason)
