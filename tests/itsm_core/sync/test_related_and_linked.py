"""Comments carried inside upstream records, and what a linked two-way system is told of a ticket's changes."""

import json
from datetime import UTC, datetime

from itsm_core.mapping import load_mapping
from itsm_core.models import RawRecord
from itsm_core.rules import Rules, RulesConfig
from itsm_core.store.outbox import due
from itsm_core.store.tickets import get_ticket, set_statuses
from itsm_core.sync.ingest import SourcePipeline, ingest_batch
from itsm_core.sync.linked import LinkedSystemTarget
from itsm_core.sync.propagate import HUB, Change, Propagator
from itsm_core.sync.related import RelatedRecords, remember_comment_ids

AT = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def record(comments, *, title="Printer", external_id="Ticket/1") -> RawRecord:
    body = {"subject": title, "from_address": "ann@example.org", "comments": comments, "priority": 3}
    return RawRecord(external_id, json.dumps(body).encode(), "json", AT)


def comment(n, body="Checked", public=True):
    return {"external_id": f"ITILFollowup/{n}", "body": body, "public": public, "author": "tech", "created_at": None}


def glpi_like_mapping():
    """The email mapping plus a priority, as a ticket system gives one (the hub then derives none to push)."""
    mapping = load_mapping("email")
    return mapping.model_copy(update={"fields": {**mapping.fields, "priority": "priority"}})


def pipeline(*targets) -> SourcePipeline:
    return SourcePipeline(
        "glpi",
        lambda payload: json.loads(payload),
        glpi_like_mapping(),
        Rules(RulesConfig()),
        intake=RelatedRecords("glpi"),
        propagator=Propagator(tuple(targets)),
    )


def run(store, *records, targets=()):
    with store.transaction() as conn:
        return ingest_batch(conn, pipeline(*targets), list(records))


def comments_of(store, ticket_id=1):
    with store.connect() as conn:
        return [(c["body"], c["public"], c["origin"]) for c in get_ticket(conn, ticket_id)["comments"]]


def test_comments_inside_a_record_are_added_once_by_their_identity(store):
    run(store, record([comment(1), comment(2, "Private note", public=False)]))
    run(store, record([comment(1), comment(2, "Private note", public=False), comment(3, "Fixed")], title="Printer!"))
    assert comments_of(store) == [("Checked", True, "glpi"), ("Private note", False, "glpi"), ("Fixed", True, "glpi")]


def test_a_comment_the_hub_pushed_is_recognised_when_it_comes_back(store):
    run(store, record([]))
    with store.transaction() as conn:
        from itsm_core.models import Comment
        from itsm_core.store.comments import add_comments

        (comment_id,) = add_comments(conn, [(1, Comment(body="From mail", origin="mailbox"))])
        remember_comment_ids(conn, "glpi", [("ITILFollowup/9", comment_id)])  # what the push recorded
    run(store, record([comment(9, "From mail")], title="Printer (2)"))
    assert comments_of(store) == [("From mail", True, "mailbox")]


def test_a_linked_system_hears_of_hub_changes_and_foreign_comments_not_of_its_own(store):
    glpi = LinkedSystemTarget("glpi")
    run(store, record([comment(1)]), targets=[glpi])  # from glpi itself: nothing to push back
    with store.connect() as conn:
        assert due(conn, "glpi") == []
    with store.transaction() as conn:
        set_statuses(conn, {1: "in_progress"}, "user:ops")
        Propagator((glpi,)).propagate(conn, [Change(1, frozenset({"status", "title"}), (1,), origin=HUB)])
    with store.connect() as conn:
        note, update = (row["fields"] for row in due(conn, "glpi"))  # comments first: a solution may move status
    assert update == {"op": "update", "external_id": "Ticket/1", "fields": {"status": "in_progress"}}
    assert note["op"] == "comment" and note["comment_id"] == 1 and note["body"] == "Checked"


def test_a_ticket_not_linked_to_the_system_is_not_pushed_there(store):
    run(store, record([]))
    with store.transaction() as conn:
        queued = Propagator((LinkedSystemTarget("solman"),)).propagate(conn, [Change(1, frozenset({"status"}))])
    assert queued == {}
