"""`classify-retrain`: retrain each configured classifier from the store's labelled tickets, on a schedule.

A new model replaces the one in force only if its cross-validated macro-F1 is not worse by more than
`tolerance`: more labels usually help, but a burst of odd labels must not silently make triage worse.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from flows.runtime import load_hub_config
from itsm_core.errors import ModelError
from itsm_core.store import Store
from itsm_core.store.tickets import labelled_texts


@flow(name="classify-retrain")
def classify_retrain(
    config_path: str | None = None, min_examples: int = 50, tolerance: float = 0.02
) -> list[dict[str, Any]]:
    """Train every model of `rules.models` again; keep the new one unless it measures worse. Returns one
    outcome per model (target, examples, old and new macro-F1, kept or replaced, why)."""
    from itsm_core.rules.model import TextModel

    logger = get_run_logger()
    config = load_hub_config(config_path)
    store = Store(config.database_url.get_secret_value())
    store.ensure_current()
    outcomes: list[dict[str, Any]] = []
    try:
        for spec in config.rules.models:
            with store.connect() as conn:
                texts, labels = labelled_texts(conn, spec.target)
            outcome: dict[str, Any] = {"target": spec.target, "examples": len(texts), "path": str(spec.path)}
            outcomes.append(outcome)
            if len(texts) < min_examples:
                outcome["result"] = f"skipped: {len(texts)} labelled tickets, fewer than {min_examples}"
                continue
            try:
                old = TextModel.load(spec.path)
            except ModelError:
                old = None
            try:
                new = TextModel.train(texts, labels, target=spec.target)
            except ModelError as exc:
                outcome["result"] = f"not trained: {exc}"
                continue
            old_f1 = (old.metrics or {}).get("macro_f1") if old else None
            new_f1 = (new.metrics or {}).get("macro_f1")
            outcome.update(old=old.version if old else None, old_macro_f1=old_f1, new=new.version, new_macro_f1=new_f1)
            if old_f1 is not None and (new_f1 is None or new_f1 < old_f1 - tolerance):
                outcome["result"] = f"kept {old.version}: the new model measures worse"  # type: ignore[union-attr]
                continue
            new.save(spec.path)
            outcome["result"] = f"replaced by {new.version}"
        for outcome in outcomes:
            logger.info("%s: %s", outcome["target"], outcome["result"])
    finally:
        store.dispose()
        create_markdown_artifact(
            key="classify-retrain", markdown=retrain_markdown(outcomes), description="What the retraining did"
        )
    return outcomes


def retrain_markdown(outcomes: list[dict[str, Any]]) -> str:
    if not outcomes:
        return "# Classifier retraining\n\nNo model is configured (`rules.models` in the config)."
    lines = [
        "# Classifier retraining",
        "",
        "| field | labelled tickets | model in force (macro-F1) | new model (macro-F1) | result |",
        "|---|---|---|---|---|",
    ]
    for o in outcomes:
        old = f"{o.get('old') or '-'} ({_f1(o.get('old_macro_f1'))})"
        new = f"{o.get('new') or '-'} ({_f1(o.get('new_macro_f1'))})"
        lines.append(f"| {o['target']} | {o['examples']} | {old} | {new} | {o['result']} |")
    lines += ["", "macro-F1 is from stratified cross-validation on the labelled tickets at training time."]
    return "\n".join(lines)


def _f1(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
