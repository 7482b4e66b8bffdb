"""Allow and block lists (admin scope): create and delete lists, add and remove items (with an optional
expiry and a reason), import items from CSV (all or nothing; problems named by row and column), read a
list's items page by page and its change log. Rules read a list as ``@name``."""

from __future__ import annotations

import tempfile
from pathlib import Path as FilePath
from typing import Annotated, Any, Final

from fastapi import APIRouter, Path, Query, Request
from starlette.concurrency import run_in_threadpool

from rules.errors import ListImportError
from rules.lists import ListItem, read_items
from serving.api.operations import (
    CONFLICT,
    LIST_NAME_PATTERN,
    MAX_PAGE,
    NOT_FOUND,
    NOT_FOUND_OR_CONFLICT,
    ROUTER_ANSWERS,
    ItemOut,
    ItemsChangedOut,
    ItemsIn,
    ItemsPageOut,
    ListIn,
    ListLogOut,
    ListOut,
    ListsOut,
    LogEntryOut,
    OperationsDep,
    ValuesIn,
    made_by,
)
from serving.api.routes.deps import AdminKey
from serving.api.security import Principal
from serving.store.operations import MAX_REASON, Operations

router = APIRouter(tags=["lists"], responses=ROUTER_ANSWERS)
NameParam = Annotated[str, Path(pattern=LIST_NAME_PATTERN, description="The list's name (@name in rules).")]
ReasonQuery = Annotated[str, Query(min_length=1, max_length=MAX_REASON, description="Why (kept).")]
Offset = Annotated[int, Query(ge=0, description="Entries to skip.")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Entries in the page.")]
#: The CSV body of an import, as the OpenAPI document declares it.
CSV_BODY: Final[dict[str, Any]] = {
    "requestBody": {
        "required": True,
        "description": "CSV with a header row: value (required), expires_at (ISO 8601, UTC if no offset; "
        "empty: never), reason (empty: the query's reason).",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}


@router.get("/lists", response_model=ListsOut)
def list_lists(operations: OperationsDep, _: AdminKey) -> ListsOut:
    """Every list (without its items), by name, with the store's change counter."""
    store = operations.store
    version = store.version()
    return ListsOut(version=version, lists=[ListOut.of(info) for info in store.list_infos()])


@router.post("/lists", response_model=ListOut, status_code=201, responses=CONFLICT)
def create_list(body: ListIn, operations: OperationsDep, caller: AdminKey) -> ListOut:
    """Create an empty list of one text field of the attempt (payment_method_id, device_id, ip with CIDR
    ranges, card_bin, account_id, card_country, ip_country, or a key or category field of the provider's)."""
    made = made_by(caller, body.reason)
    return ListOut.of(operations.create_list(body.name, body.field, body.description, made))


@router.get("/lists/{name}", response_model=ListOut, responses=NOT_FOUND)
def get_list(name: NameParam, operations: OperationsDep, _: AdminKey) -> ListOut:
    return ListOut.of(operations.store.list_info(name))


@router.delete("/lists/{name}", response_model=ListOut, responses=NOT_FOUND_OR_CONFLICT)
def delete_list(name: NameParam, reason: ReasonQuery, operations: OperationsDep, caller: AdminKey) -> ListOut:
    """Delete a list and its items (409 while a rule reads it); its change log is kept. The answer is the
    list as it was."""
    info = operations.store.list_info(name)
    operations.delete_list(name, made_by(caller, reason))
    return ListOut.of(info)


@router.get("/lists/{name}/items", response_model=ItemsPageOut, responses=NOT_FOUND)
def list_items(
    name: NameParam, operations: OperationsDep, _: AdminKey, offset: Offset = 0, limit: Limit = 100
) -> ItemsPageOut:
    """A page of the list's items in value order (expired ones too, with their expiry)."""
    page = operations.store.items(name, offset, limit)
    return ItemsPageOut(
        list_name=name, total=page.total, offset=offset, items=[ItemOut.of(s) for s in page.items]
    )


@router.post("/lists/{name}/items", response_model=ItemsChangedOut, responses=NOT_FOUND)
def add_items(name: NameParam, body: ItemsIn, operations: OperationsDep, caller: AdminKey) -> ItemsChangedOut:
    """Add items, all or none (each checked like the attempt field the list holds; a value listed already is
    replaced with its new reason and expiry)."""
    items = [ListItem(i.value, i.reason or body.reason, i.expires_at) for i in body.items]
    added = operations.add_items(name, items, made_by(caller, body.reason))
    return _changed(operations, name, added)


@router.post("/lists/{name}/items/remove", response_model=ItemsChangedOut, responses=NOT_FOUND)
def remove_items(
    name: NameParam, body: ValuesIn, operations: OperationsDep, caller: AdminKey
) -> ItemsChangedOut:
    """Remove the items of these values (values not listed are ignored: ``changed`` counts those removed)."""
    removed = operations.remove_items(name, body.values, made_by(caller, body.reason))
    return _changed(operations, name, removed)


@router.post(
    "/lists/{name}/import", response_model=ItemsChangedOut, responses=NOT_FOUND, openapi_extra=CSV_BODY
)
async def import_items(
    name: NameParam, reason: ReasonQuery, request: Request, operations: OperationsDep, caller: AdminKey
) -> ItemsChangedOut:
    """Import items from a CSV body, all or nothing: every problem is named by its row (1: the first record
    after the header) and column, and then nothing is imported."""
    text = await request.body()
    return await run_in_threadpool(_import, operations, name, text, reason, caller)


def _import(
    operations: Operations, name: str, text: bytes, reason: str, caller: Principal
) -> ItemsChangedOut:
    info = operations.store.list_info(name)
    with tempfile.TemporaryDirectory(prefix="riskgate-import-") as directory:
        path = FilePath(directory) / f"{name}.csv"
        path.write_bytes(text)
        try:
            items = read_items(path, info.field, operations.fields, reason)
        except ListImportError as error:  # the message names the upload, not a server path
            raise ListImportError(str(error).replace(str(path), "the CSV body")) from None
    added = operations.add_items(name, items, made_by(caller, reason))
    return _changed(operations, name, added)


@router.get("/lists/{name}/log", response_model=ListLogOut, responses=NOT_FOUND)
def list_log(
    name: NameParam, operations: OperationsDep, _: AdminKey, offset: Offset = 0, limit: Limit = 100
) -> ListLogOut:
    """A page of the list's change log, the newest first: created, items added and removed, deleted."""
    entries = operations.store.item_log(name, offset, limit)
    return ListLogOut(list_name=name, entries=[LogEntryOut.of(entry) for entry in entries])


def _changed(operations: Operations, name: str, changed: int) -> ItemsChangedOut:
    store = operations.store
    return ItemsChangedOut(
        list_name=name, changed=changed, items=store.list_info(name).items, version=store.version()
    )
