"""The classify-retrain flow on a real Prefect API: learns from the store's labelled tickets, never swaps in a
model that measures worse, says what it did in its artifact."""

import csv
from pathlib import Path

import pytest
from test_cycle import read_artifact

from flows.retrain import classify_retrain
from itsm_core.models import ClassifiedBy, Ticket
from itsm_core.rules.model import TextModel
from itsm_core.store import Store
from itsm_core.store.tickets import TicketWrite, upsert_tickets

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_api")]
DATASET = Path(__file__).resolve().parents[2] / "bench" / "data" / "it_tickets.csv"


def hub(tmp_path, every=6) -> Path:
    config = tmp_path / "itsm.yaml"
    config.write_text(
        f"database_url: sqlite:///{tmp_path / 'store.db'}\n"
        "rules:\n  models: [{target: category, path: models/category.joblib}]\n"
    )
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    store.upgrade()
    with DATASET.open(encoding="utf-8") as source:
        rows = list(csv.DictReader(source))[::every]
    writes = [
        TicketWrite(
            str(i),
            Ticket(
                title=row["title"] or "?",
                description=row["body"],
                category=row["category"],
                classified_by=ClassifiedBy.SOURCE,
                source_type="glpi",
            ),
            str(i),
            frozenset(),
        )
        for i, row in enumerate(rows)
    ]
    with store.transaction() as conn:
        upsert_tickets(conn, "glpi", "test", writes)
    store.dispose()
    return config


def test_retraining_learns_from_the_store_and_reports_it(tmp_path):
    config = hub(tmp_path)
    (outcome,) = classify_retrain(config_path=str(config))
    assert outcome["result"] == f"replaced by {outcome['new']}" and outcome["old"] is None
    assert outcome["examples"] > 300 and 0.5 < outcome["new_macro_f1"] <= 1
    model = TextModel.load(tmp_path / "models" / "category.joblib")
    assert model.version == outcome["new"] and "printing" in model.labels
    artifact = read_artifact("classify-retrain").data
    assert f"replaced by {outcome['new']}" in artifact and "| category |" in artifact


def test_a_model_that_measures_worse_is_not_swapped_in(tmp_path):
    config = hub(tmp_path)
    classify_retrain(config_path=str(config))
    path = tmp_path / "models" / "category.joblib"
    current = TextModel.load(path)
    current.metrics = {**current.metrics, "macro_f1": 1.0}  # as if the model in force were perfect
    current.save(path)
    (outcome,) = classify_retrain(config_path=str(config))
    assert outcome["result"] == f"kept {current.version}: the new model measures worse"
    assert TextModel.load(path).version == current.version


def test_too_few_labelled_tickets_are_not_enough(tmp_path):
    config = hub(tmp_path, every=200)
    (outcome,) = classify_retrain(config_path=str(config))
    assert outcome["result"].startswith("skipped: 13 labelled tickets, fewer than 50")
    assert not (tmp_path / "models" / "category.joblib").exists()
