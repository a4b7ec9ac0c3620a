"""A landed GLPI ticket document → the plain dict `mappings/glpi.yaml` reads. Pure: no network, no store.

The document is what `GlpiConnector.fetch_page` lands for one ticket, self-contained so it can be replayed
without asking GLPI again:

```json
{"ticket": {…Ticket row…}, "followups": […], "solutions": […], "tasks": […],
 "users": […Ticket_User rows…], "groups": […Group_Ticket rows…], "items": […Item_Ticket rows…],
 "document_links": […Document_Item rows…], "files": [{…Document row…, "content_type", "content_b64"}],
 "names": {"users": {"7": {"name": "jdoe", "realname": "Doe", "firstname": "Jane", "email": "…"}},
           "groups": {"3": "Network"}, "categories": {"5": "Network > VPN"}, "entities": {"0": "Root entity"}}}
```

A file over the source's `max_document_bytes` comes as its Document row with ``"skipped": reason`` and no content:
it is no attachment, and the reason becomes a line of the description, as mail does for an attachment over
`max_attachment_bytes`.

GLPI's traps handled here: text is HTML-entity-encoded in GLPI ≤ 10 (decoded exactly once, then sanitised);
dates carry no zone (read in the configured zone, stored UTC); "0000-00-00 00:00:00" and other impossible dates
are refused (the record is quarantined, the rest of the page lands).
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from connectors._html import html_to_text, sanitise_html, unescape
from itsm_core import jsondoc
from itsm_core.errors import ParseError

#: Actor `type` in Ticket_User / Group_Ticket.
REQUESTER, ASSIGNED, OBSERVER = 1, 2, 3
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


def ticket_external_id(glpi_id: int | str) -> str:
    """A GLPI id is unique per itemtype only: identities carry the type."""
    return f"Ticket/{glpi_id}"


def ticket_glpi_id(external_id: str) -> int:
    """The GLPI id in a ticket identity (`ticket_external_id`'s inverse); ValueError for anything else."""
    itemtype, _, number = external_id.partition("/")
    if itemtype != "Ticket" or not number.isdigit():
        raise ValueError(f"not a GLPI ticket identity: {external_id!r}")
    return int(number)


def decode_ticket(payload: bytes, zone: ZoneInfo) -> dict[str, Any]:
    """The document in canonical terms (codes still GLPI's: the mapping translates them). Raises `ParseError`."""
    try:
        document = jsondoc.loads(payload)
        row = document["ticket"]
        glpi_id = int(row["id"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ParseError(f"not a GLPI ticket document ({type(exc).__name__}: {exc})") from None
    names = document.get("names") or {}
    users = _Names(names.get("users") or {})
    content = unescape(row.get("content") or "")
    files = document.get("files") or []
    left_out = [f"[{file['skipped']}]" for file in files if file.get("skipped")]
    text = html_to_text(content) if content else ""
    requester = _actor(document.get("users") or [], REQUESTER, users)
    assignee = _actor(document.get("users") or [], ASSIGNED, users)
    return {
        "id": glpi_id,
        "external_id": ticket_external_id(glpi_id),
        "name": unescape(row.get("name") or "").strip(),
        "content_text": "\n\n".join([text, *left_out]).strip() if left_out else text,
        "content_html": sanitise_html(content) if content else None,
        "status": row.get("status"),
        "type": row.get("type"),
        "urgency": row.get("urgency"),
        "impact": row.get("impact"),
        "priority": row.get("priority"),
        "category": _name(names.get("categories"), row.get("itilcategories_id")),
        "entity": _name(names.get("entities"), row.get("entities_id")),
        "requester": requester.get("email") or requester.get("name"),
        "requester_name": users.display(requester),
        "assignee": assignee.get("email") or assignee.get("name"),
        "assignment_group": next(iter(_groups(document.get("groups") or [], ASSIGNED, names.get("groups"))), None),
        "requester_groups": _groups(document.get("groups") or [], REQUESTER, names.get("groups")),
        "date": _date(row, "date", zone, required=True),
        "date_mod": _date(row, "date_mod", zone, required=True),
        "solvedate": _date(row, "solvedate", zone),
        "closedate": _date(row, "closedate", zone),
        "is_deleted": bool(row.get("is_deleted")),
        "last_updater": users.get(row.get("users_id_lastupdater")).get("name"),
        "comments": _comments(document, users, zone),
        "linked_items": sorted(
            f"{item['itemtype']}/{item['items_id']}" for item in document.get("items") or [] if item.get("itemtype")
        ),
        "attachments": [_attachment(glpi_id, file) for file in files if not file.get("skipped")],
    }


def _attachment(ticket_id: int, file: dict[str, Any]) -> dict[str, Any]:
    """A GLPI document's file as an attachment; its name is the uploaded file name (entity-decoded once)."""
    try:
        content = base64.b64decode(file["content_b64"], validate=True)
    except (KeyError, TypeError, ValueError, binascii.Error):
        raise ParseError(f"ticket {ticket_id}: document {file.get('id')} has no readable file content") from None
    name = unescape(file.get("filename") or file.get("name") or f"document-{file.get('id')}")
    content_type = (file.get("content_type") or file.get("mime") or "application/octet-stream").split(";")[0]
    return {"name": name, "content_type": content_type.strip(), "content": content}


class _Names:
    def __init__(self, table: dict[str, dict[str, Any]]) -> None:
        self.table = table

    def get(self, user_id: Any) -> dict[str, Any]:
        return self.table.get(str(user_id)) or {} if user_id else {}

    @staticmethod
    def display(user: dict[str, Any]) -> str | None:
        full = " ".join(unescape(p) for p in (user.get("firstname"), user.get("realname")) if p)
        return full or (unescape(user["name"]) if user.get("name") else None)


def _actor(rows: list[dict[str, Any]], kind: int, users: _Names) -> dict[str, Any]:
    """The first user in that role (GLPI allows several; the canonical ticket has one of each)."""
    for row in sorted(rows, key=lambda r: r.get("id") or 0):
        if row.get("type") == kind and row.get("users_id"):
            user = dict(users.get(row["users_id"]))
            user["email"] = user.get("email") or row.get("alternative_email") or None
            return user
    return {}


def _groups(rows: list[dict[str, Any]], kind: int, groups: dict[str, str] | None) -> list[str]:
    """The names of the groups in that role, first added first (unnamed ones left out)."""
    found = (
        _name(groups, row["groups_id"])
        for row in sorted(rows, key=lambda r: r.get("id") or 0)
        if row.get("type") == kind and row.get("groups_id")
    )
    return list(dict.fromkeys(name for name in found if name))


def _name(table: dict[str, str] | None, key: Any) -> str | None:
    value = (table or {}).get(str(key)) if key is not None else None
    return unescape(value) if value else None


_GLPI_DATE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", re.ASCII)


def _date(
    row: dict[str, Any], column: str, zone: ZoneInfo, *, required: bool = False, what: str = "ticket"
) -> datetime | None:
    """GLPI's zone-less `YYYY-MM-DD HH:MM:SS`, read in `zone`, as UTC. Empty → None, unless `required`.

    `what` names the row in errors ("ticket 4", "Computer 12").
    """
    value = row.get(column)
    if not value or (value.startswith("0000-00-00") and not required):
        if required:
            raise ParseError(f"{what} {row.get('id')}: {column} is empty; GLPI should always set it")
        return None
    try:
        # the shape checked first, then fromisoformat: strptime costs 30x more, on every date of every document
        if not _GLPI_DATE.fullmatch(value):
            raise ValueError(value)
        local = datetime.fromisoformat(value).replace(tzinfo=zone)  # fold 0: the first of a repeated hour
    except (TypeError, ValueError):
        raise ParseError(f"{what} {row.get('id')}: {column} {value!r} is not a date (YYYY-MM-DD HH:MM:SS)") from None
    return local.astimezone(UTC)


_TIMELINE = (
    ("followups", "ITILFollowup", ""),
    ("solutions", "ITILSolution", "Solution:\n"),
    ("tasks", "TicketTask", "Task:\n"),
)


def _comments(document: dict[str, Any], users: _Names, zone: ZoneInfo) -> list[dict[str, Any]]:
    """Followups, solutions and tasks as comments, oldest first, each with its identity in GLPI."""
    comments = []
    for key, itemtype, prefix in _TIMELINE:
        for row in document.get(key) or []:
            content = unescape(row.get("content") or "")
            author = users.get(row.get("users_id") or row.get("users_id_tech"))
            created = _date(row, "date_creation", zone) or _date(row, "date", zone) or _date(row, "date_mod", zone)
            comments.append(
                {
                    "external_id": f"{itemtype}/{row['id']}",
                    "body": prefix + (html_to_text(content) if content else "(empty)"),
                    "public": not row.get("is_private"),
                    "author": author.get("email") or author.get("name"),
                    "created_at": created,
                }
            )
    return sorted(comments, key=lambda c: (c["created_at"] or datetime.min.replace(tzinfo=UTC), c["external_id"]))
