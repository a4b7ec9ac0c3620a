"""`itsm alerts …`: what was sent to whom, and a test message through a rule's channels."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from flows._cli_base import ConfigOption, JsonOption, _config, _fail, _print_json, _store, _when, out

alerts_app = typer.Typer(help="Alerts: rules that tell people (email, webhook, SMS, chat) what matters.")


@alerts_app.command("history")
def history(
    config: ConfigOption = None,
    ticket: Annotated[str | None, typer.Option(help="Only this ticket (T-000123 or 123).")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.", min=1)] = 50,
    as_json: JsonOption = False,
) -> None:
    """Alerts queued and sent: when, which rule and event, to which channel and whom (addresses masked), and the
    outcome (sent, waiting for a retry with the last error, or dead)."""
    from sqlalchemy import select

    from connectors.alerts import mask
    from itsm_core.alerts.plan import ALERT_PREFIX, MAILTO
    from itsm_core.store.tables import OutboxRow
    from itsm_core.store.tickets import parse_ticket_id

    hub = _config(config)
    outbox = OutboxRow.__table__
    query = select(outbox).where(outbox.c.target_system.like(ALERT_PREFIX + "%"))
    if ticket is not None:
        query = query.where(outbox.c.ticket_id == parse_ticket_id(ticket))
    store = _store(config)
    with store.connect() as conn:
        rows = list(conn.execute(query.order_by(outbox.c.id.desc()).limit(limit)).mappings())
    store.dispose()
    entries: list[dict[str, Any]] = []
    for row in rows:
        fields, name = row["fields"], row["target_system"].removeprefix(ALERT_PREFIX)
        channel = hub.alerts.channels.get(name)
        recipients = fields.get("to") if name == MAILTO else _recipients(channel)
        entries.append({
            "queued_at": row["created_at"], "ticket": fields.get("ticket"), "rule": fields.get("rule"),
            "event": fields.get("event"), "channel": name, "to": [mask(r) for r in recipients],
            "state": row["state"], "attempts": row["attempts"], "sent_at": row["sent_at"],
            "last_error": row["last_error"], "subject": fields.get("subject"), "event_id": fields.get("event_id"),
        })  # fmt: skip
    if as_json:
        _print_json(entries)
        return
    table = Table("queued", "ticket", "rule", "event", "channel", "to", "outcome", "subject")
    for e in entries:
        outcome = {"sent": f"sent {_when(e['sent_at'])}", "dead": f"dead: {e['last_error']}"}.get(
            e["state"], f"retry ({e['attempts']} tried): {e['last_error']}" if e["attempts"] else "pending"
        )
        table.add_row(_when(e["queued_at"]), e["ticket"], e["rule"], e["event"], e["channel"], ", ".join(e["to"]),
                      outcome, e["subject"])  # fmt: skip
    out.print(table if entries else "no alert yet")


def _recipients(channel: Any) -> list[str]:
    if channel is None:
        return ["(channel no longer configured)"]
    if channel.type in ("email", "sms"):
        return list(channel.to)
    return [str(channel.url)] if channel.type == "webhook" else [channel.url.get_secret_value()]


@alerts_app.command("test")
def test(rule: Annotated[str, typer.Argument(help="The alert rule's name.")], config: ConfigOption = None) -> None:
    """Send a sample alert now through every channel of RULE (not queued, not in the history); exit 1 if a
    channel fails, with its error."""
    import uuid

    import httpx

    from connectors.alerts import send_alert
    from itsm_core.alerts.messages import render

    hub = _config(config)
    found = hub.alerts.rule(rule)
    if found is None:
        known = ", ".join(r.name for r in hub.alerts.rules) or "none configured"
        _fail(f"no alert rule named {rule!r} (alerts.rules: {known})", code=2)
    sample = {"id": 0, "title": "Sample alert from itsm-hub: nothing to do", "priority": 1, "status": "new",
              "assignment_group": "service-desk", "assignee": None}  # fmt: skip
    subject, text = render(found.events[0], "T-000000", sample, {}, found.template)
    alert = {"event_id": str(uuid.uuid4()), "event": found.events[0], "rule": rule, "ticket": "T-000000",
             "subject": subject, "text": text, "detail": {"test": "true"}}  # fmt: skip
    failed = False
    with httpx.Client(timeout=10) as client:
        for name in found.channels:
            try:
                send_alert(name, hub.alerts.channels[name], alert, client=client, smtp=hub.email.smtp)
                out.print(f"{name}: sent", highlight=False)
            except Exception as exc:
                failed = True
                out.print(f"{name}: failed: {exc}", highlight=False)
    if failed:
        raise typer.Exit(1)
