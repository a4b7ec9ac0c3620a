"""`itsm webhooks serve` over real HTTP: what is refused stores nothing, what is accepted is landed before its 202
and becomes a ticket within seconds; retries are no-ops; Alertmanager's firing → resolved pair is one ticket."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest

from itsm_core.store.quarantine import list_dead_letters
from itsm_core.store.tables import TicketRow, WebhookDeliveryRow
from tests.support.webhook_receiver import BEARER, SECRET, wait_until

FIRING: dict[str, Any] = {
    "version": "4",
    "groupKey": '{}:{alertname="DiskFull"}',
    "truncatedAlerts": 0,
    "status": "firing",
    "receiver": "itsm-hub",
    "groupLabels": {"alertname": "DiskFull"},
    "commonLabels": {"alertname": "DiskFull", "severity": "critical", "instance": "db-3:9100", "job": "node"},
    "commonAnnotations": {"summary": "Disk /var almost full on db-3", "description": "97% used, 2 GB left"},
    "externalURL": "http://alertmanager:9093",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "DiskFull", "instance": "db-3:9100", "severity": "critical"},
            "annotations": {"summary": "Disk /var almost full on db-3"},
            "startsAt": "2026-12-05T08:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph",
            "fingerprint": "a1b2c3d4e5f60718",
        }
    ],
}
HANDOFF = {
    "event": "handoff",
    "conversation_id": "c-8812",
    "summary": "Cannot install the VPN client",
    "intent": "software_install",
    "user": {"email": "ana@example.org", "name": "Ana Souza"},
    "transcript": [
        {"from": "user", "at": "2026-12-05T09:14:03Z", "text": "Hi, the VPN installer fails"},
        {"from": "bot", "at": "2026-12-05T09:14:05Z", "text": "Which error do you see?"},
        {"from": "user", "at": "2026-12-05T09:14:40Z", "text": "Error 1603"},
    ],
}


def test_a_signed_delivery_is_accepted_then_becomes_a_ticket_with_its_transcript(receiver):
    answer = receiver.bot(HANDOFF, delivery="d-1")
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "accepted" and answer.json()["delivery"] == "d-1"
    ticket = receiver.ticket("chatbot", "c-8812")
    assert ticket["kind"] == "service_request" and ticket["title"] == "Cannot install the VPN client"
    assert ticket["requester"] == "ana@example.org"
    (transcript,) = receiver.comments(ticket["id"])
    assert "Chat transcript (conversation c-8812)" in transcript and "user: Error 1603" in transcript
    follow = {"event": "message", "conversation_id": "c-8812",
              "message": {"from": "user", "at": "2026-12-05T09:16:00Z", "text": "It works after a reboot"}}  # fmt: skip
    assert receiver.bot(follow, delivery="d-2").status_code == 202
    wait_until(lambda: len(receiver.comments(ticket["id"])) == 2)
    assert receiver.comments(ticket["id"])[1].endswith("user: It works after a reboot")


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("forged", "bad signature"),
        ("stale", "stale signature"),
        ("unsigned", "unsigned"),
    ],
)
def test_a_delivery_not_signed_with_the_secret_is_refused_and_nothing_is_stored(receiver, how, reason):
    if how == "forged":
        answer = receiver.bot(HANDOFF, delivery="d-x", secret="not-the-secret")
    elif how == "stale":
        answer = receiver.bot(HANDOFF, delivery="d-x", now=time.time() - 301)
    else:
        answer = receiver.client.post("/webhooks/chatbot", json=HANDOFF)
    assert answer.status_code == 401 and reason in answer.json()["error"]
    assert SECRET not in answer.text
    assert receiver.count(WebhookDeliveryRow) == 0


def test_a_wrong_bearer_token_is_refused(receiver):
    answer = receiver.am(FIRING, token="guessed")
    assert answer.status_code == 401 and answer.json()["error"] == "wrong bearer token"
    basic = receiver.client.post("/webhooks/alertmanager", json=FIRING, headers={"Authorization": "Basic YTpi"})
    assert basic.status_code == 401 and "missing bearer token" in basic.json()["error"]
    assert receiver.count(WebhookDeliveryRow) == 0


def test_the_same_delivery_twice_is_one_change(receiver):
    first = receiver.bot(HANDOFF, delivery="d-7")
    again = receiver.bot(HANDOFF, delivery="d-7")  # the sender's retry: same id, new timestamp and signature
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json() == {**first.json(), "status": "duplicate"}
    receiver.ticket("chatbot", "c-8812")
    # Without a delivery id (Alertmanager sends none) the body is the key.
    assert [receiver.am(FIRING).status_code for _ in range(2)] == [202, 200]
    receiver.ticket("alertmanager", FIRING["groupKey"])
    assert receiver.count(WebhookDeliveryRow) == 2 and receiver.count(TicketRow) == 2


def test_too_large_or_not_json_is_refused_before_anything_is_stored(receiver):
    big = {**HANDOFF, "summary": "x" * 5000}  # the chatbot source allows 4096 bytes
    assert receiver.bot(big, delivery="d-big").status_code == 413
    huge = receiver.client.post(
        "/webhooks/alertmanager", content=b"{" + b" " * (2 * 1024 * 1024) + b"}",
        headers={"Authorization": f"Bearer {BEARER}", "Content-Type": "application/json"},
    )  # fmt: skip
    assert huge.status_code == 413 and "1048576 bytes" in huge.json()["error"]
    form = receiver.client.post(
        "/webhooks/alertmanager", data={"a": "b"}, headers={"Authorization": f"Bearer {BEARER}"}
    )
    assert form.status_code == 415
    broken = receiver.client.post(
        "/webhooks/alertmanager", content=b"{oops",
        headers={"Authorization": f"Bearer {BEARER}", "Content-Type": "application/json"},
    )  # fmt: skip
    assert broken.status_code == 400
    assert receiver.client.post("/webhooks/nobody", json={}).status_code == 404
    assert receiver.count(WebhookDeliveryRow) == 0


def test_a_delivery_that_maps_to_nothing_is_quarantined_with_its_reason(receiver):
    unknown_event = {**HANDOFF, "event": "survey_answered"}
    no_identity = {k: v for k, v in HANDOFF.items() if k != "conversation_id"}
    assert receiver.bot(unknown_event, delivery="d-u").status_code == 202
    assert receiver.bot(no_identity, delivery="d-n").status_code == 202

    def letters() -> list[dict[str, Any]]:
        with receiver.store.connect() as conn:
            return list_dead_letters(conn, source="chatbot")

    wait_until(lambda: len(letters()) == 2)
    reasons = sorted(letter["reason"] for letter in letters())
    assert "'survey_answered'" in reasons[0] and "add it and replay" in reasons[0]
    assert "no body.conversation_id" in reasons[1]
    assert receiver.count(TicketRow) == 0


def test_alertmanager_firing_then_resolved_is_one_ticket_opened_then_resolved(receiver):
    assert receiver.am(FIRING).status_code == 202
    ticket = receiver.ticket("alertmanager", FIRING["groupKey"])
    assert ticket["status"] == "new" and ticket["priority"] == 1 and ticket["title"] == "Disk /var almost full on db-3"
    assert ticket["custom_fields"]["alertname"] == "DiskFull"
    repeat = copy.deepcopy(FIRING)
    repeat["alerts"][0]["endsAt"] = "2026-12-05T08:20:00Z"  # a repeat notification: the same group, still firing
    assert receiver.am(repeat).status_code == 202
    wait_until(lambda: len(receiver.comments(ticket["id"])) == 1)
    assert "still firing" in receiver.comments(ticket["id"])[0]
    resolved = copy.deepcopy(FIRING)
    resolved["status"] = resolved["alerts"][0]["status"] = "resolved"
    resolved["alerts"][0]["endsAt"] = "2026-12-05T08:31:00Z"
    assert receiver.am(resolved).status_code == 202
    wait_until(lambda: receiver.ticket("alertmanager", FIRING["groupKey"])["status"] == "resolved")
    assert receiver.count(TicketRow) == 1


def test_the_openapi_document_and_health(receiver):
    assert receiver.client.get("/healthz").json() == {"status": "ok", "sources": ["alertmanager", "chatbot"]}
    document = receiver.client.get("/openapi.json").json()
    assert set(document["paths"]["/webhooks/{source}"]["post"]["responses"]) >= {"200", "202", "401", "413", "415"}


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_api")
def test_deliveries_a_receiver_did_not_apply_are_applied_by_the_next_cycle(tmp_path, database_url):
    from flows.cycle import hub_cycle
    from tests.support.webhook_receiver import run_receiver

    running = run_receiver(tmp_path, database_url, apply=False)  # receiving only (or a server stopped meanwhile)
    receiver = next(running)
    try:
        assert receiver.bot(HANDOFF, delivery="d-1").status_code == 202
        assert receiver.am(FIRING).status_code == 202
        time.sleep(1)
        assert receiver.count(TicketRow) == 0 and receiver.count(WebhookDeliveryRow) == 2
        results = hub_cycle(config_path=str(receiver.config))
        assert results["chatbot"]["created"] == results["alertmanager"]["created"] == 1
        assert receiver.ticket("chatbot", "c-8812", within=0)["title"] == "Cannot install the VPN client"
        assert hub_cycle(config_path=str(receiver.config))["chatbot"]["fetched"] == 0  # each delivery once
    finally:
        running.close()
