"""GLPI documents into canonical terms: entity-encoded HTML decoded once, zone-less dates read in GLPI's zone."""

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from connectors.glpi.decode import decode_ticket
from itsm_core.errors import ParseError
from itsm_core.mapping import load_mapping, map_ticket

PARIS = ZoneInfo("Europe/Paris")


def document(**ticket) -> dict:
    row = {
        "id": 42, "entities_id": 1, "name": "VPN &#38; Wi-Fi down", "status": 2, "type": 1, "urgency": 4,
        "impact": 3, "priority": 4, "itilcategories_id": 5, "date": "2026-03-29 01:30:00",
        "date_mod": "2026-10-25 02:30:00", "users_id_lastupdater": 9, "is_deleted": 0,
        "content": "&#60;p&#62;Since 8:00 &#38;amp; nothing works&#60;/p&#62;&#60;script&#62;x()&#60;/script&#62;",
        **ticket,
    }  # fmt: skip
    return {
        "ticket": row,
        "followups": [
            {"id": 5, "content": "&#60;p&#62;Rebooted&#60;/p&#62;", "is_private": 0, "users_id": 9,
             "date_creation": "2026-03-30 10:00:00"},
            {"id": 6, "content": "internal", "is_private": 1, "users_id": 9, "date_creation": "2026-03-30 09:00:00"},
        ],
        "solutions": [{"id": 3, "content": "Replaced the AP", "users_id": 9, "date_creation": "2026-03-31 10:00:00"}],
        "tasks": [],
        "users": [
            {"id": 1, "tickets_id": 42, "users_id": 7, "type": 1},
            {"id": 2, "tickets_id": 42, "users_id": 9, "type": 2},
        ],
        "groups": [
            {"id": 1, "tickets_id": 42, "groups_id": 3, "type": 2},
            {"id": 2, "tickets_id": 42, "groups_id": 4, "type": 1},
            {"id": 3, "tickets_id": 42, "groups_id": 99, "type": 1},  # a group GLPI no longer names
        ],
        "items": [{"id": 1, "tickets_id": 42, "itemtype": "Computer", "items_id": 1001}],
        "names": {
            "users": {
                "7": {"name": "jdoe", "firstname": "Jos&#233;", "realname": "Doe", "email": "jose.doe@example.org"},
                "9": {"name": "tech", "firstname": "", "realname": "", "email": ""},
            },
            "groups": {"3": "R&#233;seau", "4": "Direction &#38; VIP"},
            "categories": {"5": "Network &#62; VPN"},
            "entities": {"1": "Root entity &#62; Paris"},
        },
    }  # fmt: skip


def decode(doc) -> dict:
    return decode_ticket(json.dumps(doc).encode(), PARIS)


def test_text_is_decoded_once_and_html_sanitised():
    ticket = decode(document())
    assert ticket["name"] == "VPN & Wi-Fi down"
    assert ticket["content_html"] == "<p>Since 8:00 &amp; nothing works</p>"  # literal "&amp;" the user typed stays
    assert ticket["content_text"] == "Since 8:00 & nothing works"
    assert ticket["category"] == "Network > VPN" and ticket["entity"] == "Root entity > Paris"
    assert ticket["assignment_group"] == "Réseau" and ticket["requester_name"] == "José Doe"
    assert ticket["requester_groups"] == ["Direction & VIP"]  # conditions and SLA policies can name it


def test_zone_less_dates_are_read_in_glpis_zone_across_dst():
    ticket = decode(document())
    # 29 March 2026 01:30 in Paris is still winter time (UTC+1); 25 October 02:30 is after the switch back (fold 0)
    assert ticket["date"] == datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    assert ticket["date_mod"] == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


def test_actors_comments_and_links():
    ticket = decode(document())
    assert ticket["requester"] == "jose.doe@example.org" and ticket["assignee"] == "tech"
    assert [(c["external_id"], c["public"]) for c in ticket["comments"]] == [
        ("ITILFollowup/6", False),
        ("ITILFollowup/5", True),
        ("ITILSolution/3", True),
    ]
    assert ticket["comments"][1]["body"] == "Rebooted" and ticket["comments"][2]["body"].startswith("Solution:\n")
    assert ticket["linked_items"] == ["Computer/1001"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [({"date": "0000-00-00 00:00:00"}, "date"), ({"date_mod": "yesterday"}, "not a date"), ({"id": None}, "not a")],
)
def test_broken_rows_are_refused_with_a_reason(change, reason):
    with pytest.raises(ParseError, match=reason):
        decode(document(**change))


def test_the_glpi_mapping_turns_codes_into_canonical_values():
    ticket = map_ticket(decode(document()), load_mapping("glpi"), received_at=datetime.now(UTC))
    assert (ticket.status, ticket.kind, ticket.urgency, ticket.impact, ticket.priority) == (
        "assigned", "incident", 1, 2, 2,
    )  # fmt: skip
    assert ticket.custom_fields["glpi_id"] == 42 and ticket.custom_fields["linked_items"] == ["Computer/1001"]
    assert ticket.custom_fields["requester_groups"] == ["Direction & VIP"]
    assert ticket.updated_at == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


def test_an_unknown_status_code_is_a_mapping_error_naming_the_fix():
    from itsm_core.errors import MappingError

    with pytest.raises(MappingError, match=r"value_maps\.status"):
        map_ticket(decode(document(status=99)), load_mapping("glpi"), received_at=datetime.now(UTC))


def test_a_file_left_out_for_its_size_is_no_attachment_but_a_line_of_the_description():
    reason = (
        "document 12 dump.zip (31457280 bytes) left out: over max_document_bytes (26214400); raise "
        "max_document_bytes to import it with the ticket's next change in GLPI"
    )
    doc = document()
    doc["files"] = [
        {"id": 11, "filename": "Rechnung &#38; Lieferschein.pdf", "content_type": "application/pdf",
         "content_b64": "JVBERi0xLjc="},
        {"id": 12, "filename": "dump.zip", "mime": "application/zip", "skipped": reason},
    ]  # fmt: skip
    ticket = decode(doc)
    assert [(a["name"], a["content"]) for a in ticket["attachments"]] == [("Rechnung & Lieferschein.pdf", b"%PDF-1.7")]
    assert ticket["content_text"] == f"Since 8:00 & nothing works\n\n[{reason}]"
    mapped = map_ticket(ticket, load_mapping("glpi"), received_at=datetime.now(UTC))
    assert len(mapped.attachments) == 1 and mapped.description.endswith(f"[{reason}]")
    del doc["files"][1]["skipped"]  # a row without its file and without a reason is a broken record, as before
    with pytest.raises(ParseError, match="document 12 has no readable file content"):
        decode(doc)
