from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from itsm_core.errors import InvalidTransition
from itsm_core.models import STATUS_TRANSITIONS, Ticket, TicketStatus, check_transition


def test_every_status_has_a_transition_entry():
    assert set(STATUS_TRANSITIONS) == set(TicketStatus)


@pytest.mark.parametrize(
    ("current", "requested"),
    [
        ("new", "assigned"),
        ("assigned", "in_progress"),
        ("in_progress", "pending"),
        ("pending", "in_progress"),
        ("in_progress", "resolved"),
        ("resolved", "in_progress"),
        ("resolved", "assigned"),  # reopened in GLPI by the requester's answer
        ("resolved", "new"),
        ("pending", "new"),  # GLPI: the requester answers a pending ticket nobody is assigned to
        ("in_progress", "new"),  # GLPI: its last assignee removed
        ("resolved", "closed"),
        ("new", "cancelled"),
        ("closed", "closed"),
    ],
)
def test_allowed_transitions_pass(current, requested):
    check_transition(current, requested)


@pytest.mark.parametrize(
    ("current", "requested"),
    [
        ("closed", "in_progress"),
        ("cancelled", "new"),
        ("new", "closed"),
        ("resolved", "cancelled"),
        ("closed", "new"),
    ],
)
def test_refused_transitions_name_what_is_allowed(current, requested):
    with pytest.raises(InvalidTransition) as caught:
        check_transition(current, requested)
    message = str(caught.value)
    assert f"from '{current}' to '{requested}'" in message
    for allowed in STATUS_TRANSITIONS[TicketStatus(current)]:
        assert allowed.value in message
    if not STATUS_TRANSITIONS[TicketStatus(current)]:
        assert "final status" in message


def test_times_are_converted_to_utc_and_naive_times_refused():
    paris = timezone(timedelta(hours=1))
    ticket = Ticket(title="x", source_type="email", created_at=datetime(2026, 11, 2, 10, 0, tzinfo=paris))
    assert ticket.created_at == datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    assert ticket.created_at.utcoffset() == timedelta(0)
    with pytest.raises(ValidationError, match="time zone"):
        Ticket(title="x", source_type="email", created_at=datetime(2026, 11, 2, 10, 0))


def test_unknown_fields_and_bad_values_are_refused():
    with pytest.raises(ValidationError):
        Ticket(title="x", source_type="email", colour="red")
    with pytest.raises(ValidationError):
        Ticket(title="x", source_type="email", classification_confidence=1.5)
    with pytest.raises(ValidationError):
        Ticket(title="x", source_type="email", kind="outage")
