"""A loopback GLPI 10 speaking the legacy REST API (`apirest.php`) over real HTTP, backed by generated data.

Used by the demo, the integration tests and the 100k-ticket benchmark. It follows GLPI 10.0's `API.php` /
`APIRest.php` code paths (see /work/shared/reference/glpi-api.md), traps included:

- sessions: `initSession` with `Authorization: user_token …` (or Basic, disabled by default), `Session-Token`
  afterwards, optional `App-Token`; idle expiry → 401 `ERROR_SESSION_TOKEN_INVALID`; errors are `[code, message]`;
- lists: `range` (default `0-(list_limit-1)`, but `Content-Range` reports one more when no range was sent: the
  10.x off-by-one), 206/200, `ERROR_RANGE_EXCEED_TOTAL`, `sort` by column, `is_deleted` = trash only, templates
  not filtered, HATEOAS `links`, sub-item lists paginated like any list (default 15 followups!);
- `/search`: criteria with GLPI's quirks (`morethan` strict on dates; on numbers the operator goes in the value:
  `contains` `>100`; a bare number means equality), `forcedisplay`, dropdowns as names, no `data` key and
  `"0--1/0"` when nothing matches;
- writes: `{"input": …}` single or bulk, 201/207/400 shapes, text HTML-entity-encoded on store exactly once
  (GLPI 10's sanitiser, already-encoded input kept), `date_mod`/`users_id_lastupdater` bumps, a requester's
  followup reopens a solved/pending ticket (`needReopen`: a technician's does not), a solution refused on a solved
  ticket, assignment moving New → Processing, `_actors` on update replacing every role (omitted roles lose their
  actors), status changes stamping or clearing `solvedate`/`closedate`, trash vs purge.

Simplified or not simulated: the `X-GLPI-Sanitized-Content: false` header is not implemented (content always
comes back encoded, GLPI 10's default); no profiles or rights (every account sees everything, private followups
included; only the active entities restrict what is visible); a closed ticket refuses followups unless
`add_reopen` is set; suppliers, validations and costs exist only as empty tables; `with_*`, `add_keys_names` and
`get_sha1` are ignored; uploads (multipart), meta criteria, `AllAssets` and `giveItems` are refused or ignored;
`searchText` on an unknown column is a 400 (GLPI 10 fails in SQL). Text search is case-insensitive but not
accent-insensitive. GLPI's list sort has no tie-breaker; here ties are always in id order, so paging is stable
where a real GLPI may shuffle rows that share a `date_mod`.

Searches of the shapes a sync issues (one `morethan`/`lessthan` or numeric `>N` criterion on the sort's column, or a
criterion matching every row, sorted ascending on one column) are answered from sorted indexes by bisection, as
MySQL answers them from its indexes, instead of filtering and sorting every row; the answers are the same
(`GlpiSimulator.indexed_search = False` forces the general path).

Tests drive it in-process (`with GlpiSimulator(tickets=40) as sim: … sim.url`), inject faults (`fail_next`) and act
as humans in GLPI (`add_followup`, `set_status`, `touch`, …). The benchmark runs it as a process:
`python -m simulators.glpi.simulator --tickets 100000` prints the base URL once it is ready and serves until
SIGTERM/SIGINT. With `--control`, the process also reads commands on stdin, one a line, and answers each with one
JSON line on stdout (after the URL): `touch FRACTION [SEED]` runs `touch` → `{"touched": N}`; end of input stops
the server, so a simulator never outlives the benchmark that drives it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import hashlib
import heapq
import html
import json
import random
import re
import secrets
import signal
import sys
import threading
import time
import uuid
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, formatdate
from operator import itemgetter
from typing import Any
from urllib.parse import parse_qsl, quote

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from simulators._serve import LoopbackServer, answer_commands
from simulators.glpi.simdata import (
    ASSIGN,
    ASSIGNED,
    AUTOCLOSE_NEVER,
    AUTOCLOSE_PARENT,
    CLOSED,
    INCOMING,
    OBSERVER,
    PRIORITY_MATRIX,
    REQUESTER,
    SCHEMAS,
    SOLUTION_ACCEPTED,
    SOLUTION_REFUSED,
    SOLUTION_WAITING,
    SOLVED,
    TIMELINE_LEFT,
    TIMELINE_RIGHT,
    TREE_SEPARATOR,
    WAITING,
    DataOptions,
    Dataset,
    ServerTime,
    Table,
    break_ticket,
    compute_priority,
    decode_html,
    foreign_key_itemtype,
    generate,
    sanitize,
)

API_PATH = "/apirest.php"
#: API tokens of the default accounts: the hub's dedicated connector account and a human technician.
HUB_USER_TOKEN, TECH_USER_TOKEN = "itsm-hub-user-token", "tech-user-token"
DEFAULT_USER_TOKENS = {HUB_USER_TOKEN: "itsm-hub", TECH_USER_TOKEN: "tech"}
GLPI_VERSION = "10.0.15"
#: What `Accept-Range` advertises: PHP's max_input_vars, not a page-size limit.
MAX_INPUT_VARS = 1000
JSON_TYPE = "application/json; charset=UTF-8"
_CORS = {
    "Access-Control-Allow-Methods": "PUT, GET, POST, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "origin, content-type, accept, session-token, authorization, app-token",
}
_NO_CACHE = {"Expires": "Mon, 26 Jul 1997 05:00:00 GMT", "Cache-Control": "no-cache, must-revalidate"}
_ITIL = {"Ticket"}
_ITEMTYPES_BY_LOWER = {name.lower(): name for name in SCHEMAS}


class ApiError(Exception):
    """An error answer: GLPI's `[code, message]` body with the HTTP status (`API::returnError`)."""

    def __init__(self, status: int, code: str, message: Any, *, doc: bool = True) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.doc = status, code, message, doc


class Refused(Exception):
    """A write GLPI's business rules refuse (`add`/`update` returning false); the message is GLPI's."""


class SimulatorError(ValueError):
    """A test helper asked for something GLPI would refuse or that does not exist."""


@dataclass
class Session:
    """One API session (`$_SESSION`), or the identity a test helper acts as."""

    token: str
    user_id: int
    login: str
    groups: frozenset[int]
    last_seen: float
    active_entity: int = 0
    recursive: bool = True
    #: Visible entities; None = all of them (root, recursive).
    entities: frozenset[int] | None = None


# --- PHP request parameters -----------------------------------------------------------------------------------

_BRACKETS = re.compile(r"\[([^\]]*)\]")


def parse_php_query(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """`parse_str`: `criteria[0][field]=19&forcedisplay[]=2` → nested dicts (PHP arrays keep insertion order)."""
    result: dict[str, Any] = {}
    for raw_key, value in pairs:
        name, bracket, rest = raw_key.partition("[")
        if not name:
            continue
        keys = [name, *_BRACKETS.findall(bracket + rest)] if bracket else [name]
        node = result
        for depth, key in enumerate(keys):
            if key == "":
                key = str(1 + max((int(k) for k in node if k.lstrip("-").isdigit()), default=-1))
            if depth == len(keys) - 1:
                node[key] = value
            else:
                child = node.get(key)
                if not isinstance(child, dict):
                    child = node[key] = {}
                node = child
    return result


def php_values(value: Any) -> list[Any]:
    """A PHP array's values in order (a JSON list, a parsed query array), or the scalar alone."""
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, list):
        return value
    return [value]


def php_bool(value: Any) -> bool:
    """PHP truthiness (`"0"` and `""` are false)."""
    if isinstance(value, str):
        return value not in ("", "0")
    return bool(value)


def php_int(value: Any) -> int:
    """`(int)$value`: leading digits of a string, 0 otherwise."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return int(value)
    match = re.match(r"\s*([+-]?\d+)", str(value)) if value is not None else None
    return int(match.group(1)) if match else 0


def php_array(values: dict[int, Any]) -> Any:
    """How `json_encode` writes a PHP array keyed by ints: a list when keys are 0..n-1 in order, else an object."""
    if list(values) == list(range(len(values))):
        return list(values.values())
    return {str(key): value for key, value in values.items()}


# --- fault injection ------------------------------------------------------------------------------------------


@dataclass
class _Fault:
    method: str
    pattern: re.Pattern[str]
    status: int | None
    body: Any
    headers: dict[str, str]
    remaining: int
    delay: float


class _Faults:
    """Scripted answers for the next matching requests (thread-safe)."""

    def __init__(self) -> None:
        self._rules: list[_Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: _Fault) -> None:
        with self._lock:
            self._rules.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def take(self, method: str, target: str) -> _Fault | None:
        """The first rule matching this request, used up once (None when none matches)."""
        with self._lock:
            for rule in self._rules:
                if rule.remaining > 0 and rule.method in ("*", method) and rule.pattern.search(target):
                    rule.remaining -= 1
                    return rule
            self._rules = [rule for rule in self._rules if rule.remaining > 0]
        return None


# --- search options -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchOption:
    """One search option: what `/search` filters, sorts and displays for its id.

    kind: `column` (a column of the row), `dropdown` (a foreign key shown by name), `user` (a foreign key to a
    user shown by login), `actors` (the ticket's actors of `role`, several values), `count` (children).
    """

    id: int
    name: str
    table: str
    field: str
    datatype: str
    kind: str = "column"
    column: str | None = None
    target: str | None = None
    role: int | None = None
    uid: str = ""


def _ticket_options() -> list[SearchOption]:
    t = "glpi_tickets"
    return [
        SearchOption(1, "Title", t, "name", "itemlink", column="name", uid="Ticket.name"),
        SearchOption(2, "ID", t, "id", "number", column="id", uid="Ticket.id"),
        SearchOption(3, "Priority", t, "priority", "specific", column="priority", uid="Ticket.priority"),
        SearchOption(4, "Requester", "glpi_users", "name", "dropdown", "actors", target="User", role=REQUESTER,
                     uid="Ticket._users_id_requester.Ticket_User.User.name"),
        SearchOption(5, "Technician", "glpi_users", "name", "dropdown", "actors", target="User", role=ASSIGN,
                     uid="Ticket._users_id_assign.Ticket_User.User.name"),
        SearchOption(7, "Category", "glpi_itilcategories", "completename", "dropdown", "dropdown",
                     column="itilcategories_id", target="ITILCategory", uid="Ticket.ITILCategory.completename"),
        SearchOption(8, "Technician group", "glpi_groups", "completename", "dropdown", "actors", target="Group",
                     role=ASSIGN, uid="Ticket._groups_id_assign.Group_Ticket.Group.completename"),
        SearchOption(9, "Request source", "glpi_requesttypes", "name", "dropdown", "dropdown",
                     column="requesttypes_id", target="RequestType", uid="Ticket.RequestType.name"),
        SearchOption(10, "Urgency", t, "urgency", "specific", column="urgency", uid="Ticket.urgency"),
        SearchOption(11, "Impact", t, "impact", "specific", column="impact", uid="Ticket.impact"),
        SearchOption(12, "Status", t, "status", "specific", column="status", uid="Ticket.status"),
        SearchOption(14, "Type", t, "type", "specific", column="type", uid="Ticket.type"),
        SearchOption(15, "Opening date", t, "date", "datetime", column="date", uid="Ticket.date"),
        SearchOption(16, "Closing date", t, "closedate", "datetime", column="closedate", uid="Ticket.closedate"),
        SearchOption(17, "Resolution date", t, "solvedate", "datetime", column="solvedate", uid="Ticket.solvedate"),
        SearchOption(18, "Time to resolve", t, "time_to_resolve", "datetime", column="time_to_resolve",
                     uid="Ticket.time_to_resolve"),
        SearchOption(19, "Last update", t, "date_mod", "datetime", column="date_mod", uid="Ticket.date_mod"),
        SearchOption(21, "Description", t, "content", "text", column="content", uid="Ticket.content"),
        SearchOption(22, "Writer", "glpi_users", "name", "dropdown", "user", column="users_id_recipient",
                     target="User", uid="Ticket.users_id_recipient.User.name"),
        SearchOption(27, "Number of followups", "glpi_itilfollowups", "id", "count", "count", target="ITILFollowup",
                     uid="Ticket.ITILFollowup.id"),
        SearchOption(45, "Total duration", t, "actiontime", "actiontime", column="actiontime",
                     uid="Ticket.actiontime"),
        SearchOption(64, "Last edit by", "glpi_users", "name", "dropdown", "user", column="users_id_lastupdater",
                     target="User", uid="Ticket.users_id_lastupdater.User.name"),
        SearchOption(65, "Watcher group", "glpi_groups", "completename", "dropdown", "actors", target="Group",
                     role=OBSERVER, uid="Ticket._groups_id_observer.Group_Ticket.Group.completename"),
        SearchOption(66, "Watcher", "glpi_users", "name", "dropdown", "actors", target="User", role=OBSERVER,
                     uid="Ticket._users_id_observer.Ticket_User.User.name"),
        SearchOption(71, "Requester group", "glpi_groups", "completename", "dropdown", "actors", target="Group",
                     role=REQUESTER, uid="Ticket._groups_id_requester.Group_Ticket.Group.completename"),
        SearchOption(80, "Entity", "glpi_entities", "completename", "dropdown", "dropdown", column="entities_id",
                     target="Entity", uid="Ticket.Entity.completename"),
        SearchOption(83, "Location", "glpi_locations", "completename", "dropdown", "dropdown",
                     column="locations_id", target="Location", uid="Ticket.Location.completename"),
        SearchOption(121, "Creation date", t, "date_creation", "datetime", column="date_creation",
                     uid="Ticket.date_creation"),
        SearchOption(155, "Time to own", t, "time_to_own", "datetime", column="time_to_own",
                     uid="Ticket.time_to_own"),
    ]  # fmt: skip


def _asset_options(itemtype: str) -> list[SearchOption]:
    t = SCHEMAS[itemtype].table
    lower = itemtype.lower()
    return [
        SearchOption(1, "Name", t, "name", "itemlink", column="name", uid=f"{itemtype}.name"),
        SearchOption(2, "ID", t, "id", "number", column="id", uid=f"{itemtype}.id"),
        SearchOption(3, "Location", "glpi_locations", "completename", "dropdown", "dropdown",
                     column="locations_id", target="Location", uid=f"{itemtype}.Location.completename"),
        SearchOption(4, "Type", f"glpi_{lower}types", "name", "dropdown", "dropdown", column=f"{lower}types_id",
                     target=f"{itemtype}Type", uid=f"{itemtype}.{itemtype}Type.name"),
        SearchOption(5, "Serial number", t, "serial", "string", column="serial", uid=f"{itemtype}.serial"),
        SearchOption(6, "Inventory number", t, "otherserial", "string", column="otherserial",
                     uid=f"{itemtype}.otherserial"),
        SearchOption(16, "Comments", t, "comment", "text", column="comment", uid=f"{itemtype}.comment"),
        SearchOption(19, "Last update", t, "date_mod", "datetime", column="date_mod", uid=f"{itemtype}.date_mod"),
        SearchOption(23, "Manufacturer", "glpi_manufacturers", "name", "dropdown", "dropdown",
                     column="manufacturers_id", target="Manufacturer", uid=f"{itemtype}.Manufacturer.name"),
        SearchOption(31, "Status", "glpi_states", "completename", "dropdown", "dropdown", column="states_id",
                     target="State", uid=f"{itemtype}.State.completename"),
        SearchOption(40, "Model", f"glpi_{lower}models", "name", "dropdown", "dropdown", column=f"{lower}models_id",
                     target=f"{itemtype}Model", uid=f"{itemtype}.{itemtype}Model.name"),
        SearchOption(70, "User", "glpi_users", "name", "dropdown", "user", column="users_id", target="User",
                     uid=f"{itemtype}.User.name"),
        SearchOption(71, "Group", "glpi_groups", "completename", "dropdown", "dropdown", column="groups_id",
                     target="Group", uid=f"{itemtype}.Group.completename"),
        SearchOption(80, "Entity", "glpi_entities", "completename", "dropdown", "dropdown", column="entities_id",
                     target="Entity", uid=f"{itemtype}.Entity.completename"),
        SearchOption(121, "Creation date", t, "date_creation", "datetime", column="date_creation",
                     uid=f"{itemtype}.date_creation"),
    ]  # fmt: skip


def _generic_options(itemtype: str) -> list[SearchOption]:
    """Name, id, dates and entity for itemtypes without a tailored list (enough to find ids by date)."""
    schema = SCHEMAS[itemtype]
    t, cols = schema.table, set(schema.columns)
    options = [SearchOption(2, "ID", t, "id", "number", column="id", uid=f"{itemtype}.id")]
    if "name" in cols:
        options.append(SearchOption(1, "Name", t, "name", "itemlink", column="name", uid=f"{itemtype}.name"))
    if "date_mod" in cols:
        options.append(
            SearchOption(19, "Last update", t, "date_mod", "datetime", column="date_mod", uid=f"{itemtype}.date_mod")
        )
    if "date_creation" in cols:
        options.append(
            SearchOption(
                121,
                "Creation date",
                t,
                "date_creation",
                "datetime",
                column="date_creation",
                uid=f"{itemtype}.date_creation",
            )
        )
    if "entities_id" in cols:
        options.append(
            SearchOption(
                80,
                "Entity",
                "glpi_entities",
                "completename",
                "dropdown",
                "dropdown",
                column="entities_id",
                target="Entity",
                uid=f"{itemtype}.Entity.completename",
            )
        )
    return options


def search_options(itemtype: str) -> dict[int, SearchOption]:
    """The search options `/search/:itemtype` understands, by id."""
    if itemtype == "Ticket":
        options = _ticket_options()
    elif itemtype in ("Computer", "Monitor", "Printer", "NetworkEquipment"):
        options = _asset_options(itemtype)
    else:
        options = _generic_options(itemtype)
    return {option.id: option for option in options}


#: Columns shown when no `forcedisplay` is given (the install's display preferences).
_DEFAULT_DISPLAY = {"Ticket": (12, 19, 15, 3, 4, 5, 7)} | {
    asset: (31, 23, 3, 19, 4, 40) for asset in ("Computer", "Monitor", "Printer", "NetworkEquipment")
}
_STATUS_GROUPS = {
    "notold": {1, 2, 3, 4}, "notclosed": {1, 2, 3, 4, 5}, "old": {5, 6}, "process": {2, 3},
    "all": {1, 2, 3, 4, 5, 6}, "new": {1},
}  # fmt: skip


# --- the write semantics --------------------------------------------------------------------------------------


class _Model:
    """GLPI's business rules on the dataset: adds, updates and deletes with their side effects.

    Not thread-safe by itself: the simulator calls it under its lock. Every write bumps `version`, which keys the
    read caches.
    """

    def __init__(self, data: Dataset, time: ServerTime, list_limit: int) -> None:
        self.data = data
        self.time = time
        self.list_limit = list_limit
        self.version = 0
        self.search_indexes = _SearchIndexes(self)

    # - reads

    def table(self, itemtype: str) -> Table:
        return self.data.tables[itemtype]

    def entity_restricted(self, itemtype: str) -> bool:
        """Whether the active entities restrict which rows of `itemtype` a session sees (see `visible`)."""
        table = self.table(itemtype)
        return itemtype == "Entity" or (table.schema.entity_assign and "entities_id" in table.pos)

    def visible(self, session: Session, itemtype: str, row: tuple[Any, ...]) -> bool:
        """Whether the row is in the session's active entities (for entity-assigned itemtypes)."""
        if session.entities is None or not self.entity_restricted(itemtype):
            return True
        if itemtype == "Entity":
            return row[0] in session.entities
        table = self.table(itemtype)
        entity = row[table.pos["entities_id"]]
        if entity in session.entities:
            return True
        # A recursive row of a parent entity is visible below it (`getEntitiesRestrictRequest`).
        recursive = table.pos.get("is_recursive")
        return bool(recursive is not None and row[recursive] and self._is_ancestor(entity, session.entities))

    def _is_ancestor(self, entity: Any, entities: frozenset[int]) -> bool:
        return any(entity in self.data.entity_ancestors(active) for active in entities)

    def name_of(self, itemtype: str, row_id: Any) -> str | None:
        """A dropdown's display name: completename for trees, login for users, name otherwise."""
        table = self.data.tables.get(itemtype)
        row = table.get(row_id) if table is not None and isinstance(row_id, int) else None
        if row is None:
            return None
        column = "completename" if "completename" in table.pos else "name"
        return row[table.pos[column]]

    def ticket_actors(self, ticket_id: int, kind: str, role: int | None = None) -> list[tuple[Any, ...]]:
        table = self.table("Ticket_User" if kind == "User" else "Group_Ticket")
        rows = table.where(tickets_id=ticket_id)
        return rows if role is None else [row for row in rows if row[table.pos["type"]] == role]

    def has_assignee(self, ticket_id: int) -> bool:
        return any(self.ticket_actors(ticket_id, kind, ASSIGN) for kind in ("User", "Group")) or bool(
            [row for row in self.table("Supplier_Ticket").where(tickets_id=ticket_id) if row[3] == ASSIGN]
        )

    def user_groups(self, user_id: int) -> frozenset[int]:
        table = self.table("Group_User")
        return frozenset(row[table.pos["groups_id"]] for row in table.where(users_id=user_id))

    # - writes: entry points

    def add(self, itemtype: str, raw: dict[str, Any], actor: Session) -> int:
        """Create a row the way `CommonDBTM::add` does (input sanitised, defaults, hooks). Raises `Refused`."""
        table = self.table(itemtype)
        values = sanitize(dict(raw))
        values.pop("id", None)
        if "entities_id" not in values:
            values["entities_id"] = actor.active_entity
        hook = getattr(self, f"_prepare_add_{itemtype.lower()}", None)
        extras: dict[str, Any] = {}
        if hook is not None:
            values, extras = hook(values, actor)
        row = self._columns(table, values)
        self._tree_name(table, row, None)
        now = self.time.now()
        for column in ("date_creation", "date_mod"):
            if column in table.pos and row.get(column) is None:
                row[column] = now
        new_id = table.add(row)
        self.version += 1
        post = getattr(self, f"_post_add_{itemtype.lower()}", None)
        if post is not None:
            post(new_id, extras, actor)
        return new_id

    def update(self, itemtype: str, raw: dict[str, Any], actor: Session) -> bool | None:
        """Change a row like `CommonDBTM::update`: None when the id does not exist, True otherwise (also when
        nothing changed; then nothing is written and `date_mod` stays). Raises `Refused`."""
        table = self.table(itemtype)
        row_id = php_int(raw.get("id"))
        if table.get(row_id) is None:
            return None
        values = sanitize(dict(raw))
        values.pop("id", None)
        hook = getattr(self, f"_prepare_update_{itemtype.lower()}", None)
        extras: dict[str, Any] = {}
        if hook is not None:
            values, extras = hook(row_id, values, actor)
        columns = self._columns(table, values)
        self._tree_name(table, columns, table.rows[row_id])
        changes = self._changes(table, row_id, columns)
        if changes:
            # Only a real change is written, with its date and author (an identical update changes nothing).
            if "date_mod" in table.pos and "date_mod" not in values:
                changes["date_mod"] = self.time.now()
            for author in ("users_id_lastupdater", "users_id_editor"):
                if author in table.pos:
                    changes[author] = actor.user_id
            table.update(row_id, changes)
            self.version += 1
        post = getattr(self, f"_post_update_{itemtype.lower()}", None)
        if post is not None:
            post(row_id, changes, extras, actor)
        return True

    def delete(self, itemtype: str, row_id: int, actor: Session, *, force_purge: bool) -> bool | None:
        """Trash (is_deleted = 1) or purge a row (`CommonDBTM::delete`); None when the id does not exist.

        Rows without a trash bin, templates, and non-dynamic rows of types that use the trash only to lock
        inventoried rows are always purged (GLPI's rule)."""
        table = self.table(itemtype)
        row = table.get(row_id)
        if row is None:
            return None
        pos = table.pos
        purge = (
            force_purge
            or "is_deleted" not in pos
            or ("is_template" in pos and row[pos["is_template"]])
            or (table.schema.trash_only_dynamic and not row[pos["is_dynamic"]])
        )
        if not purge:
            changes: dict[str, Any] = {"is_deleted": 1}
            if "date_mod" in pos:
                changes["date_mod"] = self.time.now()
            table.update(row_id, changes)
            self.version += 1
            return True
        self.purge(itemtype, row_id, actor)
        return True

    def purge(self, itemtype: str, row_id: int, actor: Session) -> None:
        """Remove a row for good, with the rows that only make sense with it (no tombstone anywhere)."""
        table = self.table(itemtype)
        row = table.remove(row_id)
        if row is None:
            return
        self.version += 1
        if itemtype == "Ticket":
            for child in ("ITILFollowup", "ITILSolution", "Document_Item"):
                for child_row in self.table(child).where(items_id=row_id, itemtype="Ticket"):
                    self.table(child).remove(child_row[0])
            for child in (
                "TicketTask",
                "Ticket_User",
                "Group_Ticket",
                "Supplier_Ticket",
                "Item_Ticket",
                "TicketValidation",
                "TicketCost",
                "Problem_Ticket",
                "Change_Ticket",
            ):
                for child_row in self.table(child).where(tickets_id=row_id):
                    self.table(child).remove(child_row[0])
            return
        hook = getattr(self, f"_post_purge_{itemtype.lower()}", None)
        if hook is not None:
            hook(row, actor)
        for child in ("Item_Ticket", "Item_SoftwareVersion", "Document_Item", "Infocom", "NetworkPort"):
            for child_row in self.table(child).where(items_id=row_id, itemtype=itemtype):
                self.table(child).remove(child_row[0])
                if child == "Item_Ticket":
                    self.touch_ticket(child_row[self.table(child).pos["tickets_id"]], actor)
        if itemtype == "Document":
            for link in self.table("Document_Item").where(documents_id=row_id):
                self.purge("Document_Item", link[0], actor)
        if itemtype == "User":
            for child in ("UserEmail", "Group_User"):
                for child_row in self.table(child).where(users_id=row_id):
                    self.table(child).remove(child_row[0])

    # - helpers shared by the hooks

    def _columns(self, table: Table, values: dict[str, Any]) -> dict[str, Any]:
        """Input keys that are columns, coerced to the column's type (GLPI/MySQL would refuse the rest)."""
        row: dict[str, Any] = {}
        for column, value in values.items():
            if column not in table.pos or column == "id":
                continue
            row[column] = _coerce(table, column, value)
        return row

    def _tree_name(self, table: Table, values: dict[str, Any], current: tuple[Any, ...] | None) -> None:
        """Tree dropdowns keep `completename` = parent's completename + ' > ' (encoded) + name, and `level`."""
        fk = table.schema.tree_fk
        if fk is None or not ({"name", fk} & values.keys()):
            return
        name = values.get("name", current[table.pos["name"]] if current else None) or ""
        parent_id = values.get(fk, current[table.pos[fk]] if current else 0)
        parent = table.get(parent_id) if parent_id is not None and parent_id != (current or (None,))[0] else None
        if parent is None:
            values["completename"], values["level"] = name, 1
        else:
            values["completename"] = f"{parent[table.pos['completename']]}{TREE_SEPARATOR}{name}"
            values["level"] = parent[table.pos["level"]] + 1

    @staticmethod
    def _changes(table: Table, row_id: int, values: dict[str, Any]) -> dict[str, Any]:
        current = table.rows[row_id]
        return {column: value for column, value in values.items() if current[table.pos[column]] != value}

    def touch_ticket(self, ticket_id: int, actor: Session) -> None:
        """`CommonITILObject::updateDateMod`: date_mod = now and last updater = the acting user, written directly."""
        tickets = self.table("Ticket")
        if ticket_id in tickets.rows:
            tickets.update(ticket_id, {"date_mod": self.time.now(), "users_id_lastupdater": actor.user_id})
            self.version += 1

    def _ticket(self, ticket_id: Any) -> tuple[Any, ...]:
        row = self.table("Ticket").get(php_int(ticket_id))
        if row is None:
            raise Refused("You don't have permission to perform this action.")
        return row

    def _ticket_status(self, ticket_id: int) -> int:
        tickets = self.table("Ticket")
        return tickets.rows[ticket_id][tickets.pos["status"]]

    def set_ticket(self, ticket_id: int, values: dict[str, Any], actor: Session) -> None:
        """`$ticket->update([...])` from inside GLPI (a hook), with the ticket's own rules."""
        self.update("Ticket", {"id": ticket_id, **values}, actor)

    def _take_into_account(self, ticket_id: int) -> dict[str, Any]:
        tickets = self.table("Ticket")
        row = tickets.rows[ticket_id]
        if row[tickets.pos["takeintoaccountdate"]]:
            return {}
        now_ts = self.time.now_ts()
        opened = self.time.parse(row[tickets.pos["date"]]) or now_ts
        return {"takeintoaccountdate": self.time.format(now_ts), "takeintoaccount_delay_stat": max(0, now_ts - opened)}

    # - Ticket

    def _prepare_add_ticket(self, values: dict[str, Any], actor: Session) -> tuple[dict[str, Any], dict[str, Any]]:
        if not values.get("content"):
            # The install's default ticket template makes the description mandatory.
            raise Refused("Mandatory fields are not filled. Please correct: Description")
        if not values.get("name"):  # GLPI names the ticket after the first 70 characters of its text
            text = html.unescape(re.sub(r"<[^>]*>", " ", decode_html(values["content"])))
            values["name"] = sanitize(re.sub(r"\s+", " ", text).strip()[:70])
        now = self.time.now()
        values.setdefault("date", now)
        values.setdefault("users_id_recipient", actor.user_id)
        values["users_id_lastupdater"] = actor.user_id
        values.setdefault("requesttypes_id", 1)
        values.setdefault("urgency", 3)
        values.setdefault("impact", 3)
        if "priority" not in values:
            values["priority"] = compute_priority(values["urgency"], values["impact"])
        actors = self._actor_input(values)
        status = php_int(values.get("status", INCOMING)) or INCOMING
        if status not in range(1, 7):
            status = INCOMING
        assigned = any(role == ASSIGN for _, role, *_ in actors)
        if status == INCOMING and assigned and not values.get("_do_not_compute_status"):
            status = ASSIGNED
        values["status"] = status
        if status >= ASSIGNED:
            values.setdefault("takeintoaccountdate", now)
        if status in (SOLVED, CLOSED):
            values.setdefault("solvedate", now)
        if status == CLOSED:
            values.setdefault("closedate", now)
        if status == WAITING:
            values.setdefault("begin_waiting_date", now)
        return values, {"actors": actors}

    def _post_add_ticket(self, ticket_id: int, extras: dict[str, Any], actor: Session) -> None:
        for kind, role, ref, email in extras["actors"]:
            with contextlib.suppress(Refused):  # an unknown actor is skipped; the ticket exists already
                self._add_actor(ticket_id, kind, role, ref, email, actor, from_object=True)

    def _prepare_update_ticket(
        self, ticket_id: int, values: dict[str, Any], actor: Session
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        tickets = self.table("Ticket")
        row = tickets.rows[ticket_id]
        old = {name: row[tickets.pos[name]] for name in ("status", "urgency", "impact", "solvedate", "date")}
        now = self.time.now()
        if "status" in values:
            status = php_int(values["status"])
            if status not in range(1, 7):
                del values["status"]  # not a ticket status: ignored (`isStatusExists`)
            else:
                values["status"] = status
        urgency_changed = "urgency" in values and php_int(values["urgency"]) != old["urgency"]
        impact_changed = "impact" in values and php_int(values["impact"]) != old["impact"]
        # Operator precedence in Ticket::prepareInputForUpdate: a changed urgency always recomputes.
        if urgency_changed or (impact_changed and "priority" not in values):
            values["priority"] = compute_priority(
                values.get("urgency", old["urgency"]), values.get("impact", old["impact"])
            )
        status = values.get("status", old["status"])
        if status != old["status"]:
            values.update(self._status_dates(ticket_id, old, status, now, values))
        extras = {"actors": self._actor_input(values), "replace_roles": "_actors" in values}
        return values, extras

    def _status_dates(
        self, ticket_id: int, old: dict[str, Any], status: int, now: str, values: dict[str, Any]
    ) -> dict[str, Any]:
        """What a status change stamps or clears (solve/close dates, pending time, take-into-account)."""
        changes: dict[str, Any] = {}
        opened = self.time.parse(old["date"])
        now_ts = self.time.now_ts()
        if status in (SOLVED, CLOSED) and old["status"] not in (SOLVED, CLOSED):
            changes["solvedate"] = values.get("solvedate") or now
            changes["solve_delay_stat"] = max(0, now_ts - opened) if opened else 0
        if status == CLOSED:
            changes["closedate"] = values.get("closedate") or now
            changes["close_delay_stat"] = max(0, now_ts - opened) if opened else 0
            if not (old["solvedate"] or changes.get("solvedate")):
                changes["solvedate"] = now
        elif status == SOLVED and old["status"] == CLOSED:
            changes["closedate"] = None
        elif status < SOLVED:
            changes["solvedate"] = changes["closedate"] = None
            changes["solve_delay_stat"] = changes["close_delay_stat"] = 0
        tickets = self.table("Ticket")
        row = tickets.rows[ticket_id]
        if status == WAITING:
            changes["begin_waiting_date"] = now
        elif old["status"] == WAITING:
            began = self.time.parse(row[tickets.pos["begin_waiting_date"]])
            waited = max(0, now_ts - began) if began else 0
            changes["waiting_duration"] = row[tickets.pos["waiting_duration"]] + waited
            changes["begin_waiting_date"] = None
        if old["status"] == INCOMING and status != INCOMING:
            changes.update(self._take_into_account(ticket_id))
        return changes

    def _post_update_ticket(self, ticket_id: int, changes: dict[str, Any], extras: dict[str, Any], actor: Session):
        self._apply_actors(ticket_id, extras["actors"], actor, replace=extras.get("replace_roles", False))
        new_status = self._ticket_status(ticket_id)
        solutions = self.table("ITILSolution")
        if "status" in changes:
            for solution in solutions.where(items_id=ticket_id, itemtype="Ticket"):
                if solution[solutions.pos["status"]] != SOLUTION_WAITING:
                    continue
                if new_status == CLOSED:
                    self._approve(solution[0], SOLUTION_ACCEPTED, actor)
                elif new_status < SOLVED:
                    self._approve(solution[0], SOLUTION_REFUSED, actor)

    def _approve(self, solution_id: int, status: int, actor: Session) -> None:
        """A waiting solution accepted (the ticket closed) or refused (the ticket reopened)."""
        changes = {"status": status, "date_approval": self.time.now(), "users_id_approval": actor.user_id}
        self.table("ITILSolution").update(solution_id, changes)
        self.version += 1

    # - actors

    def _actor_input(self, values: dict[str, Any]) -> list[tuple[str, int, int, str]]:
        """(kind, role, id, alternative e-mail) from `_users_id_<role>` / `_groups_id_<role>` and `_actors`."""
        found: list[tuple[str, int, int, str]] = []
        roles = {"requester": REQUESTER, "assign": ASSIGN, "observer": OBSERVER}
        for role_name, role in roles.items():
            for kind, key in (("User", f"_users_id_{role_name}"), ("Group", f"_groups_id_{role_name}")):
                for ref in php_values(values.get(key, [])):
                    if php_int(ref) > 0:
                        found.append((kind, role, php_int(ref), ""))
        actors = values.get("_actors")
        if isinstance(actors, dict):
            for role_name, role in roles.items():
                for entry in php_values(actors.get(role_name, [])):
                    if not isinstance(entry, dict):
                        continue
                    kind = entry.get("itemtype", "User")
                    if kind not in ("User", "Group"):
                        continue  # suppliers are not simulated
                    email = str(entry.get("alternative_email") or "")
                    found.append((kind, role, php_int(entry.get("items_id")), email))
        return found

    def _apply_actors(
        self, ticket_id: int, wanted: list[tuple[str, int, int, str]], actor: Session, *, replace: bool
    ) -> None:
        """Add the wanted actors; with `replace` (an `_actors` update), drop every actor not listed — a role left
        out of `_actors` loses all its actors (`CommonITILObject::updateActors`). New actors go in first, so a
        replaced assignee never leaves the ticket unassigned in between."""
        for kind, role, ref, email in wanted:
            with contextlib.suppress(Refused):  # duplicates and unknown ids are skipped, as GLPI does
                self._add_actor(ticket_id, kind, role, ref, email, actor, from_object=False)
        if replace:
            keep = {(kind, role, ref, email if not ref else "") for kind, role, ref, email in wanted}
            for kind in ("User", "Group"):
                table = self.table("Ticket_User" if kind == "User" else "Group_Ticket")
                fk = "users_id" if kind == "User" else "groups_id"
                for row in self.ticket_actors(ticket_id, kind):
                    ref = row[table.pos[fk]]
                    email = row[table.pos["alternative_email"]] if kind == "User" and not ref else ""
                    if (kind, row[table.pos["type"]], ref, email) not in keep:
                        self._remove_actor(table, row[0], actor)

    def _add_actor(
        self, ticket_id: int, kind: str, role: int, ref: int, email: str, actor: Session, *, from_object: bool
    ) -> int:
        itemtype = "Ticket_User" if kind == "User" else "Group_Ticket"
        values: dict[str, Any] = {
            "tickets_id": ticket_id,
            "type": role,
            ("users_id" if kind == "User" else "groups_id"): ref,
        }
        if kind == "User":
            values["alternative_email"] = email
        if from_object:
            values["_from_object"] = True
        return self.add(itemtype, values, actor)

    def _remove_actor(self, table: Table, row_id: int, actor: Session) -> None:
        row = table.remove(row_id)
        if row is not None:
            self.version += 1
            self._after_actor_removed(row[table.pos["tickets_id"]], actor)

    def _after_actor_removed(self, ticket_id: int, actor: Session) -> None:
        """`CommonITILActor::post_deleteFromDB`: no assignee left on an open ticket → back to New (an update:
        nothing bumps when it already was New); otherwise the ticket's date_mod moves."""
        if ticket_id not in self.table("Ticket").rows:
            return
        status = self._ticket_status(ticket_id)
        if not self.has_assignee(ticket_id) and status not in (SOLVED, CLOSED):
            self.set_ticket(ticket_id, {"status": INCOMING}, actor)
        else:
            self.touch_ticket(ticket_id, actor)

    def _prepare_actor(self, values: dict[str, Any], kind: str) -> dict[str, Any]:
        self._ticket(values.get("tickets_id"))
        table = self.table("Ticket_User" if kind == "User" else "Group_Ticket")
        fk = "users_id" if kind == "User" else "groups_id"
        ref = php_int(values.get(fk))
        role = php_int(values.get("type"))
        if role not in (REQUESTER, ASSIGN, OBSERVER):
            raise Refused("")
        if ref > 0:
            if self.table(kind).get(ref) is None:
                raise Refused("")
            if any(row[table.pos[fk]] == ref for row in self.ticket_actors(php_int(values["tickets_id"]), kind, role)):
                raise Refused("")  # already an actor in that role: refused without a message
        elif kind == "Group" or not values.get("alternative_email"):
            raise Refused("")
        if kind == "User":
            email = str(values.get("alternative_email") or "")
            if email and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", decode_html(email)):
                raise Refused("Invalid email address")
        return values

    def _prepare_add_ticket_user(self, values: dict[str, Any], actor: Session) -> tuple[dict[str, Any], dict]:
        return self._prepare_actor(values, "User"), {"from_object": values.pop("_from_object", False)}

    def _prepare_add_group_ticket(self, values: dict[str, Any], actor: Session) -> tuple[dict[str, Any], dict]:
        return self._prepare_actor(values, "Group"), {"from_object": values.pop("_from_object", False)}

    def _after_actor_added(self, itemtype: str, row_id: int, extras: dict[str, Any], actor: Session) -> None:
        """`CommonITILActor::post_addItem`: the ticket's date_mod moves; an assignee on a New ticket makes it
        Processing (assigned) — unless the ticket itself is adding its own actors."""
        table = self.table(itemtype)
        row = table.rows[row_id]
        ticket_id = row[table.pos["tickets_id"]]
        changes: dict[str, Any] = {}
        if row[table.pos["type"]] == ASSIGN:
            changes.update(self._take_into_account(ticket_id))
        self.touch_ticket(ticket_id, actor)
        if changes:
            self.table("Ticket").update(ticket_id, changes)
        if (
            row[table.pos["type"]] == ASSIGN
            and not extras.get("from_object")
            and self._ticket_status(ticket_id) == INCOMING
        ):
            self.set_ticket(ticket_id, {"status": ASSIGNED}, actor)

    def _post_add_ticket_user(self, row_id: int, extras: dict[str, Any], actor: Session) -> None:
        self._after_actor_added("Ticket_User", row_id, extras, actor)

    def _post_add_group_ticket(self, row_id: int, extras: dict[str, Any], actor: Session) -> None:
        self._after_actor_added("Group_Ticket", row_id, extras, actor)

    def _post_update_ticket_user(self, row_id: int, changes: dict, extras: dict, actor: Session) -> None:
        if changes:
            self.touch_ticket(self.table("Ticket_User").rows[row_id][1], actor)

    def _post_update_group_ticket(self, row_id: int, changes: dict, extras: dict, actor: Session) -> None:
        if changes:
            self.touch_ticket(self.table("Group_Ticket").rows[row_id][1], actor)

    def _post_purge_ticket_user(self, row: tuple[Any, ...], actor: Session) -> None:
        self._after_actor_removed(row[1], actor)

    def _post_purge_group_ticket(self, row: tuple[Any, ...], actor: Session) -> None:
        self._after_actor_removed(row[1], actor)

    # - timeline: followups, solutions, tasks

    def _prepare_add_itilfollowup(self, values: dict[str, Any], actor: Session) -> tuple[dict[str, Any], dict]:
        if not values.get("content") and "add_close" not in values and "add_reopen" not in values:
            raise Refused("You can't add a followup without description")
        if "add_close" in values and not values.get("content"):
            values["content"] = "Solution approved"
        if values.get("itemtype") not in _ITIL:
            raise Refused("You don't have permission to perform this action.")
        ticket = self._ticket(values.get("items_id"))
        tickets = self.table("Ticket")
        if ticket[tickets.pos["status"]] == CLOSED and not php_bool(values.get("add_reopen")):
            # A closed ticket takes no followup unless it is being reopened (simplified rights check).
            raise Refused("You don't have permission to perform this action.")
        if "add_reopen" in values and not values.get("content"):
            raise Refused("If you want to reopen the ticket, you must specify a reason")
        ticket_id = ticket[0]
        values.setdefault("users_id", actor.user_id)
        values.setdefault("date", self.time.now())
        values.setdefault("requesttypes_id", 1)
        if "timeline_position" not in values:
            is_requester = self._is_actor(ticket_id, php_int(values["users_id"]), REQUESTER)
            values["timeline_position"] = TIMELINE_LEFT if is_requester else TIMELINE_RIGHT
        flags = {
            key: values.get(key)
            for key in ("add_close", "add_reopen", "pending", "_status", "_no_reopen")
            if key in values
        }
        return values, {"ticket_id": ticket_id, "flags": flags}

    def _post_add_itilfollowup(self, row_id: int, extras: dict[str, Any], actor: Session) -> None:
        ticket_id = extras["ticket_id"]
        self.touch_ticket(ticket_id, actor)
        self._update_parent_status(ticket_id, extras["flags"], actor)

    def _update_parent_status(self, ticket_id: int, flags: dict[str, Any], actor: Session) -> None:
        """`ParentStatus::updateParentStatus` (GLPI 10.0.4+): close on `add_close`, pending on `pending=1`, reopen
        on `pending=0` / `add_reopen` / a requester's answer (`needReopen`), or set `_status`."""
        status = self._ticket_status(ticket_id)
        solved = status in (SOLVED, CLOSED)
        if php_bool(flags.get("add_close")) and solved:
            self.set_ticket(ticket_id, {"status": CLOSED}, actor)
            return
        reopen = php_bool(flags.get("add_reopen"))
        target = php_int(flags["_status"]) if "_status" in flags else status
        if "pending" in flags:
            if php_bool(flags["pending"]):
                target = WAITING
            else:
                reopen = True
        elif "_no_reopen" not in flags and self._need_reopen(ticket_id, actor):
            reopen = True
        if reopen and status in (CLOSED, SOLVED, WAITING) and target == status and not php_bool(flags.get("pending")):
            self.set_ticket(ticket_id, {"status": ASSIGNED if self.has_assignee(ticket_id) else INCOMING}, actor)
        elif target != status and target in range(1, 7):
            self.set_ticket(ticket_id, {"status": target}, actor)

    def _need_reopen(self, ticket_id: int, actor: Session) -> bool:
        """`CommonITILObject::needReopen`: reopenable status, and the author is a requester (user or group)
        but not an assignee."""
        if self._ticket_status(ticket_id) not in (CLOSED, SOLVED, WAITING):
            return False
        requester = self._is_actor(ticket_id, actor.user_id, REQUESTER) or self._in_group(ticket_id, actor, REQUESTER)
        assignee = self._is_actor(ticket_id, actor.user_id, ASSIGN) or self._in_group(ticket_id, actor, ASSIGN)
        return requester and not assignee

    def _is_actor(self, ticket_id: int, user_id: int, role: int) -> bool:
        return any(row[2] == user_id for row in self.ticket_actors(ticket_id, "User", role))

    def _in_group(self, ticket_id: int, actor: Session, role: int) -> bool:
        return any(row[2] in actor.groups for row in self.ticket_actors(ticket_id, "Group", role))

    def _post_update_itilfollowup(self, row_id: int, changes: dict, extras: dict, actor: Session) -> None:
        if changes:
            self.touch_ticket(self.table("ITILFollowup").rows[row_id][2], actor)

    def _post_purge_itilfollowup(self, row: tuple[Any, ...], actor: Session) -> None:
        self.touch_ticket(row[2], actor)

    def _prepare_add_itilsolution(self, values: dict[str, Any], actor: Session) -> tuple[dict[str, Any], dict]:
        if values.get("itemtype") not in _ITIL:
            raise Refused("You don't have permission to perform this action.")
        ticket = self._ticket(values.get("items_id"))
        if ticket[self.table("Ticket").pos["status"]] in (SOLVED, CLOSED):
            raise Refused("The item is already solved, did anyone pushed a solution before you?")
        values["users_id"] = actor.user_id
        close_now = self._autoclose_delay(ticket[1]) == 0
        values["status"] = SOLUTION_ACCEPTED if close_now else SOLUTION_WAITING
        if close_now:
            values["date_approval"] = self.time.now()
            values["users_id_approval"] = actor.user_id
        return values, {"ticket_id": ticket[0], "close": close_now}

    def _post_add_itilsolution(self, row_id: int, extras: dict[str, Any], actor: Session) -> None:
        self.set_ticket(extras["ticket_id"], {"status": CLOSED if extras["close"] else SOLVED}, actor)

    def _autoclose_delay(self, entity_id: int) -> int:
        """The entity's auto-close delay, inherited from parents (-2); 0 closes on solution at once."""
        entities = self.table("Entity")
        current: Any = entity_id
        while current is not None and current in entities.rows:
            delay = entities.rows[current][entities.pos["autoclose_delay"]]
            if delay != AUTOCLOSE_PARENT:
                return delay
            current = entities.rows[current][entities.pos["entities_id"]]
        return AUTOCLOSE_NEVER

    def _prepare_add_tickettask(self, values: dict[str, Any], actor: Session) -> tuple[dict[str, Any], dict]:
        ticket = self._ticket(values.get("tickets_id"))
        values.setdefault("users_id", actor.user_id)
        values.setdefault("users_id_tech", actor.user_id)
        values.setdefault("date", self.time.now())
        values.setdefault("uuid", str(uuid.uuid4()))
        values.setdefault("timeline_position", TIMELINE_RIGHT)
        return values, {"ticket_id": ticket[0]}

    def _post_add_tickettask(self, row_id: int, extras: dict[str, Any], actor: Session) -> None:
        self._task_changed(extras["ticket_id"], actor)

    def _post_update_tickettask(self, row_id: int, changes: dict, extras: dict, actor: Session) -> None:
        if changes:
            self._task_changed(self.table("TicketTask").rows[row_id][2], actor)

    def _post_purge_tickettask(self, row: tuple[Any, ...], actor: Session) -> None:
        self._task_changed(row[2], actor)

    def _task_changed(self, ticket_id: int, actor: Session) -> None:
        tasks = self.table("TicketTask")
        total = sum(row[tasks.pos["actiontime"]] or 0 for row in tasks.where(tickets_id=ticket_id))
        self.touch_ticket(ticket_id, actor)
        self.table("Ticket").update(ticket_id, {"actiontime": total})

    # - links to items and documents

    def _prepare_add_item_ticket(self, values: dict[str, Any], actor: Session) -> tuple[dict[str, Any], dict]:
        ticket = self._ticket(values.get("tickets_id"))
        itemtype, item_id = values.get("itemtype"), php_int(values.get("items_id"))
        if itemtype not in self.data.tables or self.table(itemtype).get(item_id) is None:
            raise Refused("")
        if self.table("Item_Ticket").where(tickets_id=ticket[0], itemtype=itemtype, items_id=item_id):
            raise Refused("")
        return values, {"ticket_id": ticket[0]}

    def _post_add_item_ticket(self, row_id: int, extras: dict[str, Any], actor: Session) -> None:
        self.touch_ticket(extras["ticket_id"], actor)

    def _post_purge_item_ticket(self, row: tuple[Any, ...], actor: Session) -> None:
        self.touch_ticket(row[3], actor)

    def _prepare_add_document_item(self, values: dict[str, Any], actor: Session) -> tuple[dict[str, Any], dict]:
        if self.table("Document").get(php_int(values.get("documents_id"))) is None:
            raise Refused("")
        values.setdefault("users_id", actor.user_id)
        values.setdefault("date", self.time.now())
        return values, {}

    def _post_add_document_item(self, row_id: int, extras: dict[str, Any], actor: Session) -> None:
        links = self.table("Document_Item")
        row = links.rows[row_id]
        if row[links.pos["itemtype"]] == "Ticket":
            self.touch_ticket(row[links.pos["items_id"]], actor)

    def _post_purge_document_item(self, row: tuple[Any, ...], actor: Session) -> None:
        links = self.table("Document_Item")
        if row[links.pos["itemtype"]] == "Ticket":
            self.touch_ticket(row[links.pos["items_id"]], actor)


def _coerce(table: Table, column: str, value: Any) -> Any:
    """An input value as the column stores it; a non-number in an integer column is refused like MySQL would."""
    if value is None:
        return None
    if table.schema.is_int(column):
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int | float):
            return int(value)
        text = str(value).strip()
        if text == "":
            return 0
        if re.fullmatch(r"[+-]?\d+", text):
            return int(text)
        raise Refused(f"Incorrect integer value: '{value}' for column '{column}'")
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict | list):
        raise Refused(f"Array to string conversion for column '{column}'")
    return value


# --- the HTTP API ---------------------------------------------------------------------------------------------


@dataclass
class ApiRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass
class ApiResponse:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None


class _Api:
    """The endpoints of `apirest.php` (`APIRest::call`), on top of the model. Called under the simulator's lock."""

    def __init__(self, sim: GlpiSimulator) -> None:
        self.sim = sim
        self.model = sim._model
        #: per query: how its ids are computed, and the ids (`rebuild_lists` computes them again after a write)
        self._cache: dict[tuple[Any, ...], tuple[Callable[[], Sequence[int]], Sequence[int]]] = {}
        self._cache_version = -1
        self._fk_cache: dict[str, list[tuple[str, str]]] = {}

    @property
    def api_url(self) -> str:
        return self.sim.url

    # - dispatch

    def handle(self, request: ApiRequest) -> ApiResponse:
        try:
            return self._dispatch(request)
        except ApiError as error:
            message = error.message
            if error.doc:
                message = f"{message}; view documentation in your browser at {self.api_url}/#{error.code}"
            return ApiResponse(error.status, [error.code, message])

    def _dispatch(self, request: ApiRequest) -> ApiResponse:
        elements = request.path.strip("/").replace("api/", "").split("/")
        resource = elements[0].strip()
        params = self._parameters(request)
        if resource == "":
            return ApiResponse(
                200,
                raw=b"GLPI legacy REST API (simulated). See apirest.md.",
                headers={"Content-Type": "text/plain; charset=UTF-8"},
            )
        if resource == "initSession":
            return ApiResponse(200, self._init_session(params))
        self._check_app_token(params)
        session = self._check_session(params)
        endpoint = _ENDPOINTS.get(resource)
        if endpoint is not None:
            return endpoint(self, request, params, session, elements)
        return self._items(request, params, session, elements)

    def _parameters(self, request: ApiRequest) -> dict[str, Any]:
        """`APIRest::parseIncomingParams`: query string, then the body (JSON by default), then the headers."""
        params = parse_php_query(parse_qsl(request.query, keep_blank_values=True))
        body = request.body.strip()
        if body and request.method == "GET":
            raise ApiError(400, "ERROR_JSON_PAYLOAD_FORBIDDEN", "GET Request should not have json payload (http body)")
        content_type = request.headers.get("content-type", "application/json")
        if "application/json" in content_type:
            if body:
                try:
                    decoded = json.loads(body)
                except ValueError:
                    decoded = None
                if not decoded and decoded != {}:  # PHP: a falsy decode of a non-empty body is invalid
                    raise ApiError(400, "ERROR_JSON_PAYLOAD_INVALID", "JSON payload seems not valid", doc=False)
                if isinstance(decoded, dict):
                    params.update(decoded)
        elif "application/x-www-form-urlencoded" in content_type:
            params.update(parse_php_query(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)))
        elif "multipart/form-data" in content_type:
            raise ApiError(400, "ERROR", "multipart uploads are not simulated")
        headers = request.headers
        authorization = headers.get("authorization", "")
        if authorization.lower().startswith("basic "):
            try:
                login, _, password = base64.b64decode(authorization[6:].strip()).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                login, password = "", ""
            params["login"], params["password"] = login, password
        if "user_token" in authorization:
            parts = authorization.split(" ")
            if len(parts) > 1:
                params["user_token"] = parts[1]
        if "session-token" in headers:
            params["session_token"] = headers["session-token"]
        if "app-token" in headers:
            params["app_token"] = headers["app-token"]
        for key, value in list(params.items()):
            if value == "true":
                params[key] = True
            elif value == "false":
                params[key] = False
        return params

    # - authentication

    def _check_app_token(self, params: dict[str, Any]) -> None:
        """`API::checkAppToken`: the API client's token is required when it has one, and wrong when it has none."""
        given = params.get("app_token") or ""
        expected = self.sim.app_token or ""
        if given == expected:
            return
        if given:
            raise ApiError(400, "ERROR_WRONG_APP_TOKEN_PARAMETER", "parameter app_token seems wrong")
        raise ApiError(400, "ERROR_APP_TOKEN_PARAMETERS_MISSING", "missing parameter app_token")

    def _init_session(self, params: dict[str, Any]) -> dict[str, Any]:
        self._check_app_token(params)
        user_token = params.get("user_token")
        login, password = params.get("login"), params.get("password")
        if not (login and password) and not user_token:
            message = "parameter(s) login, password or user_token are missing"
            raise ApiError(400, "ERROR_LOGIN_PARAMETERS_MISSING", message)
        if user_token:
            account = self.sim.user_tokens.get(str(user_token))
            user_id = self._active_user(account)
            if user_id is None:
                raise ApiError(401, "ERROR_GLPI_LOGIN_USER_TOKEN", "parameter user_token seems invalid", doc=False)
        else:
            if self.sim.credentials is None:
                raise ApiError(
                    400,
                    "ERROR_LOGIN_WITH_CREDENTIALS_DISABLED",
                    "usage of initSession resource with credentials is disabled",
                    doc=False,
                )
            user_id = self._active_user(login) if self.sim.credentials.get(str(login)) == str(password) else None
            if user_id is None:
                raise ApiError(401, "ERROR_GLPI_LOGIN", "Incorrect username or password", doc=False)
        session = self.sim._open_session(user_id)
        data: dict[str, Any] = {"session_token": session.token}
        if php_bool(params.get("get_full_session")):
            data["session"] = self._session_data(session)
        return data

    def _active_user(self, login: Any) -> int | None:
        if not login:
            return None
        users = self.model.table("User")
        user_id = self.model.data.user_id(str(login))
        row = users.get(user_id) if user_id is not None else None
        if row is None or not row[users.pos["is_active"]] or row[users.pos["is_deleted"]]:
            return None
        return user_id

    def _check_session(self, params: dict[str, Any]) -> Session:
        token = params.get("session_token")
        if not token:
            raise ApiError(400, "ERROR_SESSION_TOKEN_MISSING", "parameter session_token is missing or empty")
        session = self.sim._live_session(str(token).strip())
        if session is None:
            raise ApiError(401, "ERROR_SESSION_TOKEN_INVALID", "session_token seems invalid", doc=False)
        return session

    # - session endpoints

    def _kill_session(self, request, params, session: Session, elements) -> ApiResponse:
        self.sim._sessions.pop(session.token, None)
        return ApiResponse(200, True)

    def _session_data(self, session: Session) -> dict[str, Any]:
        users = self.model.table("User")
        row = users.rows[session.user_id]
        entities = self._active_entities(session)
        return {
            "valid_id": session.token,
            "glpi_currenttime": self.model.time.now(),
            "glpi_tz": self.model.time.timezone,
            "glpiID": session.user_id,
            "glpiname": row[users.pos["name"]],
            "glpirealname": row[users.pos["realname"]],
            "glpifirstname": row[users.pos["firstname"]],
            "glpidefault_entity": 0,
            "glpiactive_entity": session.active_entity,
            "glpiactive_entity_recursive": int(session.recursive),
            "glpiactive_entity_name": self.model.name_of("Entity", session.active_entity),
            "glpiactiveentities": php_array({entity: entity for entity in entities}),
            "glpiactiveentities_string": ",".join(f"'{entity}'" for entity in entities),
            "glpigroups": sorted(session.groups),
            "glpilist_limit": self.model.list_limit,
            "glpi_use_mode": 0,
            "glpilanguage": "en_GB",
            "glpiactiveprofile": self._profile(),
            "glpiprofiles": {"4": self._profile()},
        }

    def _active_entities(self, session: Session) -> list[int]:
        everything = sorted(self.model.table("Entity").rows)
        return everything if session.entities is None else sorted(session.entities)

    def _profile(self) -> dict[str, Any]:
        return {
            "id": 4,
            "name": "Super-Admin",
            "interface": "central",
            "entities": [{"id": 0, "name": "Root entity", "is_recursive": 1}],
        }

    def _full_session(self, request, params, session: Session, elements) -> ApiResponse:
        return ApiResponse(200, {"session": self._session_data(session)})

    def _change_active_entities(self, request, params, session: Session, elements) -> ApiResponse:
        recursive = params.get("is_recursive", False)
        if not isinstance(recursive, bool):
            raise ApiError(400, "ERROR", "Bad Request")
        target = params.get("entities_id", "all")
        if target == "all":
            session.entities, session.active_entity, session.recursive = None, 0, True
            return ApiResponse(200, True)
        entity = php_int(target)
        if entity not in self.model.table("Entity").rows:
            return ApiResponse(200, False)
        members = self.model.data.entity_descendants(entity) if recursive else {entity}
        session.entities = None if members == set(self.model.table("Entity").rows) else frozenset(members)
        session.active_entity, session.recursive = entity, recursive
        return ApiResponse(200, True)

    def _active_entities_endpoint(self, request, params, session: Session, elements) -> ApiResponse:
        return ApiResponse(
            200,
            {
                "active_entity": {
                    "id": session.active_entity,
                    "active_entity_recursive": session.recursive,
                    "active_entities": [{"id": entity} for entity in self._active_entities(session)],
                }
            },
        )

    def _my_entities(self, request, params, session: Session, elements) -> ApiResponse:
        rows = self.model.table("Entity").rows
        return ApiResponse(200, {"myentities": [{"id": e, "name": self.model.name_of("Entity", e)} for e in rows]})

    def _my_profiles(self, request, params, session: Session, elements) -> ApiResponse:
        return ApiResponse(200, {"myprofiles": [self._profile()]})

    def _active_profile(self, request, params, session: Session, elements) -> ApiResponse:
        return ApiResponse(200, {"active_profile": self._profile()})

    def _glpi_config(self, request, params, session: Session, elements) -> ApiResponse:
        return ApiResponse(
            200,
            {
                "cfg_glpi": {
                    "version": GLPI_VERSION,
                    "timezone": self.model.time.timezone,
                    "list_limit": self.model.list_limit,
                    "list_limit_max": 50,
                    "url_base_api": self.api_url,
                    "enable_api": 1,
                    "enable_api_login_credentials": int(self.sim.credentials is not None),
                    "enable_api_login_external_token": 1,
                    "urgency_mask": 62,
                    "impact_mask": 62,
                    "priority_matrix": {
                        str(u): {str(i): p for i, p in row.items()} for u, row in PRIORITY_MATRIX.items()
                    },
                }
            },
        )

    # - itemtypes

    def _itemtype(self, name: str | None) -> str | None:
        """A known itemtype, case-insensitively like PHP class names; None otherwise."""
        return _ITEMTYPES_BY_LOWER.get((name or "").lower())

    def _require_itemtype(self, name: str | None) -> str:
        itemtype = self._itemtype(name)
        if itemtype is None:
            if name:
                raise ApiError(
                    400,
                    "ERROR_RESOURCE_NOT_FOUND_NOR_COMMONDBTM",
                    "resource not found or not an instance of CommonDBTM",
                )
            raise ApiError(400, "ERROR_RESOURCE_MISSING", "missing resource")
        return itemtype

    def _items(self, request: ApiRequest, params: dict[str, Any], session: Session, elements: list[str]):
        itemtype = self._require_itemtype(elements[0])
        parent: tuple[str, int] | None = None
        if len(elements) > 2 and self._itemtype(elements[2]):
            parent = (itemtype, php_int(elements[1]) if elements[1].isdigit() else 0)
            itemtype = self._require_itemtype(elements[2])
        item_id: int | None = int(elements[1]) if len(elements) > 1 and elements[1].isdigit() else None
        if parent is not None:
            item_id = int(elements[3]) if len(elements) > 3 and elements[3].isdigit() else None
        method = request.method
        if method == "POST":
            return self._create(itemtype, params, session)
        if method in ("PUT", "PATCH"):
            return self._update(itemtype, item_id, params, session)
        if method == "DELETE":
            return self._delete(itemtype, item_id, params, session)
        if item_id is not None and (item_id > 0 or (item_id == 0 and itemtype == "Entity")):
            fields = self._get_item(itemtype, item_id, params, session)
            wants_file = "application/octet-stream" in request.headers.get("accept", "") or params.get("alt") == "media"
            if itemtype == "Document" and parent is None and wants_file:
                return self._download(fields, self.sim._files.get(item_id))
            headers = {}
            stamp = self.model.time.parse(fields.get("date_mod")) if isinstance(fields, dict) else None
            if stamp is not None:
                headers["Last-Modified"] = format_datetime(datetime.fromtimestamp(stamp, UTC), usegmt=True)
            return ApiResponse(200, fields, headers)
        return self._get_items(itemtype, params, session, parent)

    @staticmethod
    def _download(document: dict[str, Any], content: bytes | None) -> ApiResponse:
        """`Document::send`: the file's bytes with its mime type and, as GLPI's `Toolbox::sendFile`, its
        Content-Length (set by the HTTP layer). The bytes are those `add_document` stored, else generated from the
        sha1 and the file name."""
        filename = decode_html(document["filename"])
        if content is None:
            content = f"Simulated content of {filename} ({document['sha1sum']})\n".encode()
        headers = {
            "Content-Type": document.get("mime") or "application/octet-stream",
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}",
        }
        return ApiResponse(200, None, headers, raw=content)

    def _get_item(self, itemtype: str, item_id: int, params: dict[str, Any], session: Session) -> dict[str, Any]:
        table = self.model.table(itemtype)
        row = table.get(item_id)
        if row is None:
            raise ApiError(404, "ERROR_ITEM_NOT_FOUND", "Item not found", doc=False)
        if not self.model.visible(session, itemtype, row):
            raise ApiError(403, "ERROR_RIGHT_MISSING", "You don't have permission to perform this action.", doc=False)
        return self._fields(itemtype, row, params)

    def _fields(self, itemtype: str, row: tuple[Any, ...], params: dict[str, Any]) -> dict[str, Any]:
        """A row as the API shows it: raw columns, then `links` (foreign keys, then children) unless disabled."""
        table = self.model.table(itemtype)
        fields = dict(zip(table.columns, row, strict=True))
        if php_bool(params.get("only_id", False)):
            fields = {"id": row[0]}
        hateoas = php_bool(params.get("get_hateoas", True))
        expand = php_bool(params.get("expand_dropdowns", False))
        if hateoas or expand:
            links = []
            for column, rel in self._foreign_keys(itemtype):
                if column not in fields:
                    continue
                value = fields[column]
                if column == "items_id" and "itemtype" in fields:
                    rel = fields["itemtype"]
                if not (value or (column == "entities_id" and isinstance(value, int) and value >= 0)):
                    continue
                if hateoas and isinstance(value, int):
                    links.append({"rel": rel, "href": f"{self.api_url}/{rel}/{value}"})
                if expand:
                    fields[column] = self._dropdown_name(rel, value)
            if hateoas:
                links.extend(
                    {"rel": child, "href": f"{self.api_url}/{itemtype}/{row[0]}/{child}/"}
                    for child in table.schema.children
                )
                if links:
                    fields["links"] = links
        return fields

    def _foreign_keys(self, itemtype: str) -> list[tuple[str, str]]:
        """(column, itemtype it points to) for the table's foreign keys, in column order (cached)."""
        found = self._fk_cache.get(itemtype)
        if found is None:
            columns = self.model.table(itemtype).columns
            found = [(column, rel) for column in columns if (rel := foreign_key_itemtype(column)) is not None]
            self._fk_cache[itemtype] = found
        return found

    def _dropdown_name(self, itemtype: str, value: Any) -> str:
        if itemtype == "User":
            users = self.model.table("User")
            row = users.get(value)
            if row is None:
                return ""
            parts = [row[users.pos[name]] for name in ("realname", "firstname") if row[users.pos[name]]]
            return " ".join(parts) or row[users.pos["name"]]
        return self.model.name_of(itemtype, value) or ""

    def _range(self, params: dict[str, Any], default_end: int) -> tuple[list[Any], int, int]:
        """(range as written, start, end) from `range`; 400 `ERROR` unless it is `start-end` in digits."""
        raw = params.get("range", f"0-{default_end}")
        if not isinstance(raw, str) or re.fullmatch(r"[0-9]+-[0-9]+\n?", raw) is None:
            raise ApiError(400, "ERROR", "range must be in format : [start-end] with integers")
        start_text, end_text = raw.strip().split("-")
        return [start_text, end_text], int(start_text), int(end_text)

    def _get_items(self, itemtype: str, params: dict[str, Any], session: Session, parent: tuple[str, int] | None):
        """`API::getItems` plus the paging headers of `APIRest::call`."""
        table = self.model.table(itemtype)
        written, start, end = self._range(params, self.model.list_limit - 1)
        order = params.get("order", "ASC")
        if not isinstance(order, str) or order.upper() not in ("ASC", "DESC"):
            raise ApiError(400, "ERROR", "order must be DESC or ASC")
        sort = params.get("sort", "id")
        if not isinstance(sort, str) or sort not in table.pos:
            raise ApiError(400, "ERROR", f"sort param is not a field of {table.schema.table}")
        parent_filter = self._parent_filter(itemtype, parent, session) if parent else None
        search_text = params.get("searchText")
        text_filters: list[tuple[str, str]] = []
        if isinstance(search_text, dict):
            if list(search_text) == ["all"]:
                search_text = {"name": search_text["all"]} | (
                    {"comment": search_text["all"]} if "comment" in table.pos else {}
                )
            for column, needle in search_text.items():
                if php_bool(needle):
                    if column not in table.pos:
                        raise ApiError(400, "ERROR", f"Unknown column '{column}' in 'where clause' (searchText)")
                    text_filters.append((column, str(needle)))
        deleted = php_int(params.get("is_deleted", 0)) if "is_deleted" in table.pos else None
        key = (
            "items",
            itemtype,
            sort,
            order.upper(),
            deleted,
            tuple(text_filters),
            parent_filter and parent_filter[0],
            self._entity_key(session),
        )
        ids = self._cached(
            key, lambda: self._list_ids(itemtype, sort, order.upper(), deleted, text_filters, parent_filter, session)
        )
        total = len(ids)
        if start > total:
            raise ApiError(400, "ERROR_RANGE_EXCEED_TOTAL", f"Provided range exceed total count of data: {total}")
        rows = [self._fields(itemtype, table.rows[row_id], params) for row_id in ids[start : end + 1]]
        # APIRest::call recomputes the range for the headers; without a `range` parameter it starts from
        # [0, list_limit] — one more than the rows sent (the 10.x off-by-one).
        header_range: list[Any] = written if "range" in params else [0, self.model.list_limit]
        if int(header_range[1]) > total - 1:
            header_range[1] = total - 1
        status = 206 if int(header_range[1]) - int(header_range[0]) + 1 < total else 200
        headers = {"Accept-Range": f"{itemtype} {MAX_INPUT_VARS}"}
        if total > 0:
            headers["Content-Range"] = f"{header_range[0]}-{header_range[1]}/{total}"
        return ApiResponse(status, rows, headers)

    def _parent_filter(
        self, itemtype: str, parent: tuple[str, int], session: Session
    ) -> tuple[tuple[Any, ...], Callable[[tuple[Any, ...]], bool] | None]:
        """The sub-item condition of `getItems` (parent FK, else itemtype/items_id, else the parent's FK to the
        child); 404 when the parent does not exist, 403 when it is not visible."""
        parent_type, parent_id = parent
        parent_table, table = self.model.table(parent_type), self.model.table(itemtype)
        parent_row = parent_table.get(parent_id)
        if parent_row is None:
            raise ApiError(404, "ERROR_ITEM_NOT_FOUND", "Item not found", doc=False)
        if not self.model.visible(session, parent_type, parent_row):
            raise ApiError(403, "ERROR_RIGHT_MISSING", "You don't have permission to perform this action.", doc=False)
        fk_parent, fk_child = parent_table.schema.foreign_key, table.schema.foreign_key
        if fk_parent in table.pos:
            return ("fk", parent_type, parent_id), None
        if "itemtype" in table.pos and "items_id" in table.pos:
            return ("items", parent_type, parent_id), None
        if fk_child in parent_table.pos:
            target = parent_row[parent_table.pos[fk_child]]
            return ("join", parent_type, parent_id), lambda row: row[0] == target
        if "itemtype" in parent_table.pos and "items_id" in parent_table.pos:
            matches = parent_row[parent_table.pos["itemtype"]] == itemtype
            target = parent_row[parent_table.pos["items_id"]]
            return ("join", parent_type, parent_id), lambda row: matches and row[0] == target
        return ("none", parent_type, parent_id), None  # GLPI adds no condition at all: every row

    def _list_ids(self, itemtype, sort, order, deleted, text_filters, parent_filter, session) -> Sequence[int]:
        table = self.model.table(itemtype)
        if parent_filter is not None and parent_filter[0][0] in ("fk", "items"):
            how, parent_type, parent_id = parent_filter[0]
            if how == "fk":
                rows = table.where(**{self.model.table(parent_type).schema.foreign_key: parent_id})
            else:
                rows = table.where(items_id=parent_id, itemtype=parent_type)
        else:
            rows = list(table.rows.values())
            if parent_filter is not None and parent_filter[1] is not None:
                rows = [row for row in rows if parent_filter[1](row)]
        if deleted is not None:
            position = table.pos["is_deleted"]
            rows = [row for row in rows if row[position] == deleted]
        for column, needle in text_filters:
            matcher, position = _like(needle), table.pos[column]
            # once per distinct value: a polymorphic list's `itemtype` column holds a handful for 100,000s of rows
            matches = {value: matcher(value) for value in {row[position] for row in rows}}
            rows = [row for row in rows if matches[row[position]]]
        if session.entities is not None and self.model.entity_restricted(itemtype):
            rows = [row for row in rows if self.model.visible(session, itemtype, row)]
        if sort == "id":  # the primary key: no NULL, no tie
            return sorted((row[0] for row in rows), reverse=order == "DESC")
        return _SortedIds(rows, itemgetter(table.pos[sort]), order == "DESC")

    def _entity_key(self, session: Session) -> Any:
        return None if session.entities is None else tuple(sorted(session.entities))

    def _cached(self, key: tuple[Any, ...], compute: Callable[[], Sequence[int]]) -> Sequence[int]:
        """Id lists per query, valid until the next write (the benchmark walks pages of one query)."""
        if self._cache_version != self.model.version:
            self._cache.clear()
            self._cache_version = self.model.version
        cached = self._cache.get(key)
        if cached is None:
            if len(self._cache) > 32:
                self._cache.clear()
            cached = self._cache[key] = (compute, compute())
        return cached[1]

    def rebuild_lists(self) -> None:
        """After a write: answer again, now, the sub-item lists that were cached (`_list_ids`), each sorted as far
        as it had been read — what a database's indexes give its next reads for free. Searches are left to
        `_SearchIndexes.rebuild`: their criteria (a date window) differ from one run to the next."""
        lists = {key: cached for key, cached in self._cache.items() if key[0] == "items"}
        self._cache.clear()
        self._cache_version = self.model.version
        for key, (compute, before) in lists.items():
            found = compute()
            self._cache[key] = (compute, found)
            if isinstance(found, _SortedIds) and isinstance(before, _SortedIds) and before.sorted_so_far:
                found.sort_through(before.sorted_so_far)  # as far as the reads before the write went

    def _multiple(self, request, params, session: Session, elements) -> ApiResponse:
        items = params.get("items")
        if not isinstance(items, dict | list):
            raise ApiError(400, "ERROR_BAD_ARRAY", "input parameter must be an array of objects")
        found = []
        for entry in php_values(items):
            if not isinstance(entry, dict) or ("items_id" not in entry and "itemtype" not in entry):
                raise ApiError(400, "ERROR_BAD_ARRAY", "input parameter must be an array of objects")
            itemtype = self._require_itemtype(entry.get("itemtype"))
            found.append(self._get_item(itemtype, php_int(entry.get("items_id")), params, session))
        return ApiResponse(200, found)

    # - writes

    def _inputs(self, params: dict[str, Any]) -> tuple[list[Any], bool]:
        """(input objects, bulk?) — a JSON object is one item, a JSON array several (`is_object($input)`)."""
        value = params.get("input")
        if isinstance(value, dict) and not (
            value and all(k.isdigit() for k in value) and all(isinstance(v, dict) for v in value.values())
        ):
            return [value], False
        if isinstance(value, list | dict):
            return php_values(value), True
        raise ApiError(400, "ERROR_BAD_ARRAY", "input parameter must be an array of objects")

    def _create(self, itemtype: str, params: dict[str, Any], session: Session) -> ApiResponse:
        inputs, bulk = self._inputs(params)
        results, failed = [], 0
        for entry in inputs:
            if not isinstance(entry, dict):
                failed += 1
                results.append({"id": False, "message": "You don't have permission to perform this action."})
                continue
            try:
                results.append({"id": self.model.add(itemtype, entry, session), "message": ""})
            except Refused as refusal:
                failed += 1
                results.append({"id": False, "message": str(refusal)})
        if not bulk:
            if failed:
                raise ApiError(400, "ERROR_GLPI_ADD", results[0]["message"], doc=False)
            return ApiResponse(201, results[0], {"Location": f"{self.api_url}/{itemtype}/{results[0]['id']}"})
        if failed and failed == len(inputs):
            raise ApiError(400, "ERROR_GLPI_ADD", results, doc=False)
        if failed:
            raise ApiError(207, "ERROR_GLPI_PARTIAL_ADD", results, doc=False)
        link = ",".join(f"{self.api_url}/{itemtype}/{result['id']}" for result in results)
        return ApiResponse(201, results, {"Link": link})

    def _update(self, itemtype: str, item_id: int | None, params: dict[str, Any], session: Session) -> ApiResponse:
        if "input" not in params:
            raise ApiError(400, "ERROR_BAD_ARRAY", "input parameter must be an array of objects")
        inputs, bulk = self._inputs(params)
        if not bulk and item_id is not None and "id" not in inputs[0]:
            inputs[0] = {**inputs[0], "id": item_id}
        results: list[Any] = []
        failed = 0
        for entry in inputs:
            if not isinstance(entry, dict) or "id" not in entry:
                results.append([])
                continue
            try:
                outcome = self.model.update(itemtype, entry, session)
            except Refused as refusal:
                failed += 1
                results.append({str(entry["id"]): False, "message": str(refusal)})
                continue
            if outcome is None:
                failed += 1  # GLPI counts it, then `continue`s before adding it to the answer
                continue
            results.append({str(php_int(entry["id"])): True, "message": ""})
        if not bulk:
            if failed:
                message = results[0]["message"] if results and isinstance(results[0], dict) else None
                raise ApiError(400, "ERROR_GLPI_UPDATE", message, doc=False)
            return ApiResponse(200, results)
        if failed and failed == len(inputs):
            raise ApiError(400, "ERROR_GLPI_UPDATE", results, doc=False)
        if failed:
            raise ApiError(207, "ERROR_GLPI_PARTIAL_UPDATE", results, doc=False)
        return ApiResponse(200, results)

    def _delete(self, itemtype: str, item_id: int | None, params: dict[str, Any], session: Session) -> ApiResponse:
        if item_id is not None:
            inputs, bulk = [{"id": item_id}], False
        else:
            inputs, bulk = self._inputs(params)
        force = php_bool(params.get("force_purge", False))
        results, failed = [], 0
        for entry in inputs:
            if not isinstance(entry, dict) or "id" not in entry:
                continue
            row_id = php_int(entry["id"])
            outcome = self.model.delete(itemtype, row_id, session, force_purge=force)
            if outcome is None:
                failed += 1
                results.append({str(entry["id"]): False, "message": "Item not found"})
                continue
            results.append({str(row_id): True, "message": ""})
        if not bulk:
            if failed:
                raise ApiError(400, "ERROR_GLPI_DELETE", results[0]["message"], doc=False)
            return ApiResponse(200, results)
        if failed and failed == len(inputs):
            raise ApiError(400, "ERROR_GLPI_DELETE", results, doc=False)
        if failed:
            raise ApiError(207, "ERROR_GLPI_PARTIAL_DELETE", results, doc=False)
        return ApiResponse(200, results)

    # - search

    def _list_search_options(self, request, params, session: Session, elements) -> ApiResponse:
        itemtype = self._require_itemtype(elements[1] if len(elements) > 1 else None)
        body: dict[str, Any] = {"common": "Characteristics"}
        for option in search_options(itemtype).values():
            body[str(option.id)] = {
                "name": option.name,
                "table": option.table,
                "field": option.field,
                "datatype": option.datatype,
                "nosearch": False,
                "nodisplay": False,
                "available_searchtypes": _searchtypes(option),
                "uid": option.uid,
            }
        return ApiResponse(200, body)

    def _search(self, request, params, session: Session, elements) -> ApiResponse:
        itemtype = self._require_itemtype(elements[1] if len(elements) > 1 else None)
        engine = _SearchEngine(self.model, itemtype, session)
        criteria = params.get("criteria")
        if isinstance(criteria, dict | list):
            problem = engine.check(php_values(criteria))
            if problem:
                raise ApiError(400, "ERROR", problem)
        forced = params.get("forcedisplay")
        forcedisplay = [php_int(v) for v in php_values(forced)] if forced is not None else []
        default_end = self.model.list_limit - 1
        if "range" in params:
            _, start, end = self._range(params, default_end)
        else:
            start, end = 0, default_end
        sorts = [php_int(value) for value in php_values(params.get("sort", 1))] or [1]
        orders = [str(value).upper() for value in php_values(params.get("order", "ASC"))]
        orders = [order if order in ("ASC", "DESC") else "ASC" for order in orders]
        orders += [orders[-1] if orders else "ASC"] * (len(sorts) - len(orders))
        for sort in sorts:
            if sort not in engine.options:
                raise ApiError(400, "ERROR", f"Bad sort ID {sort}")
        deleted = php_int(params.get("is_deleted", 0))
        criteria_list = php_values(criteria) if isinstance(criteria, dict | list) else []
        key = ("search", itemtype, repr(criteria_list), tuple(sorts), tuple(orders), deleted, self._entity_key(session))
        ids = self._cached(key, lambda: engine.run(criteria_list, sorts, orders, deleted))
        total = len(ids)
        if start > total:
            raise ApiError(400, "ERROR_RANGE_EXCEED_TOTAL", f"Provided range exceed total count of data: {total}")
        page = ids[start : end + 1]
        columns = engine.columns(forcedisplay, criteria_list, sorts)
        body: dict[str, Any] = {"totalcount": total, "count": len(page), "sort": sorts, "order": orders[: len(sorts)]}
        if page:
            uid = "uid_cols" in params
            rows = [engine.display(row_id, columns, uid) for row_id in page]
            if "withindexes" in params:
                body["data"] = {str(row_id): row for row_id, row in zip(page, rows, strict=True)}
            else:
                body["data"] = rows
        body["content-range"] = f"{start}-{min(end, total - 1)}/{total}"
        headers = {"Accept-Range": f"{itemtype} {MAX_INPUT_VARS}"}
        if total > 0:
            headers["Content-Range"] = body["content-range"]
        return ApiResponse(200 if len(page) >= total else 206, body, headers)


_ENDPOINTS: dict[str, Callable[..., ApiResponse]] = {
    "killSession": _Api._kill_session,
    "getFullSession": _Api._full_session,
    "changeActiveEntities": _Api._change_active_entities,
    "getActiveEntities": _Api._active_entities_endpoint,
    "getMyEntities": _Api._my_entities,
    "getMyProfiles": _Api._my_profiles,
    "getActiveProfile": _Api._active_profile,
    "getGlpiConfig": _Api._glpi_config,
    "getMultipleItems": _Api._multiple,
    "listSearchOptions": _Api._list_search_options,
    "search": _Api._search,
}


def _searchtypes(option: SearchOption) -> list[str]:
    if option.datatype == "datetime":
        return ["equals", "notequals", "lessthan", "morethan", "contains"]
    if option.kind in ("dropdown", "actors", "user"):
        return ["contains", "notcontains", "equals", "notequals", "under", "notunder"]
    if option.datatype == "specific":
        return ["equals", "notequals"]
    return ["contains", "notcontains"]


def _sorted(rows: list[tuple[Any, ...]], key: Callable[[tuple[Any, ...]], Any], descending: bool) -> list:
    """Rows by key, NULLs first ascending (MySQL), ties in id order either way (stable sort of id-ordered rows).

    The values are compared bare, NULLs set aside: a (is-null, value) key per row made the date walks of a
    100,000-ticket instance take half a second per itemtype, where MySQL reads an index."""
    values, present, nulls = _split_nulls(rows, key)
    try:
        present.sort(key=values.__getitem__, reverse=descending)
    except TypeError:  # mixed types in a damaged column: compare as text
        return sorted(rows, key=lambda row: str(key(row)), reverse=descending)
    return [rows[index] for index in (present + nulls if descending else nulls + present)]


def _split_nulls(
    rows: list[tuple[Any, ...]], key: Callable[[tuple[Any, ...]], Any]
) -> tuple[list[Any], list[int], list[int]]:
    """Each row's sort value, and the positions of the rows whose value is present, then of those where it is NULL
    (both in row order)."""
    values = list(map(key, rows))
    present = [index for index, value in enumerate(values) if value is not None]
    nulls = [index for index, value in enumerate(values) if value is None] if len(present) < len(rows) else []
    return values, present, nulls


class _SortedIds:
    """The ids of a list's rows in `_sorted`'s order, sorted only as far as they are read.

    A sync's date walk reads the first page of 100,000s of rows, newest first, and stops: MySQL reads that off its
    `date_mod` index. Here the first pages are `heapq`'s k largest (or smallest), which `heapq` documents to equal
    the sorted list's first k, ties in row order included; reading further sorts everything once."""

    def __init__(self, rows: list[tuple[Any, ...]], key: Callable[[tuple[Any, ...]], Any], descending: bool) -> None:
        self._rows, self._key, self._descending = rows, key, descending
        self._prefix: list[int] = []  # the first ids in order; all of them once `_whole`
        self._whole = False

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, window: slice) -> list[int]:
        self.sort_through(len(self._rows) if window.stop is None else window.stop)
        return self._prefix[window]

    @property
    def sorted_so_far(self) -> int:
        return len(self._prefix)

    def sort_through(self, count: int) -> None:
        wanted = min(count, len(self._rows))
        if wanted > len(self._prefix) and not self._whole:
            self._sort(wanted)

    def _sort(self, wanted: int) -> None:
        rows = self._rows
        if wanted * 8 < len(rows):
            values, present, nulls = _split_nulls(rows, self._key)
            try:
                if self._descending:
                    first = heapq.nlargest(wanted, present, key=values.__getitem__)
                    order = first + nulls[: wanted - len(first)]
                else:
                    rest = max(0, wanted - len(nulls))
                    order = nulls[:wanted] + heapq.nsmallest(rest, present, key=values.__getitem__)
                self._prefix = [rows[index][0] for index in order]
                return
            except TypeError:  # mixed types in a damaged column: `_sorted` compares them as text
                pass
        self._prefix, self._whole = [row[0] for row in _sorted(rows, self._key, self._descending)], True


def _like(needle: str) -> Callable[[Any], bool]:
    """`Search::makeTextSearch`: case-insensitive LIKE %needle%, `^`/`$` anchor, `NULL` matches empty values.

    The needle is tried raw and GLPI-encoded, since stored text is encoded (`&` is `&#38;`)."""
    if needle in ("NULL", "null"):
        return lambda value: value is None or value == ""
    anchored_start, anchored_end, core = _like_parts(needle)
    if core == "":
        return lambda value: True
    pattern = "|".join(
        ("^" if anchored_start else "") + re.escape(variant).replace(r"\*", ".*") + ("$" if anchored_end else "")
        for variant in {core, sanitize(core)}
    )
    compiled = re.compile(pattern, re.IGNORECASE | re.DOTALL)
    return lambda value: value is not None and compiled.search(str(value)) is not None


def _like_parts(needle: str) -> tuple[bool, bool, str]:
    """(anchored at the start, anchored at the end, the text between) of a LIKE needle."""
    anchored_start, anchored_end = needle.startswith("^"), needle.endswith("$") and len(needle) > 1
    return anchored_start, anchored_end, needle[1 if anchored_start else 0 : -1 if anchored_end else None].strip()


def _like_matches_everything(needle: str) -> bool:
    """Whether `_like(needle)` is true for every value (an empty needle, or only anchors and blanks)."""
    return needle not in ("NULL", "null") and _like_parts(needle)[2] == ""


def _number_operator(text: str) -> tuple[str, int] | None:
    """A number criterion as GLPI reads it whatever the searchtype: `>100`, `<= 5` → (operator, number), a bare
    number → ("=", number); None when the value holds neither."""
    match = re.search(r"([<>])(=*)\s*(-?[0-9]+)", text.replace("&lt;", "<").replace("&gt;", ">"))
    if match:
        return match.group(1) + ("=" if match.group(2) else ""), int(match.group(3))
    if re.fullmatch(r"\s*-?[0-9]+\s*", text):
        return "=", int(text)
    return None


_NUMERIC = ("number", "count", "actiontime", "specific")


class _SortedColumn:
    """The rows of one itemtype, trash flag and column that a search lists (templates left out), in the order
    the general path sorts them ascending on that column: NULLs first, then by value, ties in row order."""

    __slots__ = ("ids", "kind", "nulls", "values")

    def __init__(self, ids: list[int], values: list[Any], nulls: int, kind: str) -> None:
        self.ids = ids  # every row: the `nulls` NULL ones first, then one per entry of `values`
        self.values = values  # the non-NULL values, ascending
        self.nulls = nulls
        self.kind = kind  # "str", "int", or "empty" (no non-NULL value)

    def select(self, operator: str, bound: Any) -> list[int]:
        """Ids in order: `all`, `none`, or those whose (non-NULL) value compares with `bound` by `operator`."""
        if operator == "all":
            return self.ids[:]
        if operator == "none":
            return []
        values, low, high = self.values, 0, len(self.values)
        if operator in (">", ">=", "="):
            low = (bisect_right if operator == ">" else bisect_left)(values, bound)
        if operator in ("<", "<=", "="):
            high = (bisect_left if operator == "<" else bisect_right)(values, bound)
        return self.ids[self.nulls + low : self.nulls + max(low, high)]


class _SearchIndexes:
    """Sorted columns per (itemtype, column, is_deleted), built on first use and dropped at the next write
    (`_Model.version`): a sync's searches between writes cost a bisection each, not a filter and sort of every row.
    """

    def __init__(self, model: _Model) -> None:
        self.model = model
        self.enabled = True
        self._version = -1
        self._columns: dict[tuple[str, str, Any], _SortedColumn | None] = {}

    def get(self, itemtype: str, column: str, deleted: int) -> _SortedColumn | None:
        """The sorted column; None when its values mix types (the general path then decides the order)."""
        if self._version != self.model.version:
            self._columns.clear()
            self._version = self.model.version
        table = self.model.table(itemtype)
        key = (itemtype, column, deleted if "is_deleted" in table.pos else None)
        if key not in self._columns:
            self._columns[key] = self._build(table, column, deleted)
        return self._columns[key]

    def rebuild(self) -> None:
        """After a write: build again, now, the columns that were in use (as a database maintains its indexes as it
        writes), so the next read costs a bisection, not the rebuild."""
        built = list(self._columns)
        self._columns.clear()
        self._version = self.model.version
        for itemtype, column, deleted in built:
            self._columns[(itemtype, column, deleted)] = self._build(self.model.table(itemtype), column, deleted or 0)

    @staticmethod
    def _build(table: Table, column: str, deleted: int) -> _SortedColumn | None:
        position, trash, template = table.pos[column], table.pos.get("is_deleted"), table.pos.get("is_template")
        nulls: list[int] = []
        pairs: list[tuple[Any, int]] = []
        for row in table.rows.values():  # the general path's filters, in its row order
            if trash is not None and row[trash] != deleted:
                continue
            if template is not None and row[template]:
                continue
            value = row[position]
            if value is None:
                nulls.append(row[0])
            else:
                pairs.append((value, row[0]))
        types = {type(value) for value, _ in pairs}
        if len(types) > 1 or not types <= {str, int}:
            return None
        pairs.sort(key=itemgetter(0))  # stable: ties keep the row order, as the general path's sort does
        kind = "empty" if not types else "str" if str in types else "int"
        return _SortedColumn(nulls + [row_id for _, row_id in pairs], [value for value, _ in pairs], len(nulls), kind)


class _SearchEngine:
    """`Search::getDatas` for one itemtype: criteria → ids (sorted), and the displayed values of a row."""

    def __init__(self, model: _Model, itemtype: str, session: Session) -> None:
        self.model = model
        self.itemtype = itemtype
        self.session = session
        self.table = model.table(itemtype)
        self.options = search_options(itemtype)
        self._names: dict[str, dict[Any, Any]] = {}

    def check(self, criteria: list[Any]) -> str | None:
        """GLPI's validation (`searchItems`): a message when a criterion is malformed or names an unknown field.

        Like GLPI, a nested group's result is returned at once (later criteria are not checked)."""
        for criterion in criteria:
            if not isinstance(criterion, dict):
                return "Malformed search criteria"
            if "criteria" in criterion:
                return self.check(php_values(criterion["criteria"]))
            if criterion.get("meta"):
                return "meta criteria are not simulated"
            if not all(key in criterion for key in ("field", "searchtype", "value")):
                return "Malformed search criteria"
            field_id = str(criterion["field"])
            if not field_id.isdigit() or int(field_id) not in self.options:
                return "Bad field ID in search criteria"
        return None

    def run(self, criteria: list[Any], sorts: list[int], orders: list[str], deleted: int) -> list[int]:
        indexed = self._indexed(criteria, sorts, orders, deleted)
        if indexed is not None:
            return indexed
        table = self.table
        predicate = self._group(criteria)
        rows = list(table.rows.values())
        if "is_deleted" in table.pos:
            rows = [row for row in rows if row[table.pos["is_deleted"]] == deleted]
        if "is_template" in table.pos:
            rows = [row for row in rows if not row[table.pos["is_template"]]]  # search, unlike getItems, hides them
        if self.session.entities is not None:
            rows = [row for row in rows if self.model.visible(self.session, self.itemtype, row)]
        if predicate is not None:
            rows = [row for row in rows if predicate(row)]
        for sort, order in reversed(list(zip(sorts, orders, strict=False))):
            option = self.options[sort]
            rows = _sorted(rows, lambda row, option=option: self._sort_value(option, row), order == "DESC")
        return [row[0] for row in rows]

    def _indexed(self, criteria: list[Any], sorts: list[int], orders: list[str], deleted: int) -> list[int] | None:
        """What `run` answers, from a sorted column, for the shapes a sync walks: sorted ascending on one column,
        with no criterion, one that matches every row, or one range on that same column (`date_mod morethan X`,
        id `contains >N`). None for any other shape: the general path answers."""
        if not self.model.search_indexes.enabled or len(sorts) != 1 or orders[0] != "ASC" or len(criteria) > 1:
            return None
        option = self.options[sorts[0]]
        if option.kind != "column" or option.column not in self.table.pos:
            return None
        bounds = self._index_bounds(criteria[0], option) if criteria else ("all", None, None)
        if bounds is None:
            return None
        operator, bound, kind = bounds
        index = self.model.search_indexes.get(self.itemtype, option.column, deleted)
        if index is None or (kind is not None and index.kind not in (kind, "empty")):
            return None
        ids = index.select(operator, bound)
        if self.session.entities is not None:
            rows = self.table.rows
            ids = [row_id for row_id in ids if self.model.visible(self.session, self.itemtype, rows[row_id])]
        return ids

    def _index_bounds(self, criterion: Any, sort: SearchOption) -> tuple[str, Any, str | None] | None:
        """(operator, bound, the value type it compares) of a criterion the sorted column answers, else None.

        Mirrors `_criterion`: every row for a `contains` that `_like` matches everything with; on a number the
        operator read from the value; on a date `morethan` / `lessthan` (`=` inclusive) or an operator in the value.
        """
        if not isinstance(criterion, dict) or "criteria" in criterion:
            return None
        if "NOT" in str(criterion.get("link", "AND")).upper():
            return None
        option = self.options[int(criterion["field"])]
        searchtype = str(criterion["searchtype"])
        value = criterion["value"]
        text = "" if value is None else str(value)
        same_column = option.kind == "column" and option.column == sort.column
        if searchtype == "contains":
            if option.datatype in _NUMERIC and _number_operator(text) is not None:
                return (*_number_operator(text), "int") if same_column else None
            if option.datatype == "datetime" and self._date_operator_bound(text) is not None:
                return (*self._date_operator_bound(text), "str") if same_column else None
            return ("all", None, None) if _like_matches_everything(text) else None
        if searchtype not in ("morethan", "lessthan") or not same_column:
            return None
        if option.datatype in _NUMERIC:
            parsed = _number_operator(text)
            return ("none", None, None) if parsed is None else (*parsed, "int")
        if option.datatype == "datetime":
            return (*self._date_bound(text, searchtype), "str")
        return None

    # - criteria

    def _group(self, criteria: list[Any]) -> Callable[[tuple[Any, ...]], bool] | None:
        """Criteria joined like GLPI's SQL: `link` between terms, NOT per term, AND binding tighter than OR."""
        groups: list[list[Callable[[tuple[Any, ...]], bool]]] = []
        for index, criterion in enumerate(criteria):
            link = str(criterion.get("link", "AND")).upper().strip()
            negate = "NOT" in link
            if "criteria" in criterion:
                inner = self._group(php_values(criterion["criteria"]))
                term = inner or (lambda row: True)
            else:
                term = self._criterion(criterion)
            if negate:
                term = _negated(term)
            if groups and index > 0 and link.startswith("OR"):
                groups.append([term])  # OR starts a new AND-chain
            elif groups:
                groups[-1].append(term)
            else:
                groups.append([term])
        if not groups:
            return None
        return lambda row: any(all(term(row) for term in group) for group in groups)

    def _criterion(self, criterion: dict[str, Any]) -> Callable[[tuple[Any, ...]], bool]:
        option = self.options[int(criterion["field"])]
        searchtype = str(criterion["searchtype"])
        value = criterion["value"]
        value = "" if value is None else value
        if searchtype in ("contains", "notcontains"):
            term = self._contains(option, str(value))
        elif searchtype in ("equals", "notequals"):
            term = self._equals(option, value)
        elif searchtype in ("under", "notunder"):
            term = self._under(option, value)
        elif searchtype in ("lessthan", "morethan"):
            term = self._compare(option, str(value), searchtype)
        else:
            term = self._contains(option, str(value))
        return _negated(term) if searchtype.startswith("not") else term

    def _number_compare(self, option: SearchOption, text: str) -> Callable[[tuple[Any, ...]], bool] | None:
        """Numbers: `>100`, `<= 5` compare; a bare number is equality — whatever the searchtype (GLPI)."""
        parsed = _number_operator(text)
        if parsed is None:
            return None
        operator, number = parsed
        if operator == "=":
            return lambda row: self._raw(option, row) == number
        compare = {"<": int.__lt__, ">": int.__gt__, "<=": int.__le__, ">=": int.__ge__}[operator]
        return lambda row: isinstance(self._raw(option, row), int) and compare(self._raw(option, row), number)

    def _contains(self, option: SearchOption, text: str) -> Callable[[tuple[Any, ...]], bool]:
        if option.datatype in ("number", "count", "actiontime", "specific"):
            numeric = self._number_compare(option, text)
            if numeric is not None:
                return numeric
        if option.datatype == "datetime":
            compared = self._date_operator(option, text)
            if compared is not None:
                return compared
        matcher = _like(text)
        return lambda row: (
            any(matcher(value) for value in self._values(option, row))
            or (not self._values(option, row) and matcher(None))
        )

    def _equals(self, option: SearchOption, value: Any) -> Callable[[tuple[Any, ...]], bool]:
        text = str(value)
        if option.column == "status" and text in _STATUS_GROUPS:
            allowed = _STATUS_GROUPS[text]
            return lambda row: self._raw(option, row) in allowed
        if option.column in ("urgency", "impact", "priority") and php_int(text) < 0:
            floor = -php_int(text)  # "-3": at least medium
            return lambda row: isinstance(self._raw(option, row), int) and self._raw(option, row) >= floor
        if option.datatype == "datetime":
            return lambda row: str(self._raw(option, row) or "").startswith(text)
        if option.kind in ("dropdown", "user", "actors") or option.datatype in ("number", "specific", "count"):
            wanted = self.session.user_id if text == "myself" else php_int(text)
            return lambda row: wanted in self._ids(option, row)
        return lambda row: self._raw(option, row) == sanitize(text)

    def _under(self, option: SearchOption, value: Any) -> Callable[[tuple[Any, ...]], bool]:
        target = option.target or ""
        if target == "Entity":
            allowed = self.model.data.entity_descendants(php_int(value))
        else:
            allowed = self._tree_descendants(target, php_int(value))
        return lambda row: any(ref in allowed for ref in self._ids(option, row))

    def _tree_descendants(self, itemtype: str, root: int) -> set[int]:
        table = self.model.table(itemtype)
        fk = table.schema.tree_fk
        found = {root}
        if fk is None:
            return found
        changed = True
        while changed:
            changed = False
            for row in table.rows.values():
                if row[table.pos[fk]] in found and row[0] not in found:
                    found.add(row[0])
                    changed = True
        return found

    def _compare(self, option: SearchOption, text: str, searchtype: str) -> Callable[[tuple[Any, ...]], bool]:
        if option.datatype in ("number", "count", "actiontime", "specific"):
            numeric = self._number_compare(option, text)
            if numeric is not None:
                return numeric
            return lambda row: False
        if option.datatype == "datetime":
            operator, bound = self._date_bound(text, searchtype)
        else:
            operator, bound = ">" if searchtype == "morethan" else "<", sanitize(text)
        return _comparison(lambda row: self._raw(option, row), operator, bound)

    def _date_bound(self, text: str, searchtype: str) -> tuple[str, str]:
        """`morethan` / `lessthan` on a date: strict, or inclusive when the value starts with `=`."""
        operator = ">" if searchtype == "morethan" else "<"
        if text.startswith("="):
            operator += "="
        return operator, self._date_value(text.lstrip("="))

    def _date_operator(self, option: SearchOption, text: str) -> Callable[[tuple[Any, ...]], bool] | None:
        parsed = self._date_operator_bound(text)
        if parsed is None:
            return None
        return _comparison(lambda row: self._raw(option, row), *parsed)

    def _date_operator_bound(self, text: str) -> tuple[str, str] | None:
        """`contains` on a date with an operator in the value (`>= 2024-01-01`): (operator, bound)."""
        match = re.fullmatch(r"\s*([<>]=?)\s*(.+)", text)
        if match is None:
            return None
        return match.group(1), self._date_value(match.group(2))

    def _date_value(self, text: str) -> str:
        """A criterion date as SQL compares it: `dd-mm-yyyy` rewritten, a bare number = months from now,
        a date alone = its midnight."""
        text = text.strip()
        if re.fullmatch(r"-?\d+", text):
            now = datetime.fromtimestamp(self.model.time.now_ts(), self.model.time.zone)
            month = now.month - 1 + int(text)
            year, month = now.year + month // 12, month % 12 + 1
            day = min(now.day, 28)
            return f"{year:04d}-{month:02d}-{day:02d} {now:%H:%M:%S}"
        match = re.fullmatch(r"(\d{2})-(\d{2})-(\d{4})(.*)", text)
        if match:
            text = f"{match.group(3)}-{match.group(2)}-{match.group(1)}{match.group(4)}"
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            text += " 00:00:00"
        elif re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", text):
            text += ":00"
        return text

    # - values

    def _raw(self, option: SearchOption, row: tuple[Any, ...]) -> Any:
        if option.kind in ("column", "dropdown", "user") and option.column:
            return row[self.table.pos[option.column]]
        if option.kind == "count":
            return len(self.model.table(option.target or "").where(items_id=row[0], itemtype=self.itemtype))
        return None

    def _ids(self, option: SearchOption, row: tuple[Any, ...]) -> list[Any]:
        if option.kind == "actors":
            kind = option.target or "User"
            position = 2
            return [actor[position] for actor in self.model.ticket_actors(row[0], kind, option.role)]
        return [self._raw(option, row)]

    def _values(self, option: SearchOption, row: tuple[Any, ...]) -> list[Any]:
        """What the option displays for the row, as a list (empty when nothing)."""
        if option.kind == "actors":
            kind = option.target or "User"
            names = self._name_table(kind)
            values = []
            for actor in self.model.ticket_actors(row[0], kind, option.role):
                if kind == "User" and not actor[2]:
                    values.append(actor[5] or None)  # an e-mail-only requester shows the address
                else:
                    values.append(names.get(actor[2]))
            return [value for value in values if value is not None]
        if option.kind in ("dropdown", "user"):
            name = self._name_table(option.target or "").get(self._raw(option, row))
            return [] if name is None else [name]
        value = self._raw(option, row)
        return [] if value is None else [value]

    def _name_table(self, itemtype: str) -> dict[Any, Any]:
        names = self._names.get(itemtype)
        if names is None:
            table = self.model.table(itemtype)
            column = "name" if itemtype == "User" or "completename" not in table.pos else "completename"
            names = self._names[itemtype] = {row[0]: row[table.pos[column]] for row in table.rows.values()}
        return names

    def _sort_value(self, option: SearchOption, row: tuple[Any, ...]) -> Any:
        if option.kind in ("column", "count"):
            return self._raw(option, row)
        values = self._values(option, row)
        return None if not values else "$$$$".join(str(value) for value in values)

    def columns(self, forcedisplay: list[int], criteria: list[Any], sorts: list[int]) -> list[int]:
        """Displayed columns: 1, 2 and 80 always, forcedisplay (else the display preferences), the criteria's
        and the sort's fields — each once, in that order."""
        wanted: list[int] = [2, 1]
        wanted += forcedisplay or list(_DEFAULT_DISPLAY.get(self.itemtype, ()))
        wanted += [php_int(c["field"]) for c in _flatten(criteria) if str(c.get("field", "")).isdigit()]
        wanted += sorts
        wanted.append(80)
        return [column for column in dict.fromkeys(wanted) if column in self.options]

    def display(self, row_id: int, columns: list[int], uid: bool) -> dict[str, Any]:
        row = self.table.rows[row_id]
        shown: dict[str, Any] = {}
        for column in columns:
            option = self.options[column]
            values = self._values(option, row)
            value: Any = None if not values else values[0] if len(values) == 1 else values
            if option.kind == "count":
                value = self._raw(option, row)
            shown[option.uid if uid else str(column)] = value
        return shown


def _negated(term: Callable[[tuple[Any, ...]], bool]) -> Callable[[tuple[Any, ...]], bool]:
    return lambda row: not term(row)


def _flatten(criteria: list[Any]) -> Iterator[dict[str, Any]]:
    for criterion in criteria:
        if isinstance(criterion, dict):
            if "criteria" in criterion:
                yield from _flatten(php_values(criterion["criteria"]))
            else:
                yield criterion


def _comparison(read: Callable[[tuple[Any, ...]], Any], operator: str, bound: Any) -> Callable[..., bool]:
    """SQL-like comparison of a column with a bound: NULL never matches."""
    compare = {"<": str.__lt__, ">": str.__gt__, "<=": str.__le__, ">=": str.__ge__}[operator]

    def term(row: tuple[Any, ...]) -> bool:
        value = read(row)
        return value is not None and compare(str(value), str(bound))

    return term


# --- the simulator --------------------------------------------------------------------------------------------


class GlpiSimulator:
    """A GLPI 10 legacy REST API on 127.0.0.1 over generated data. Use as a context manager (or start/stop).

    `tickets`, `seed`, `assets` (default tickets // 10, at least 20) and `anchor` (when the generated history
    ends; default: today at midnight UTC, so the data is the same all day) decide the data; `timezone` is the
    server's zone (dates are zone-less strings in it); `user_tokens` maps API tokens to logins (default
    `DEFAULT_USER_TOKENS`: the hub's `itsm-hub` account and the technician `tech`); `credentials` (login →
    password) enables Basic login; `app_token` makes the App-Token header mandatory; `list_limit` is the API
    user's page size (GLPI default 15); sessions expire after `session_ttl_seconds` idle; `malformed_ids` damage
    those tickets (see `MALFORMED_KINDS`); `clock` returns "now" (aware datetime) for dates and session expiry;
    `latency_ms` delays every answer by that much on the server side, as a PHP GLPI behind a web server takes
    30–100 ms per request (concurrent requests wait in parallel, as PHP-FPM workers do).
    """

    def __init__(
        self,
        tickets: int = 40,
        *,
        seed: int = 0,
        timezone: str = "Europe/Paris",
        app_token: str | None = None,
        user_tokens: dict[str, str] | None = None,
        credentials: dict[str, str] | None = None,
        list_limit: int = 15,
        session_ttl_seconds: float = 1440,
        assets: int | None = None,
        malformed_ids: Iterable[int] = (),
        clock: Callable[[], datetime] | None = None,
        anchor: datetime | None = None,
        port: int = 0,
        latency_ms: float = 0,
    ) -> None:
        if latency_ms < 0:
            raise ValueError("latency_ms must be 0 or more")
        self.latency_s = latency_ms / 1000
        self.app_token = app_token
        self.user_tokens = dict(DEFAULT_USER_TOKENS if user_tokens is None else user_tokens)
        self.credentials = credentials
        self.session_ttl_seconds = session_ttl_seconds
        self.port = port
        self.time = ServerTime(timezone, clock)
        anchor_ts = int(anchor.timestamp()) if anchor is not None else self.time.now_ts() // 86400 * 86400
        logins = (*self.user_tokens.values(), *(credentials or {}))
        options = DataOptions(
            tickets=tickets,
            seed=seed,
            assets=max(20, tickets // 10) if assets is None else assets,
            anchor_ts=anchor_ts,
            malformed_ids=tuple(malformed_ids),
            extra_logins=tuple(logins),
        )
        started = time.perf_counter()
        self.data = generate(options, self.time)
        self.generation_seconds = time.perf_counter() - started
        self._model = _Model(self.data, self.time, list_limit)
        self._lock = threading.RLock()
        self._sessions: dict[str, Session] = {}
        self._faults = _Faults()
        #: Files of the documents `add_document` created, by document id (the others' are generated).
        self._files: dict[int, bytes] = {}
        self._api = _Api(self)
        self._server: LoopbackServer | None = None
        self._url: str | None = None
        #: (method, path?query, status) of the last requests, newest last.
        self.requests: deque[tuple[str, str, int]] = deque(maxlen=10_000)

    # - lifecycle

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT/apirest.php` once started."""
        if self._url is None:
            raise RuntimeError("the GLPI simulator is not started (use it as a context manager)")
        return self._url

    def __enter__(self) -> GlpiSimulator:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Serve on 127.0.0.1 (`port`, or a free one for 0) from a background thread; returns once listening."""
        # the Date header is `_dated`'s, by the simulator's clock
        self._server = LoopbackServer(_build_app(self), name="glpi-simulator", port=self.port, date_header=False)
        self._url = self._server.start() + API_PATH

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.stop()
        self._server = None
        self._url = None

    # - sessions

    def _open_session(self, user_id: int) -> Session:
        users = self.data["User"]
        session = Session(
            token=secrets.token_hex(13),
            user_id=user_id,
            login=users.rows[user_id][users.pos["name"]],
            groups=self._model.user_groups(user_id),
            last_seen=self._now(),
        )
        self._sessions[session.token] = session
        return session

    def _live_session(self, token: str) -> Session | None:
        session = self._sessions.get(token)
        if session is None:
            return None
        now = self._now()
        if now - session.last_seen > self.session_ttl_seconds:
            del self._sessions[token]  # PHP's garbage collector got it
            return None
        session.last_seen = now
        return session

    def _now(self) -> float:
        return float(self.time.now_ts())

    def expire_sessions(self) -> int:
        """Forget every session (as PHP's session GC would); the next call with one gets 401. Returns how many."""
        with self._lock:
            count = len(self._sessions)
            self._sessions.clear()
            return count

    # - fault injection

    def fail_next(
        self,
        method: str,
        path_regex: str,
        status: int | None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        times: int = 1,
        delay: float = 0.0,
    ) -> None:
        """Answer the next `times` requests whose method matches (`*` = any) and whose path (after `apirest.php`,
        with `?query` when there is one, e.g. `/Ticket/3/ITILFollowup?range=0-99`) matches `path_regex`
        (`re.search`) with `status`, `body` and `headers` instead of serving them — after `delay` seconds.
        Body: a str or bytes is sent as is (text/html: a proxy's error page), anything else as JSON; None gives
        GLPI-looking JSON. `status=None` only delays, then serves normally (for timeouts)."""
        fault = _Fault(method.upper(), re.compile(path_regex), status, body, dict(headers or {}), times, delay)
        self._faults.add(fault)

    def clear_faults(self) -> None:
        self._faults.clear()

    @property
    def indexed_search(self) -> bool:
        """Whether `/search` answers the sync's shapes from sorted indexes (the default) or always filters and
        sorts every row (the general path, which the indexed answers must equal)."""
        return self._model.search_indexes.enabled

    @indexed_search.setter
    def indexed_search(self, enabled: bool) -> None:
        with self._lock:
            self._model.search_indexes.enabled = enabled
            self._api._cache.clear()  # answers computed the other way

    # - HTTP entry point

    def _serve(self, request: ApiRequest) -> ApiResponse:
        with self._lock:
            response = self._api.handle(request)
        target = "/" + request.path.lstrip("/") + (f"?{request.query}" if request.query else "")
        self.requests.append((request.method, target, response.status))
        return response

    # - acting as people in GLPI

    def _as(self, login: str | None) -> Session:
        login = login or "tech"
        user_id = self.data.user_id(login)
        if user_id is None:
            raise SimulatorError(f"no GLPI user {login!r}")
        return Session(token="", user_id=user_id, login=login, groups=self._model.user_groups(user_id), last_seen=0)

    def _write(self, action: Callable[[], Any]) -> Any:
        with self._lock:
            try:
                return action()
            except Refused as refusal:
                raise SimulatorError(f"GLPI refuses: {refusal}") from None

    def add_ticket(
        self,
        name: str,
        content: str = "<p>Created in GLPI</p>",
        *,
        user: str | None = None,
        requester: str | None = None,
        assign: str | None = None,
        **fields: Any,
    ) -> int:
        """A ticket created in GLPI's UI by `user` (default `tech`), raw text (stored encoded like GLPI's form);
        `requester` / `assign` are logins; other keyword arguments are Ticket columns (status, urgency, …)."""
        actor = self._as(user)
        values: dict[str, Any] = {"name": name, "content": content, **fields}
        if requester:
            values["_users_id_requester"] = self._user(requester)
        if assign:
            values["_users_id_assign"] = self._user(assign)
        return self._write(lambda: self._model.add("Ticket", values, actor))

    def add_followup(
        self, ticket_id: int, content: str, *, user: str | None = None, is_private: bool = False, **fields: Any
    ) -> int:
        """A followup written in GLPI by `user` (default `tech`). GLPI's rules apply: the ticket's date_mod moves,
        and a requester's answer reopens a solved or pending ticket."""
        actor = self._as(user)
        values = {
            "itemtype": "Ticket",
            "items_id": ticket_id,
            "content": content,
            "is_private": int(is_private),
            **fields,
        }
        return self._write(lambda: self._model.add("ITILFollowup", values, actor))

    def add_solution(self, ticket_id: int, content: str, *, user: str | None = None) -> int:
        """A solution by `user`: the ticket becomes Solved (refused when it already is)."""
        actor = self._as(user)
        values = {"itemtype": "Ticket", "items_id": ticket_id, "content": content}
        return self._write(lambda: self._model.add("ITILSolution", values, actor))

    def add_document(
        self,
        ticket_id: int,
        filename: str,
        content: bytes,
        *,
        mime: str = "application/octet-stream",
        user: str | None = None,
    ) -> int:
        """A file uploaded to a ticket in GLPI by `user`: a Document whose file is `content` (served as is by
        `GET /Document/:id`), linked to the ticket (its date_mod moves). Returns the document's id."""
        actor = self._as(user)
        ticket = self.ticket(ticket_id)
        if ticket is None:
            raise SimulatorError(f"no Ticket {ticket_id}")
        sha1 = hashlib.sha1(content).hexdigest()
        extension = filename.rsplit(".", 1)[-1].upper() if "." in filename else "BIN"
        document = {
            "entities_id": ticket["entities_id"],
            "name": f"Document Ticket {ticket_id}",
            "filename": filename,
            "filepath": f"{extension}/{sha1[:2]}/{sha1[2:]}.{extension.lower()}",
            "mime": mime,
            "tickets_id": ticket_id,
            "sha1sum": sha1,
        }
        with self._lock:
            document_id = self._write(lambda: self._model.add("Document", document, actor))
            link = {"documents_id": document_id, "items_id": ticket_id, "itemtype": "Ticket"}
            self._write(lambda: self._model.add("Document_Item", link, actor))
            self._files[document_id] = content
        return document_id

    def set_status(self, ticket_id: int, status: int, *, user: str | None = None) -> None:
        """Change a ticket's status in GLPI (dates stamped or cleared as GLPI does)."""
        self.update("Ticket", ticket_id, user=user, status=status)

    def update(self, itemtype: str, item_id: int, *, user: str | None = None, **fields: Any) -> None:
        """Edit any row in GLPI as `user` (raw text; GLPI's update rules and side effects apply)."""
        actor = self._as(user)
        outcome = self._write(lambda: self._model.update(itemtype, {"id": item_id, **fields}, actor))
        if outcome is None:
            raise SimulatorError(f"no {itemtype} {item_id}")

    def add_actor(
        self,
        ticket_id: int,
        role: int,
        *,
        login: str | None = None,
        group_id: int | None = None,
        user: str | None = None,
    ) -> int:
        """Add a user (by login) or a group as requester (1), assignee (2) or observer (3)."""
        actor = self._as(user)
        if login is not None:
            values = {"tickets_id": ticket_id, "users_id": self._user(login), "type": role}
            return self._write(lambda: self._model.add("Ticket_User", values, actor))
        values = {"tickets_id": ticket_id, "groups_id": group_id, "type": role}
        return self._write(lambda: self._model.add("Group_Ticket", values, actor))

    def trash(self, itemtype: str, item_id: int, *, user: str | None = None) -> None:
        """Put a row in the trash (is_deleted = 1) as GLPI's Delete does."""
        actor = self._as(user)
        if self._write(lambda: self._model.delete(itemtype, item_id, actor, force_purge=False)) is None:
            raise SimulatorError(f"no {itemtype} {item_id}")

    def restore(self, itemtype: str, item_id: int, *, user: str | None = None) -> None:
        self.update(itemtype, item_id, user=user, is_deleted=0)

    def purge(self, itemtype: str, item_id: int, *, user: str | None = None) -> None:
        """Delete a row for good (and its children): afterwards GLPI answers 404 for it."""
        actor = self._as(user)
        if self._write(lambda: self._model.delete(itemtype, item_id, actor, force_purge=True)) is None:
            raise SimulatorError(f"no {itemtype} {item_id}")

    def malform(self, ticket_id: int, kind: str) -> None:
        """Damage one ticket (`MALFORMED_KINDS`) the way bad imports do."""
        with self._lock:
            break_ticket(self.data["Ticket"], ticket_id, kind)
            self._model.version += 1

    def touch(self, fraction: float, seed: int = 0, *, user: str | None = None) -> list[int]:
        """Modify `fraction` of the live tickets as a technician would (a followup, an urgency change or a status
        step), each bumping date_mod to now. Deterministic by `seed`; returns the touched ids."""
        actor = self._as(user)
        rng = random.Random(seed)
        with self._lock:
            tickets = self.data["Ticket"]
            deleted = tickets.pos["is_deleted"]
            live = [row[0] for row in tickets.rows.values() if not row[deleted]]
            chosen = sorted(rng.sample(live, round(len(live) * fraction)))
            for ticket_id in chosen:
                self._touch_one(ticket_id, rng, actor)
            # A database maintains its indexes as it writes; the next reads do not pay for them
            self._model.search_indexes.rebuild()
            self._api.rebuild_lists()
        return chosen

    def _touch_one(self, ticket_id: int, rng: random.Random, actor: Session) -> None:
        tickets = self.data["Ticket"]
        row = tickets.rows[ticket_id]
        status, urgency = row[tickets.pos["status"]], row[tickets.pos["urgency"]]
        action = rng.random()
        try:
            if action < 0.5 and status != CLOSED:
                self._model.add(
                    "ITILFollowup",
                    {
                        "itemtype": "Ticket",
                        "items_id": ticket_id,
                        "content": f"<p>Update #{rng.randint(1, 9999)} & checks</p>",
                    },
                    actor,
                )
                return
            if action < 0.75 or status not in (1, 2, 3, 4, 5):
                new_urgency = urgency % 5 + 1 if isinstance(urgency, int) else 3
                self._model.update("Ticket", {"id": ticket_id, "urgency": new_urgency}, actor)
                return
            step = {1: ASSIGNED, 2: WAITING, 3: WAITING, 4: ASSIGNED, 5: CLOSED}[status]
            self._model.update("Ticket", {"id": ticket_id, "status": step}, actor)
        except Refused:
            self._model.touch_ticket(ticket_id, actor)

    def _user(self, login: str) -> int:
        user_id = self.data.user_id(login)
        if user_id is None:
            raise SimulatorError(f"no GLPI user {login!r}")
        return user_id

    # - reading for assertions

    def row(self, itemtype: str, item_id: int, *, decoded: bool = False) -> dict[str, Any] | None:
        """A row as stored (text HTML-encoded), or decoded once with `decoded=True`; None when absent."""
        with self._lock:
            table = self.data[itemtype]
            found = table.get(item_id)
            if found is None:
                return None
            fields = table.as_dict(found)
        return {key: decode_html(value) for key, value in fields.items()} if decoded else fields

    def rows(self, itemtype: str, /, *, decoded: bool = False, **equal: Any) -> list[dict[str, Any]]:
        """Rows whose columns equal the keyword arguments (`itemtype=` included), in id order."""
        with self._lock:
            table = self.data[itemtype]
            found = [table.as_dict(row) for row in (table.where(**equal) if equal else table.rows.values())]
        if decoded:
            return [{key: decode_html(value) for key, value in row.items()} for row in found]
        return found

    def ticket(self, ticket_id: int, *, decoded: bool = False) -> dict[str, Any] | None:
        return self.row("Ticket", ticket_id, decoded=decoded)

    def followups(self, ticket_id: int, *, decoded: bool = False) -> list[dict[str, Any]]:
        return self.rows("ITILFollowup", decoded=decoded, items_id=ticket_id, itemtype="Ticket")

    def count(self, itemtype: str) -> int:
        with self._lock:
            return len(self.data[itemtype])

    def user_id(self, login: str) -> int:
        with self._lock:
            return self._user(login)


# --- HTTP plumbing --------------------------------------------------------------------------------------------


def _build_app(sim: GlpiSimulator) -> Starlette:
    """One catch-all route under /apirest.php; faults first, then the API under the simulator's lock."""

    async def endpoint(request: Request) -> Response:
        if request.method == "OPTIONS":  # CORS preflight: GLPI answers with the allowed methods and headers
            return Response(b"", 200, _CORS)
        path = request.path_params.get("rest", "")
        query = request.url.query
        target = "/" + path.lstrip("/") + (f"?{query}" if query else "")
        fault = sim._faults.take(request.method, target)
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.status is not None:
                sim.requests.append((request.method, target, fault.status))
                return _dated(sim, _fault_response(fault))
        body = await request.body()
        if sim.latency_s:
            await asyncio.sleep(sim.latency_s)
        api_request = ApiRequest(request.method, path, query, dict(request.headers), body)
        return _dated(sim, _to_response(sim._serve(api_request)))

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    return Starlette(routes=[Route(API_PATH + "{rest:path}", endpoint, methods=methods)])


def _dated(sim: GlpiSimulator, response: Response) -> Response:
    """The web server's Date header, by the simulator's clock (the one `date_mod` is written with), as a real
    GLPI's PHP and web server share their host's clock."""
    response.headers["Date"] = formatdate(sim.time.now_ts(), usegmt=True)
    return response


def _to_response(response: ApiResponse) -> Response:
    headers = {**_NO_CACHE, **response.headers}
    if response.raw is not None:
        headers.setdefault("Content-Type", "text/plain; charset=UTF-8")
        return Response(response.raw, response.status, headers)
    headers["Content-Type"] = JSON_TYPE
    return Response(orjson.dumps(response.body), response.status, headers)


def _fault_response(fault: _Fault) -> Response:
    headers = dict(fault.headers)
    status = fault.status or 500
    if isinstance(fault.body, str | bytes):
        headers.setdefault("Content-Type", "text/html; charset=UTF-8")
        content = fault.body.encode() if isinstance(fault.body, str) else fault.body
        return Response(content, status, headers)
    body = fault.body if fault.body is not None else _default_fault_body(status)
    headers.setdefault("Content-Type", JSON_TYPE)
    return Response(orjson.dumps(body), status, headers)


def _default_fault_body(status: int) -> list[str]:
    if status >= 500:
        return ["ERROR_SQL", "Unexpected SQL Error : simulated failure"]
    return ["ERROR", f"simulated HTTP {status}"]


# --- command line ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """`python -m simulators.glpi.simulator --tickets N`: print the base URL when ready, serve until a signal."""
    parser = argparse.ArgumentParser(prog="python -m simulators.glpi.simulator", description=main.__doc__)
    parser.add_argument("--tickets", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--assets", type=int, default=None)
    parser.add_argument("--timezone", default="Europe/Paris")
    parser.add_argument("--list-limit", type=int, default=15)
    parser.add_argument("--session-ttl", type=float, default=1440)
    parser.add_argument("--app-token", default=None)
    parser.add_argument(
        "--user-token",
        action="append",
        default=[],
        metavar="TOKEN[=LOGIN]",
        help="an API token (for the itsm-hub account unless =LOGIN is given); repeatable",
    )
    parser.add_argument("--malformed", default="", help="comma-separated ticket ids to damage")
    parser.add_argument(
        "--latency-ms", type=float, default=0, help="delay every answer by this much (a real GLPI: 30-100 ms)"
    )
    parser.add_argument(
        "--control",
        action="store_true",
        help="read commands on stdin (`touch FRACTION [SEED]`, `advance SECONDS`; each answered with a JSON line); "
        "end of input stops",
    )
    args = parser.parse_args(argv)
    tokens = None
    if args.user_token:
        tokens = {}
        for entry in args.user_token:
            token, _, login = entry.partition("=")
            tokens[token] = login or "itsm-hub"
    malformed = [int(part) for part in args.malformed.split(",") if part.strip()]
    shift = [timedelta()]  # `advance` moves the clock forward
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    sim = GlpiSimulator(
        args.tickets,
        seed=args.seed,
        timezone=args.timezone,
        app_token=args.app_token,
        user_tokens=tokens,
        list_limit=args.list_limit,
        session_ttl_seconds=args.session_ttl,
        assets=args.assets,
        malformed_ids=malformed,
        port=args.port,
        latency_ms=args.latency_ms,
        clock=lambda: datetime.now(UTC) + shift[0],
    )
    with sim:
        print(sim.url, flush=True)
        print(
            f"generated {args.tickets} tickets in {sim.generation_seconds:.1f} s; tokens: "
            f"{', '.join(f'{t} ({login})' for t, login in sim.user_tokens.items())}",
            file=sys.stderr,
            flush=True,
        )
        if args.control:
            threading.Thread(target=_control, args=(sim, stop, shift), daemon=True, name="glpi-control").start()
        while not stop.wait(0.5):
            pass
    return 0


def _control(sim: GlpiSimulator, stop: threading.Event, shift: list[timedelta]) -> None:
    """`--control`: ``touch FRACTION [SEED]`` edits that share of the live tickets; ``advance SECONDS`` moves GLPI's
    clock forward (`shift`), as if that much time had passed: dates written and the Date header follow it."""

    def handle(words: list[str]) -> dict[str, Any]:
        if words[0] == "touch" and len(words) in (2, 3):
            return {"touched": len(sim.touch(float(words[1]), int(words[2]) if len(words) == 3 else 0))}
        if words[0] == "advance" and len(words) == 2:
            shift[0] += timedelta(seconds=float(words[1]))
            return {"now": sim.time.now()}
        raise ValueError("expected: touch FRACTION [SEED], or advance SECONDS")

    answer_commands(handle, stop)


if __name__ == "__main__":
    sys.exit(main())
