"""`itsm rules …` (dry runs and explanations) and `itsm classify …` (train and evaluate the text classifier)."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from flows._cli_base import ConfigOption, JsonOption, _config, _fail, _print_json, _store, _when, out
from itsm_core.config import HubConfig

rules_app = typer.Typer(
    help="The classification, priority and routing rules: try them on stored tickets, see why a ticket got its values.",
    no_args_is_help=True,
)
classify_app = typer.Typer(
    help="The trained text classifier: train it from labelled tickets or a CSV, measure it by cross-validation.",
    no_args_is_help=True,
)

#: The fields `itsm rules explain` accounts for, in the order the rules decide them.
EXPLAINED = ("category", "subcategory", "intent", "impact", "urgency", "priority", "assignment_group", "assignee")


def parse_age(text: str) -> timedelta:
    """`30d`, `12h`, `90m`, `2w` → a duration (for --since)."""
    match = re.fullmatch(r"\s*(\d+)\s*([mhdw])\s*", text)
    if not match:
        raise typer.BadParameter(f"'{text}' is not an age; write e.g. 30d, 12h, 90m or 2w")
    amount, unit = int(match.group(1)), match.group(2)
    return timedelta(**{{"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[unit]: amount})


def _rules_config(config: str | None, rules_file: str | None) -> HubConfig:
    from itsm_core.config import load_rules_file

    hub = _config(config)
    return load_rules_file(rules_file, hub) if rules_file else hub


@rules_app.command("simulate")
def rules_simulate(
    since: Annotated[str, typer.Option(help="Tickets created within this age: 30d, 12h, 2w.")] = "30d",
    rules: Annotated[
        str | None,
        typer.Option("--rules", help="A YAML file with a rules section to try instead of the config's."),
    ] = None,
    sample: Annotated[int, typer.Option(help="How many changed tickets to list.")] = 10,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Replay the rules on stored tickets as if they arrived now, WITHOUT writing: what would change.

    Values a person or a source set stay as they are; what rules, models or the matrix set is decided again.
    """
    from flows.runtime import build_rules
    from itsm_core.models import utcnow
    from itsm_core.store.tickets import format_ticket_id
    from itsm_core.sync.decide import simulate

    hub = _rules_config(config, rules)
    engine = build_rules(hub)
    start = utcnow() - parse_age(since)
    store = _store(config)
    with out.status("replaying the rules on stored tickets…"), store.connect() as conn:
        result = simulate(conn, engine, since=start, sample_size=sample)
    if as_json:
        _print_json(
            {
                "tickets": result.tickets,
                "changed_tickets": result.changed_tickets,
                "fields": {name: result.changed(name) for name in result.fields},
                "transitions": {
                    name: [{"from": old, "to": new, "count": n} for (old, new), n in sorted(t.items(), key=_most)]
                    for name, t in result.fields.items()
                },
                "sample": result.sample,
                "model_problems": engine.model_problems,
            }
        )
        return
    for problem in engine.model_problems:
        out.print(f"note: {problem}", markup=False, highlight=False)
    out.print(
        f"{result.tickets} tickets created since {_when(start)}; the rules would change "
        f"{result.changed_tickets} of them (nothing was written).",
        highlight=False,
    )
    if not result.fields:
        return
    table = Table("field", "would change", "most common changes")
    for name in EXPLAINED:
        transitions = result.fields.get(name)
        if not transitions:
            continue
        common = sorted(transitions.items(), key=_most)[:3]
        table.add_row(
            name, str(result.changed(name)), "; ".join(f"{_v(old)} → {_v(new)} ({n})" for (old, new), n in common)
        )
    out.print(table)
    if result.sample:
        out.print("sample:")
        for item in result.sample:
            changes = ", ".join(f"{f} {_v(old)} → {_v(new)} ({by})" for f, old, new, by in item["changes"])
            out.print(f"  {format_ticket_id(item['ticket_id'])}  {item['title'][:50]}: {changes}", markup=False)


def _most(item: tuple[Any, int]) -> tuple[int, str]:
    return -item[1], str(item[0])


def _v(value: Any) -> str:
    return "∅" if value is None else str(value)


@rules_app.command("explain")
def rules_explain(
    ticket: Annotated[str, typer.Argument(help="Ticket number, e.g. T-000001 or 1.")],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Why a ticket has its category, intent, priority, group and assignee: who set each, and by which rule,
    model (with its confidence) or matrix; for an assignee, every candidate weighed. Then what today's rules
    would decide, if that differs."""
    from flows.runtime import build_rules
    from itsm_core.rules.conditions import describe_match
    from itsm_core.store.tickets import format_ticket_id, get_ticket, parse_ticket_id
    from itsm_core.sync.decide import explain_now, read_for_rules

    hub = _config(config)
    store = _store(config)
    ticket_id = parse_ticket_id(ticket)
    with store.connect() as conn:
        t = get_ticket(conn, ticket_id)
        rules = build_rules(hub)
        now = explain_now(conn, rules, ticket_id)
        (row,) = read_for_rules(conn, [ticket_id])
    latest: dict[str, dict[str, Any]] = {}
    for event in t["audit"]:
        if event["field"] in EXPLAINED:
            latest[event["field"]] = event
    conditions = {f"rule:{r.name}": r.when for r in hub.rules.classification}
    conditions.update({f"route:{r.name}": r.when for r in hub.rules.routing})
    fields = []
    for name in EXPLAINED:
        reason = _reason(latest.get(name), t.get("decided_by") or {}, name)
        condition = conditions.get(reason.get("actor", ""))
        if condition is not None:  # which words or values make that rule hold, on the ticket as it is now
            matched = describe_match(condition, rules.view(row))
            said = f"matches: {'; '.join(matched)}" if matched else "(today it would not match)"
            reason["lines"] = [said, *reason.get("lines", [])]
        elif reason.get("actor", "").startswith(("rule:", "route:")):
            reason["lines"] = ["(that rule is no longer in the config)", *reason.get("lines", [])]
        fields.append({"field": name, "value": t[name], **reason})
    if as_json:
        _print_json({"number": format_ticket_id(ticket_id), "fields": fields, "today": now})
        return
    out.print(f"[bold]{format_ticket_id(ticket_id)}[/bold]  {t['title']}", markup=True, highlight=False)
    for item in fields:
        out.print(f"  {item['field']:<17} {_v(item['value']):<22} {item['why']}", markup=False, highlight=False)
        for line in item.get("lines", []):
            out.print(f"  {'':<17} {'':<22}   {line}", markup=False, highlight=False)
    if now:
        out.print("\ntoday's rules would change:", highlight=False)
        for name, old, new, by in now:
            out.print(f"  {name}: {_v(old)} → {_v(new)} ({by})", markup=False, highlight=False)
    else:
        out.print("\ntoday's rules would change nothing.", highlight=False)


def _reason(event: dict[str, Any] | None, decided_by: dict[str, str], name: str) -> dict[str, Any]:
    """Who set a field and why, in words; with a routing decision's candidates as extra lines."""
    from itsm_core.rules.engine import GROUP_PICK

    if event is None:
        return {"why": "never set" if name not in decided_by else f"set by {decided_by[name]}"}
    actor, detail, at = event["actor"], event.get("detail") or {}, _when(event["at"])
    lines: list[str] = []
    if actor.startswith("rule:"):
        why = f"classification rule '{detail.get('rule', actor[5:])}' matched ({at})"
    elif actor.startswith("model:"):
        why = f"model {detail.get('model')} predicted it with confidence {detail.get('confidence')} ({at})"
    elif actor == "rules:priority-matrix":
        why = f"priority matrix: impact {detail.get('impact')} × urgency {detail.get('urgency')} ({at})"
    elif actor == "rules:triage":
        guess = detail.get("best_guess")
        why = "triage: " + (
            f"the model's best guess '{guess['label']}' ({guess['confidence']}) is below {guess['min_confidence']}"
            if guess
            else "no rule or model gave a category"
        )
    elif actor.startswith("route:") or actor.startswith("rules:"):
        rule = detail.get("rule")
        if rule:
            why = f"routing rule '{rule}'"
        elif actor.startswith(GROUP_PICK):  # the group was there already (a person's, or waiting in its queue)
            why = f"an agent of group '{actor.removeprefix(GROUP_PICK)}'"
        else:
            why = actor
        if detail.get("confidence") is not None:
            why += f", confidence {detail['confidence']}"
        if detail.get("why"):
            why += f": {detail['why']}"
        why += f" ({at})"
        for c in detail.get("candidates", []):
            away = f", {c['away']}" if c.get("away") else ""
            lines.append(f"candidate {c['agent']}: skills {c['skills']}, load {c['load']}, turn {c['turn']}{away}")
        agent = detail.get("agent")
        if agent:
            lines.append(f"no agent picked: {agent.get('why')}")
    else:
        why = f"set by {actor}" + (f" (from {event['source']})" if event.get("source") else "")
        why += f" ({at})"
    return {"why": why, "actor": actor, "detail": detail, "lines": lines}


# --- classify -------------------------------------------------------------------------------------------------

TargetOption = Annotated[
    str, typer.Option(help="The field the model predicts: category, subcategory, intent, impact or urgency.")
]
CsvOption = Annotated[Path | None, typer.Option("--csv", help="A labelled CSV instead of the store's tickets.")]
TextColOption = Annotated[str, typer.Option(help="The CSV's text column; join several with +, e.g. title+body.")]
LabelColOption = Annotated[str | None, typer.Option(help="The CSV's label column (default: the target's name).")]
FoldsOption = Annotated[int, typer.Option(min=2, max=20, help="Folds of the stratified cross-validation.")]


def _examples(
    config: str | None, target: str, csv: Path | None, text_col: str, label_col: str | None
) -> tuple[list[str], list[str], str]:
    from itsm_core.errors import ModelError
    from itsm_core.rules.model import read_labelled_csv
    from itsm_core.store.tickets import labelled_texts

    if csv is not None:
        try:
            texts, labels = read_labelled_csv(csv, text_col, label_col or target)
        except ModelError as exc:  # a missing file or column: the command line is wrong
            _fail(str(exc), code=2)
        return texts, labels, str(csv)
    store = _store(config)
    with store.connect() as conn:
        texts, labels = labelled_texts(conn, target)
    return texts, labels, f"the store's tickets whose {target} a person or a source set"


@classify_app.command("train")
def classify_train(
    target: TargetOption = "category",
    csv: CsvOption = None,
    text_col: TextColOption = "title+description",
    label_col: LabelColOption = None,
    out_path: Annotated[
        Path | None,
        typer.Option("--out", help="Where to save it. Default: the path of the config's model for the target."),
    ] = None,
    folds: FoldsOption = 5,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Train the text classifier for one field and save it with its version, date and cross-validated metrics.

    Without --csv it learns from the store: tickets whose field a person set or confirmed, or the source gave.
    The cycle uses the new model from its next run.
    """
    from itsm_core.rules.model import TextModel

    hub = _config(config)
    path = out_path or _model_path(hub, target, config)
    texts, labels, origin = _examples(config, target, csv, text_col, label_col)
    if not texts:
        _fail(f"no labelled examples in {origin}; label tickets (`itsm tickets classify`) or give --csv")
    with out.status(f"training on {len(texts)} examples from {origin}…"):
        model = TextModel.train(texts, labels, target=target, folds=folds)
        model.save(path)
    described = {**model.describe(), "path": str(path)}
    if as_json:
        _print_json(described)
        return
    metrics = model.metrics
    scores = (
        f"macro-F1 {metrics['macro_f1']:.3f}, accuracy {metrics['accuracy']:.3f} ({int(metrics['folds'])}-fold)"
        if metrics
        else "no cross-validation (too few examples per label)"
    )
    out.print(f"trained {model.version} on {model.rows} examples, {len(model.labels)} labels: {scores}", markup=False)
    out.print(f"saved to {path}", markup=False, highlight=False)
    if not any(spec.target == target for spec in hub.rules.models):
        out.print(
            f"note: the config has no model for {target}; add it under rules.models to use it:\n"
            f"  rules:\n    models:\n      - {{target: {target}, path: {path}, min_confidence: 0.6}}",
            markup=False,
            highlight=False,
        )


def _model_path(hub: HubConfig, target: str, config: str | None) -> Path:
    """The config's model file for `target`, else models/TARGET.joblib next to the config file."""
    from itsm_core.config import config_path

    for spec in hub.rules.models:
        if spec.target == target:
            return spec.path
    return config_path(config).resolve().parent / "models" / f"{target}.joblib"


@classify_app.command("evaluate")
def classify_evaluate(
    csv: CsvOption = None,
    text_col: TextColOption = "title+description",
    label_col: LabelColOption = None,
    target: TargetOption = "category",
    folds: FoldsOption = 5,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Measure the classifier by stratified k-fold cross-validation: macro-F1, accuracy, rows (and, for
    comparison, a majority-class baseline). Nothing is saved. With --json: one line with macro_f1, accuracy
    and rows."""
    from itsm_core.rules.model import evaluate, majority_baseline

    texts, labels, origin = _examples(config, target, csv, text_col, label_col)
    with out.status(f"cross-validating on {len(texts)} examples ({folds} folds)…"):
        scores = evaluate(texts, labels, folds=folds)
        baseline = majority_baseline(labels, folds=folds)
    if as_json:
        _print_json({"macro_f1": scores["macro_f1"], "accuracy": scores["accuracy"], "rows": scores["rows"]})
        return
    out.print(f"{origin}: {scores['rows']} rows, {len(set(labels))} labels, {folds}-fold stratified", markup=False)
    table = Table("", "macro-F1", "accuracy")
    table.add_row("model", f"{scores['macro_f1']:.3f}", f"{scores['accuracy']:.3f}")
    table.add_row("majority class", f"{baseline['macro_f1']:.3f}", f"{baseline['accuracy']:.3f}")
    out.print(table)
