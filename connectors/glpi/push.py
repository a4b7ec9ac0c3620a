"""`GlpiWriter`: the hub's changes (outbox operations of `itsm_core/sync/linked.py`) in GLPI's input format.

- ``update`` → `PUT /Ticket/:id` for status, urgency, impact and priority (canonical values back to GLPI's codes
  through the mapping's value maps); assignment through `Ticket_User` / `Group_Ticket` rows of type 2, added and
  removed one by one — never `_actors`, which replaces every role left out of it;
- ``comment`` → a followup (`ITILFollowup`); a comment starting "Solution:" (how the hub writes a solution) →
  an `ITILSolution`, which solves the ticket in GLPI, or a followup if GLPI refuses it (already solved).

Each operation returns what GLPI now holds for the hub's echo suppression: the canonical values pushed, and the
identity GLPI gave a new followup or solution. A followup is looked for before it is posted, so an operation
sent again after a crash (between GLPI's answer and the outbox's commit) does not post it twice.
"""

from __future__ import annotations

import logging
from typing import Any

from connectors._html import text_to_html, unescape
from connectors.base import SourceWriter
from connectors.glpi.client import GlpiClient
from connectors.glpi.config import GlpiSource
from connectors.glpi.decode import ASSIGNED, ticket_glpi_id
from connectors.glpi.source import build_client
from itsm_core.errors import UpstreamRejected
from itsm_core.mapping import load_mapping, reverse_value_map
from itsm_core.sync.linked import Sent

log = logging.getLogger("itsm.connectors.glpi")

#: Canonical ticket fields written as Ticket columns (through the mapping's value maps).
COLUMNS = ("status", "urgency", "impact", "priority")
SOLUTION_PREFIX = "Solution:\n"


class GlpiWriter(SourceWriter):
    def __init__(self, source: GlpiSource, client: GlpiClient | None = None) -> None:
        self.system = source.name
        self.client = client or build_client(source)
        mapping = load_mapping(source.mapping or "glpi")
        self.codes = {name: reverse_value_map(mapping, name) for name in COLUMNS}
        self.values = {name: {code: str(value) for code, value in mapping.value_maps[name].items()} for name in COLUMNS}
        self._user_ids: dict[str, int] = {}
        self._group_ids: dict[str, int] = {}

    def send(self, operation: dict[str, Any]) -> Sent:
        ticket_id = ticket_glpi_id(operation["external_id"])
        if operation["op"] == "update":
            return self._update(ticket_id, operation["fields"])
        if operation["op"] == "comment":
            return self._comment(ticket_id, operation)
        raise ValueError(f"unknown outbox operation {operation['op']!r}")

    def close(self) -> None:
        self.client.close()

    # --- fields --------------------------------------------------------------------------------------------

    def _update(self, ticket_id: int, fields: dict[str, Any]) -> Sent:
        wanted = {name: str(fields[name]) for name in COLUMNS if fields.get(name) is not None}
        columns: dict[str, Any] = {}
        if wanted:
            # GLPI's codes are finer than the canonical levels (urgency 1 and 2 are both "low"): a column whose
            # code already means the wanted value is left alone, so a push never rewrites what GLPI holds.
            current = self.client.get_item("Ticket", ticket_id)
            for name, value in wanted.items():
                if self.values[name].get(str(current.get(name))) == value:
                    continue
                code = self.codes[name].get(value)
                if code is None:
                    raise self._refused(f"{name} {value!r} has no GLPI code in the mapping's value_maps")
                columns[name] = int(code)
        if columns:
            self.client.update("Ticket", ticket_id, columns)
        if "assignee" in fields:
            user = fields["assignee"]
            self._assign(ticket_id, "Ticket_User", "users_id", self._user_id(user) if user else None)
        if "assignment_group" in fields:
            group = fields["assignment_group"]
            self._assign(ticket_id, "Group_Ticket", "groups_id", self._group_id(group) if group else None)
        return Sent(fields=dict(fields))

    def _assign(self, ticket_id: int, itemtype: str, key: str, wanted: int | None) -> None:
        """Make `wanted` the only assigned user (or group) of the ticket: add it, remove the others."""
        rows = self.client.all_sub_items("Ticket", ticket_id, itemtype)
        assigned = [row for row in rows if row.get("type") == ASSIGNED]
        if wanted is not None and not any(row.get(key) == wanted for row in assigned):
            self.client.add(itemtype, {"tickets_id": ticket_id, key: wanted, "type": ASSIGNED})
        for row in assigned:
            if row.get(key) != wanted:
                self.client.delete(itemtype, int(row["id"]))

    def _user_id(self, who: str) -> int:
        """A GLPI user by e-mail (as the hub names people when it knows their address) or by login."""
        if who not in self._user_ids:
            if "@" in who:
                rows = self.client.list_items("UserEmail", params={"searchText": {"email": f"^{who}$"}}).rows
                found = [int(row["users_id"]) for row in rows]
            else:
                rows = self.client.list_items("User", params={"searchText": {"name": f"^{who}$"}}).rows
                found = [int(row["id"]) for row in rows]
            if not found:
                raise self._refused(f"no GLPI user has the login or e-mail {who!r}; create it or fix the assignee")
            self._user_ids[who] = found[0]
        return self._user_ids[who]

    def _group_id(self, name: str) -> int:
        if name not in self._group_ids:
            rows = self.client.list_items("Group", params={"searchText": {"completename": f"^{name}$"}}).rows
            if not rows:
                raise self._refused(f"no GLPI group is named {name!r}; create it or fix the routing rule")
            self._group_ids[name] = int(rows[0]["id"])
        return self._group_ids[name]

    # --- timeline ------------------------------------------------------------------------------------------

    def _comment(self, ticket_id: int, operation: dict[str, Any]) -> Sent:
        body: str = operation["body"]
        if body.startswith(SOLUTION_PREFIX):
            content = text_to_html(body.removeprefix(SOLUTION_PREFIX), operation.get("author"))
            try:
                new_id = self.client.add(
                    "ITILSolution", {"itemtype": "Ticket", "items_id": ticket_id, "content": content}
                )
                return Sent(comment_ref=f"ITILSolution/{new_id}")
            except UpstreamRejected as refusal:
                log.info("%s: ticket %d refused a solution (%s); sent as a followup", self.system, ticket_id, refusal)
        content = text_to_html(body, operation.get("author"))
        for row in self.client.all_sub_items("Ticket", ticket_id, "ITILFollowup"):
            if unescape(row.get("content") or "") == content:
                return Sent(comment_ref=f"ITILFollowup/{row['id']}")  # sent before, its outbox row not marked
        new_id = self.client.add(
            "ITILFollowup",
            {
                "itemtype": "Ticket",
                "items_id": ticket_id,
                "content": content,
                "is_private": 0 if operation.get("public", True) else 1,
            },
        )
        return Sent(comment_ref=f"ITILFollowup/{new_id}")

    def _refused(self, reason: str) -> UpstreamRejected:
        return UpstreamRejected(f"{self.system}: {reason}", system=self.system)
