"""`itsm`: the hub's command line. Every command reads the same config file (--config, $ITSM_CONFIG, ./itsm.yaml).

Exit status: 0 done, 1 failed (a source or the database), 2 invalid usage or configuration.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from flows._cli_base import (
    ActorOption,
    ConfigOption,
    JsonOption,
    _config,
    _fail,
    _print_json,
    _shown,
    _store,
    _when,
    err,
    out,
)
from flows.cli_alerts import alerts_app
from flows.cli_automation import automation_app, automation_line
from flows.cli_reports import report_app
from flows.cli_rules import classify_app, rules_app
from flows.cli_sla import sla_app
from flows.cli_webhooks import webhooks_app
from itsm_core.config import HubConfig
from itsm_core.errors import ConfigError, CycleFailed, HubError, failure_text
from itsm_core.models import TicketStatus
from itsm_core.text import without_controls

if TYPE_CHECKING:
    from flows.runtime import HubEdit

app = typer.Typer(
    name="itsm",
    help=(
        "itsm-hub: pull tickets from mailboxes and GLPI (Solman and webhooks to come) into one canonical "
        "store, apply the organisation's rules, and keep every linked system in step.\n\n"
        "Start with `itsm demo`. For your own setup write itsm.yaml (see README), then "
        "`itsm db upgrade` and `itsm run`."
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,  # a crash must never print local variables: they may hold secrets
)


class _QuietExpectedErrors(logging.Filter):
    """Prefect's engine logs every exception a flow or task raises with its traceback. For the hub's own errors
    (`HubError`: a refusal upstream, a lock held, a bad config) the message says everything, so at the terminal the
    traceback is left out, unless --debug. Installed by the CLI only: deployed workers log as Prefect does."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], HubError):
            record.exc_info, record.exc_text = None, None
        return True


_DEBUG = {"on": False}


@app.callback()
def _options(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the full traceback of an error, not only its one-line message.")
    ] = False,
) -> None:
    _DEBUG["on"] = debug
    if not debug:
        for name in ("prefect.flow_runs", "prefect.task_runs"):
            logging.getLogger(name).addFilter(_QuietExpectedErrors())


db_app = typer.Typer(help="Create or migrate the store's database schema.", no_args_is_help=True)
tickets_app = typer.Typer(
    help="Look at tickets; change their status, assignment and comments as a person would.", no_args_is_help=True
)
deadletters_app = typer.Typer(
    help="Records that could not be read or mapped, kept whole with the reason; replay them after a fix.",
    no_args_is_help=True,
)
app.add_typer(db_app, name="db")
app.add_typer(tickets_app, name="tickets")
email_app = typer.Typer(help="The email channel: import mail folders.", no_args_is_help=True)
app.add_typer(deadletters_app, name="deadletters")
app.add_typer(email_app, name="email")
app.add_typer(rules_app, name="rules")
app.add_typer(classify_app, name="classify")
app.add_typer(sla_app, name="sla")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(alerts_app, name="alerts")
app.add_typer(automation_app, name="automation")
app.add_typer(report_app, name="report")


# --- db --------------------------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption = None) -> None:
    """Create the schema, or bring it to this version's newest. Safe to run at every deploy."""
    store = _store(config, check_schema=False)
    before, after = store.upgrade()
    if before == after:
        out.print(f"{store.display_url}: schema already at {after}")
    else:
        out.print(f"{store.display_url}: schema {before or 'empty'} → {after}")


# --- runs ------------------------------------------------------------------------------------------------


@app.command("run")
def run(config: ConfigOption = None) -> None:
    """Run one full cycle over every enabled source, as the scheduled deployment does.

    Runs in-process on a temporary Prefect API unless PREFECT_API_URL names a Prefect server, in which
    case the run and its artifacts show in the Prefect UI.
    """
    _config(config)  # fail fast, with exit 2, before Prefect starts
    from flows.cycle import hub_cycle

    started = time.perf_counter()
    try:
        results = hub_cycle(config_path=config)
    except CycleFailed as exc:
        _print_counts(exc.results)
        out.print(f"cycle failed in {time.perf_counter() - started:.1f} s")
        err.print(f"error: {exc}")
        raise typer.Exit(1) from None
    except Exception as exc:
        out.print(f"cycle failed in {time.perf_counter() - started:.1f} s")
        err.print(f"error: {failure_text(exc)}")
        raise typer.Exit(1) from None
    _print_counts(results)
    out.print(f"cycle completed in {time.perf_counter() - started:.1f} s")


@app.command("sync")
def sync(
    name: Annotated[str, typer.Argument(help="The source's `name` in the config, or `status`, or `check`.")],
    checked: Annotated[str | None, typer.Argument(metavar="SOURCE", help="With `check`: the source to check.")] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run one source only (a `sync-source` flow run); `itsm sync status` shows how every source stands;
    `itsm sync check SOURCE` asks the source's system whether a run would work, without running one.

    Status: per source its last run and success, lag since the last success, watermark, the changes waiting
    in its outbox (and how old the oldest is), and its dead letters waiting for a replay.

    Check: the system's API offers what the connector calls, and the source's codes exist there (for SAP
    Solution Manager: the WSDL or $metadata, and every status code the profile maps); exits 1 on a problem.
    """
    hub = _config(config)
    if name == "status":
        _sync_status(hub, config, as_json)
        return
    if name == "check":
        if checked is None:
            err.print("error: name the source to check: itsm sync check SOURCE")
            raise typer.Exit(2)
        _sync_check(hub, checked, as_json)
        return
    hub.source(name)
    from flows.sync import sync_source

    try:
        result = sync_source(name, config_path=config)
    except Exception as exc:
        text = failure_text(exc)
        err.print(f"error: {text if text.startswith(name) else f'{name}: {text}'}", markup=False, highlight=False)
        raise typer.Exit(1) from None
    _print_counts({name: result})


def _sync_check(hub: HubConfig, name: str, as_json: bool) -> None:
    from connectors.registry import build_connector

    connector = build_connector(hub.source(name))
    try:
        problems, facts, notices = connector.check(), connector.facts(), connector.notices()
    except Exception as exc:
        err.print(f"error: {name}: {failure_text(exc)}", markup=False, highlight=False)
        raise typer.Exit(1) from None
    finally:
        connector.close()
    if as_json:
        _print_json({"source": name, "ok": not problems, "problems": problems, "notices": notices, **facts})
    else:
        for label, value in facts.items():
            out.print(f"{label}: {value}", markup=False, highlight=False)
        for notice in notices:
            out.print(f"note: {notice}", markup=False, highlight=False)
        for problem in problems:
            err.print(f"problem: {problem}", markup=False, highlight=False)
        out.print(f"{name}: " + (f"{len(problems)} problem(s); a run would stop" if problems else "ok"))
    if problems:
        raise typer.Exit(1)


def _sync_status(hub: HubConfig, config: str | None, as_json: bool) -> None:
    from itsm_core.models import utcnow
    from itsm_core.store.sync_state import sync_overview

    store = _store(config)
    with store.connect() as conn:
        overview = sync_overview(conn)
    kinds = {s.name: s.kind for s in hub.sources}
    names = [*kinds, *sorted(set(overview) - set(kinds))]
    rows = []
    now = utcnow()
    for name in names:
        data = overview.get(name, {"entities": []})
        states = data["entities"] or [{}]
        for state in states:
            success = state.get("last_success_at")
            rows.append(
                {
                    "system": name,
                    "kind": kinds.get(name, "push target"),
                    "entity": state.get("entity", ""),
                    "last_run": state.get("last_run_at"),
                    "last_success": success,
                    "lag_seconds": round((now - success).total_seconds()) if success else None,
                    "watermark": state.get("watermark"),
                    "outbox_pending": data.get("outbox_pending", 0),
                    "oldest_pending": data.get("oldest_pending_at"),
                    "outbox_dead": data.get("outbox_dead", 0),
                    "dead_letters": data.get("dead_letters", 0),
                    "last_error": (state.get("details") or {}).get("last_error"),
                    "notices": (state.get("details") or {}).get("notices", []),
                }
            )
    if as_json:
        _print_json(rows)
        return
    table = Table(
        "system",
        "kind",
        "entity",
        "last success",
        "lag",
        "watermark",
        "outbox",
        "oldest",
        "dead letters",
        "last error or note",
    )
    for r in rows:
        lag = "never" if r["lag_seconds"] is None else _duration(r["lag_seconds"])
        watermark = (r["watermark"] or "")[:40] + ("…" if r["watermark"] and len(r["watermark"]) > 40 else "")
        outbox = f"{r['outbox_pending']}" + (f" (+{r['outbox_dead']} dead)" if r["outbox_dead"] else "")
        table.add_row(
            r["system"], r["kind"], r["entity"], _when(r["last_success"]), lag, watermark, outbox,
            _when(r["oldest_pending"]), str(r["dead_letters"]),
            _shown(r["last_error"] or "; ".join(f"note: {n}" for n in r["notices"]))[:80],
        )  # fmt: skip
    out.print(table)


def _duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def _print_counts(results: dict[str, Any]) -> None:
    from flows.artifacts import cycle_rows

    rows = cycle_rows(results)
    table = Table(*rows[0].keys()) if rows else Table("source")
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    out.print(table)


# --- tickets ---------------------------------------------------------------------------------------------


@tickets_app.command("list")
def tickets_list(
    config: ConfigOption = None,
    status: Annotated[TicketStatus | None, typer.Option("--status", "-s", help="Only tickets in this status.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.", min=1)] = 50,
    as_json: JsonOption = False,
) -> None:
    """The newest tickets, optionally only those in one status."""
    from itsm_core.store.tickets import format_ticket_id, list_tickets

    store = _store(config)
    with store.connect() as conn:
        rows = list_tickets(conn, status=status.value if status else None, limit=limit)
    if as_json:
        _print_json([{"number": format_ticket_id(r["id"]), **r} for r in rows])
        return
    table = Table("ticket", "status", "prio", "kind", "requester", "title", "created")
    for column in table.columns:
        column.no_wrap = column.header != "title"
    for r in rows:
        table.add_row(
            format_ticket_id(r["id"]),
            r["status"],
            str(r["priority"] or ""),
            r["kind"],
            _shown(r["requester"]),
            _shown(r["title"]),
            _when(r["created_at"]),
        )
    out.print(table)
    if not rows:
        out.print("no tickets" + (f" in status {status.value}" if status else "") + "; `itsm run` fetches new ones")


@tickets_app.command("show")
def tickets_show(
    ticket: Annotated[str, typer.Argument(help="Ticket number, e.g. T-000001 or 1.")],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """One ticket: its fields, where it came from, attachments, the conversation and history."""
    from itsm_core.automation.runs import run_of
    from itsm_core.store.tickets import format_ticket_id, get_ticket, parse_ticket_id

    store = _store(config)
    with store.connect() as conn:
        t = get_ticket(conn, parse_ticket_id(ticket))
        t["automation"] = run_of(conn, t["id"])
    if as_json:
        _print_json({"number": format_ticket_id(t["id"]), **t})
        return
    out.print(f"[bold]{format_ticket_id(t['id'])}[/bold]  {escape(_shown(t['title']))}", markup=True, highlight=False)
    fields = [
        ("status", t["status"]),
        ("kind", t["kind"]),
        ("priority", f"{t['priority']} (impact {t['impact'] or '-'}, urgency {t['urgency'] or '-'})"),
        ("requester", f"{t['requester_name'] or ''} <{t['requester'] or '?'}>"),
        ("category", " / ".join(x for x in (t["category"], t["subcategory"]) if x) or "-"),
        ("intent", t["intent"] or "-"),
        ("assigned", " / ".join(x for x in (t["assignment_group"], t["assignee"]) if x) or "-"),
        ("watchers", ", ".join(t["watchers"]) or "-"),
        ("automation", automation_line(t["automation"])),
        ("source", t["source_type"] + "".join(f"  {r['system']}:{r['external_id']}" for r in t["external_refs"])),
        ("created", _when(t["created_at"])),
        ("updated", _when(t["updated_at"])),
    ]
    for label, value in fields:
        out.print(f"  {label:<10} {_shown(value)}", highlight=False, markup=False)
    out.print("")
    out.print(without_controls(t["description"] or "(no description)"), highlight=False, markup=False)
    if t["attachments"]:
        out.print("\nattachments:")
        for a in t["attachments"]:
            out.print(
                f"  {_shown(a['name'])}  {_shown(a['content_type'])}  {a['size']} bytes  sha256 {a['sha256'][:12]}…",
                markup=False,
            )
    if t["comments"]:
        out.print("\nconversation:")
        for c in t["comments"]:
            seen = "" if c["public"] else "  (private)"
            out.print(f"  {_when(c['created_at'])}  {_shown(c['author'] or '?')}{seen}", markup=False, highlight=False)
            lines = without_controls(c["body"] or "").splitlines()
            for line in lines[:COMMENT_LINES]:
                out.print(f"    {line}", markup=False, highlight=False)
            if len(lines) > COMMENT_LINES:
                out.print("    …  (--json has the whole text)", markup=False, highlight=False)
    if t["audit"]:
        out.print("\nhistory:")
        for e in t["audit"]:
            old = "" if e["old_value"] is None else f"{e['old_value']} → "
            line = f"{e['field']}: {old}{e['new_value']}  by {e['actor']}"
            out.print(f"  {_when(e['at'])}  {_shown(line)}", markup=False)


COMMENT_LINES = 6  # of each comment, in `tickets show`


@tickets_app.command("set-status")
def tickets_set_status(
    ticket: Annotated[str, typer.Argument(help="Ticket number, e.g. T-000001 or 1.")],
    status: Annotated[TicketStatus, typer.Argument(help="The new status.")],
    config: ConfigOption = None,
    actor: ActorOption = "user:cli",
    solution: Annotated[
        str | None, typer.Option(help="With resolved: the solution, added as a public comment and sent upstream.")
    ] = None,
) -> None:
    """Move a ticket to another status, as a person would; linked systems and the requester hear of it.

    Moves the status table refuses (e.g. out of closed) are refused with the allowed ones. Notices and pushes
    are queued with the change and go out with the next `itsm push` or cycle.
    """
    from itsm_core.models import Comment
    from itsm_core.store.comments import add_comments
    from itsm_core.store.tickets import change_status

    if solution is not None and status != TicketStatus.RESOLVED:
        _fail("--solution goes with the status resolved", code=2)
    who = _actor(actor)

    def apply(conn: Any, ticket_id: int) -> tuple[frozenset[str], tuple[int, ...]]:
        comment_ids: tuple[int, ...] = ()
        if solution is not None:
            comment = Comment(body=f"Solution:\n{solution}", author=who, public=True)
            comment_ids = tuple(add_comments(conn, [(ticket_id, comment)]))
        changed = change_status(conn, ticket_id, status, who)
        return (frozenset({"status"}) if changed else frozenset()), comment_ids

    _change_ticket(config, ticket, apply, f"→ {status.value}")


@tickets_app.command("assign")
def tickets_assign(
    ticket: Annotated[str, typer.Argument(help="Ticket number, e.g. T-000001 or 1.")],
    group: Annotated[str | None, typer.Option(help="The assignment group (as the linked systems name it).")] = None,
    to: Annotated[str | None, typer.Option(help="The assignee: an e-mail address or a login.")] = None,
    unassign: Annotated[bool, typer.Option(help="Remove the assignee (the group stays).")] = False,
    config: ConfigOption = None,
    actor: ActorOption = "user:cli",
) -> None:
    """Assign a ticket to a group and/or a person; linked systems hear of it with the next push."""
    from itsm_core.store.tickets import set_fields

    if group is None and to is None and not unassign:
        _fail("say what to assign: --group, --to, or --unassign", code=2)
    if to is not None and unassign:
        _fail("--to and --unassign contradict each other", code=2)
    values: dict[str, Any] = {}
    if group is not None:
        values["assignment_group"] = group
    if to is not None or unassign:
        values["assignee"] = to

    def apply(conn: Any, ticket_id: int) -> tuple[frozenset[str], tuple[int, ...]]:
        return frozenset(set_fields(conn, ticket_id, values, _actor(actor))), ()

    _change_ticket(config, ticket, apply, "assigned")


@tickets_app.command("classify")
def tickets_classify(
    ticket: Annotated[str, typer.Argument(help="Ticket number, e.g. T-000001 or 1.")],
    category: Annotated[str | None, typer.Option(help="The category (also to confirm the one it has).")] = None,
    subcategory: Annotated[str | None, typer.Option()] = None,
    intent: Annotated[str | None, typer.Option(help="What the requester wants, e.g. password_reset.")] = None,
    impact: Annotated[int | None, typer.Option(min=1, help="1 is the highest.")] = None,
    urgency: Annotated[int | None, typer.Option(min=1, help="1 is the highest.")] = None,
    priority: Annotated[int | None, typer.Option(min=1, help="Overrides the matrix for this ticket.")] = None,
    config: ConfigOption = None,
    actor: ActorOption = "user:cli",
) -> None:
    """Set or confirm a ticket's classification as a person: the rules never change these values again, a
    confirmed category teaches the classifier (`itsm classify train`), and a derived priority follows a new
    impact or urgency. A ticket in the triage queue is routed once it has a category."""
    from itsm_core.store.tickets import set_fields

    given = {
        "category": category,
        "subcategory": subcategory,
        "intent": intent,
        "impact": impact,
        "urgency": urgency,
        "priority": priority,
    }
    values = {name: value for name, value in given.items() if value is not None}
    if not values:
        _fail("say what to set: --category, --intent, --impact, --urgency, ...", code=2)

    def apply(conn: Any, ticket_id: int) -> tuple[frozenset[str], tuple[int, ...]]:
        return frozenset(set_fields(conn, ticket_id, values, _actor(actor))), ()

    _change_ticket(config, ticket, apply, "classified")


@tickets_app.command("comment")
def tickets_comment(
    ticket: Annotated[str, typer.Argument(help="Ticket number, e.g. T-000001 or 1.")],
    text: Annotated[str, typer.Argument(help="The comment; '-' reads it from standard input.")],
    private: Annotated[bool, typer.Option(help="Visible to agents only.")] = False,
    config: ConfigOption = None,
    actor: ActorOption = "user:cli",
) -> None:
    """Add a comment to a ticket; linked systems get it (as a GLPI followup, say) with the next push."""
    from itsm_core.models import Comment
    from itsm_core.store.comments import add_comments

    body = sys.stdin.read() if text == "-" else text
    if not body.strip():
        _fail("the comment is empty", code=2)

    def apply(conn: Any, ticket_id: int) -> tuple[frozenset[str], tuple[int, ...]]:
        comment = Comment(body=body, author=_actor(actor), public=not private)
        return frozenset(), tuple(add_comments(conn, [(ticket_id, comment)]))

    _change_ticket(config, ticket, apply, "commented")


def _actor(actor: str) -> str:
    return actor if ":" in actor else f"user:{actor}"


def _change_ticket(config: str | None, ticket: str, edit: HubEdit, done: str) -> None:
    """Apply a person's change to one ticket and queue it for every push target, in one transaction."""
    from flows.runtime import change_ticket
    from itsm_core.store.tickets import format_ticket_id, parse_ticket_id

    ticket_id = parse_ticket_id(ticket)
    change, queued = change_ticket(_config(config), _store(config), ticket_id, edit)
    number = format_ticket_id(ticket_id)
    if not change.fields and not change.comment_ids:
        out.print(f"{number}: nothing changed (it already was so)", highlight=False)
        return
    told = ", ".join(f"{target} ({count})" for target, count in queued.items()) or "nobody"
    out.print(f"{number} {done}; queued for: {told}", highlight=False)


@app.command("push")
def push(config: ConfigOption = None) -> None:
    """Send what the outbox holds for every target (acknowledgements, notices, pushes to linked systems)."""
    _config(config)
    from flows.push import push_outbox

    try:
        results = push_outbox(config_path=config)
    except Exception as exc:
        err.print(f"error: push: {failure_text(exc)}")
        raise typer.Exit(1) from None
    for target, counts in results.items():
        out.print(f"{target}: {counts['sent']} sent, {counts['retry_later']} waiting for a retry", highlight=False)
    if not results:
        out.print("no push target configured (email.smtp, or a two-way source)", highlight=False)


# --- dead letters ----------------------------------------------------------------------------------------


@deadletters_app.command("list")
def deadletters_list(
    config: ConfigOption = None,
    source: Annotated[str | None, typer.Option(help="Only from this source.")] = None,
    include_replayed: Annotated[bool, typer.Option("--all", help="Include letters already replayed.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Quarantined records waiting for a fix, oldest first, with the reason each was refused."""
    from itsm_core.store.quarantine import list_dead_letters

    store = _store(config)
    with store.connect() as conn:
        rows = list_dead_letters(conn, include_replayed=include_replayed, source=source)
    if as_json:
        _print_json(rows)
        return
    table = Table("id", "source", "stage", "record", "reason", "since", "replayed")
    for column in table.columns:
        column.no_wrap = column.header != "reason"
    table.columns[3].max_width, table.columns[3].overflow = 40, "ellipsis"
    for r in rows:
        table.add_row(
            str(r["id"]),
            r["source"],
            r["stage"],
            _shown(r["external_id"]),
            _shown(r["reason"]),
            _when(r["created_at"]),
            _when(r["replayed_at"]),
        )
    out.print(table)
    if rows:
        out.print("fix the cause, then: itsm deadletters replay ID", highlight=False)
    else:
        out.print("no dead letters waiting", highlight=False)


@deadletters_app.command("replay")
def deadletters_replay(
    letters: Annotated[
        list[int] | None, typer.Argument(help="Dead letter ids, from `itsm deadletters list`.", show_default=False)
    ] = None,
    replay_all: Annotated[
        bool, typer.Option("--all", help="Every dead letter waiting (of --source, if given).")
    ] = False,
    source: Annotated[str | None, typer.Option(help="With --all: only this source's letters.")] = None,
    config: ConfigOption = None,
) -> None:
    """Run quarantined records through today's parser, mapping and rules; on success each becomes a ticket (or a
    configuration item). A push a linked system refused goes back to the outbox, sent with the next push. Each
    letter is replayed on its own: one that still fails keeps its letter, with the new reason. Exit status 1
    when any still fails. The Prefect deployment `replay-dead-letters/replay-on-demand` does the same from the UI."""
    from flows.replay import replay_letters, waiting_letters

    if bool(letters) == replay_all:
        _fail("name the dead letters to replay, or --all (with --source to narrow it)", code=2)
    if source and not replay_all:
        _fail("--source goes with --all", code=2)
    hub = _config(config)
    store = _store(config)
    ids = list(letters) if letters else waiting_letters(store, source)
    if not ids:
        out.print("no dead letters waiting" + (f" from {source}" if source else ""), highlight=False)
        return
    results = replay_letters(hub, store, ids)
    for r in results:
        line = f"dead letter {r.letter}: {r.outcome}: {_shown(r.detail)}"
        (err if r.failed else out).print(line, markup=False, highlight=False)
    if any(r.failed for r in results):
        raise typer.Exit(1)


# --- email -----------------------------------------------------------------------------------------------


@email_app.command("import-dir")
def email_import_dir(
    directory: Annotated[
        Path,
        typer.Argument(help="Folder of mail files (.eml, .box, none: read by content).", exists=True, file_okay=False),
    ],
    config: ConfigOption = None,
    source: Annotated[str, typer.Option(help="Source name the messages are recorded under.")] = "email-import",
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as one JSON line.")] = False,
) -> None:
    """Import every mail file of DIRECTORY once (any name; hidden files skipped), with the same rules as a mailbox:
    replies thread, auto-replies and bounces are ignored, duplicates are recognised, and a file that is not a
    message is quarantined with the reason.

    Counts: files = tickets_created + comments_added + ignored_autoreply + ignored_bounce + duplicates + quarantined.
    """
    from rich.progress import Progress

    from connectors.mail.config import MaildirSource
    from flows.runtime import build_runtime
    from itsm_core.sync.batch import BatchReport
    from itsm_core.sync.ingest import ingest_batch

    hub = _config(config)
    store = _store(config)
    runtime = build_runtime(hub, MaildirSource(name=source, kind="maildir", path=directory), store=store)
    pages = list(runtime.connector.plan_pages(None))
    report = BatchReport()
    with Progress(console=err, transient=True, disable=as_json) as progress:
        bar = progress.add_task("importing", total=sum(len(p) for p in pages))
        for page in pages:
            records = runtime.connector.fetch_page(page)
            with store.transaction() as conn:
                report += ingest_batch(conn, runtime.pipeline, records)
            progress.advance(bar, len(page))
    ignored = report.ignored_by_kind
    counts = {
        "files": report.fetched,
        "tickets_created": report.created,
        "comments_added": report.commented,
        "ignored_autoreply": ignored.get("autoreply", 0) + ignored.get("own", 0) + ignored.get("loop", 0),
        "ignored_bounce": ignored.get("bounce", 0),
        "duplicates": report.unchanged + report.updated,
        "quarantined": report.quarantined,
    }
    if as_json:
        sys.stdout.write(json.dumps(counts) + "\n")
        return
    for name, value in counts.items():
        out.print(f"{name:<18} {value}", highlight=False)
    if report.quarantined:
        out.print("see why with: itsm deadletters list", highlight=False)


# --- kinds -----------------------------------------------------------------------------------------------


@app.command("kinds")
def kinds(as_json: JsonOption = False) -> None:
    """The connector kinds this installation knows (a source's `kind:`): what each reads, whether it also takes
    the hub's changes, its default mappings and where it comes from (the hub or an installed plug-in)."""
    from importlib.metadata import entry_points

    from connectors.registry import registered_kinds
    from itsm_core.plugins import CONNECTOR_KINDS

    origin = {point.name: point.value for point in entry_points(group=CONNECTOR_KINDS)}
    rows = [
        {
            "kind": name,
            "two_way": kind.two_way,
            "mappings": dict(kind.mappings),
            "entry_point": origin.get(name, ""),
            "description": kind.description,
        }
        for name, kind in registered_kinds().items()
    ]
    if as_json:
        _print_json(rows)
        return
    table = Table("kind", "reads", "two-way", "default mapping", "from", "what")
    for row in rows:
        table.add_row(
            row["kind"], ", ".join(row["mappings"]), "yes" if row["two_way"] else "no",
            ", ".join(row["mappings"].values()), row["entry_point"], row["description"],
        )  # fmt: skip
    out.print(table)


# --- demo ------------------------------------------------------------------------------------------------


@app.command("demo")
def demo(
    directory: Annotated[
        Path, typer.Option("--dir", help="Where the demo keeps its config, inbox and SQLite store.")
    ] = Path("demo"),
) -> None:
    """Run the hub on bundled sample data, offline, with nothing configured: a first look in a minute."""
    from flows.demo import run_demo

    run_demo(directory, out)


@app.command("serve")
def serve(
    demo_data: Annotated[bool, typer.Option("--demo", help="On the demo's data (the only mode for now).")] = False,
    directory: Annotated[
        Path, typer.Option("--dir", help="Where it keeps the config, inbox, store and Prefect's data.")
    ] = Path("demo-serve"),
    port: Annotated[int, typer.Option(help="The Prefect server's port (UI and API).", min=1, max=65535)] = 4200,
) -> None:
    """The ops path in one command: a simulated GLPI, a Prefect server, the work pool, the deployments of
    prefect.yaml and a worker, on the demo's data, until Ctrl-C. Open the UI it prints to watch scheduled cycles."""
    import signal
    import threading

    from flows.serve import serve_demo

    if not demo_data:
        _fail("only `itsm serve --demo` exists: in production, run the server and worker as the README says", code=2)
    stop = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: stop.set())
    serve_demo(directory, port, out, stop=stop)


def main() -> None:
    """Console entry point: map the hub's errors to exit statuses and one readable line."""
    try:
        app()
    except ConfigError as exc:
        _print_error(exc)
        sys.exit(2)
    except HubError as exc:
        _print_error(exc)
        sys.exit(1)


def _print_error(exc: HubError) -> None:
    if _DEBUG["on"]:
        err.print("".join(traceback.format_exception(exc)), markup=False, highlight=False)
    err.print(f"error: {exc}", markup=False, highlight=False)
