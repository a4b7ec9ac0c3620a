"""What an alert says: a subject and a text per event, jinja2 over the ticket and the event (a rule may give its
own text). Short enough for an SMS; the ticket's number and title always come first."""

from __future__ import annotations

from typing import Any

from itsm_core.templating import render as render_template

SUBJECTS = {
    "ticket_created": "New P{{ ticket.priority or '?' }} {{ number }}: {{ ticket.title }}",
    "assigned": "{{ number }} assigned to {{ ticket.assignee or ticket.assignment_group or 'nobody' }}",
    "status_changed": "{{ number }} is {{ ticket.status }}",
    "priority_changed": "{{ number }} is now P{{ ticket.priority }}",
    "sla_warning": "SLA warning on {{ number }}: {{ detail.percent }}% of {{ detail.metric }} used",
    "sla_breach": "SLA breached on {{ number }}: {{ detail.metric }}",
    "escalation": "Escalation {{ detail.level }} on {{ number }}",
}
TEXT = """{{ subject }}
{{ ticket.title }}
Priority P{{ ticket.priority or '?' }} · status {{ ticket.status }} · group {{ ticket.assignment_group or '-' }} \
· assignee {{ ticket.assignee or '-' }}
{% if detail %}{% for key, value in detail | dictsort %}{{ key }}: {{ value }}
{% endfor %}{% endif %}"""


def render(
    event: str, number: str, ticket: dict[str, Any], detail: dict[str, Any], text: str | None = None
) -> tuple[str, str]:
    """(subject, text) of an alert."""
    values = {"event": event, "number": number, "ticket": ticket, "detail": detail}
    subject = " ".join(render_template(SUBJECTS[event], **values).split())[:200]
    body = render_template(text or TEXT, subject=subject, **values).strip()
    return subject, body
