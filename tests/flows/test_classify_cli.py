"""`itsm classify train / evaluate` on a labelled CSV, and a trained model classifying imported mail."""

import csv
import json
from pathlib import Path

import pytest
from test_cli import itsm
from test_cli_rules import mail

DATASET = Path(__file__).resolve().parents[2] / "bench" / "data" / "it_tickets.csv"


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory) -> Path:
    """Every 6th row of the assembled data set (about 400 rows, every category): quick to cross-validate."""
    path = tmp_path_factory.mktemp("data") / "tickets.csv"
    with DATASET.open(encoding="utf-8") as source, path.open("w", encoding="utf-8", newline="") as target:
        rows = list(csv.DictReader(source))[::6]
        writer = csv.DictWriter(target, fieldnames=["title", "body", "category", "intent"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_evaluate_prints_cross_validated_scores_as_one_json_line(tmp_path, small_csv):
    args = ["classify", "evaluate", "--csv", str(small_csv), "--text-col", "title+body", "--label-col", "category"]
    result = itsm(*args, "--folds", "3", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1
    scores = json.loads(result.stdout)
    assert set(scores) == {"macro_f1", "accuracy", "rows"}
    assert scores["rows"] == sum(1 for _ in csv.DictReader(small_csv.open(encoding="utf-8")))
    assert 0.5 < scores["macro_f1"] <= 1 and 0.5 < scores["accuracy"] <= 1
    table = itsm(*args, "--folds", "3", cwd=tmp_path)
    assert "majority class" in table.stdout and "macro-F1" in table.stdout


def test_evaluate_names_a_missing_column(tmp_path, small_csv):
    result = itsm("classify", "evaluate", "--csv", str(small_csv), "--text-col", "title+text", cwd=tmp_path)
    assert result.returncode == 2
    assert "text" in result.stderr and "title, body, category, intent" in result.stderr


def test_a_trained_model_classifies_what_the_rules_leave(tmp_path, small_csv):
    (tmp_path / "itsm.yaml").write_text("database_url: sqlite:///store.db\n")
    trained = itsm(
        "classify", "train", "--csv", str(small_csv), "--text-col", "title+body", "--label-col", "category",
        "--folds", "3", cwd=tmp_path,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    model = tmp_path / "models" / "category.joblib"
    assert model.exists() and "add it under rules.models" in trained.stdout
    (tmp_path / "itsm.yaml").write_text(
        "database_url: sqlite:///store.db\n"
        "rules:\n  models: [{target: category, path: models/category.joblib, min_confidence: 0.3}]\n"
        "  triage_group: triage\n"
    )
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    mail(inbox / "1.eml", "Printer on floor 3 jams", "The printer jams on every page, toner is fine.")
    assert itsm("db", "upgrade", cwd=tmp_path).returncode == 0
    assert itsm("email", "import-dir", "inbox", cwd=tmp_path).returncode == 0
    printer = json.loads(itsm("tickets", "show", "1", "--json", cwd=tmp_path).stdout)
    assert (printer["category"], printer["classified_by"]) == ("printing", "model")
    assert 0.3 <= printer["classification_confidence"] <= 1
    explained = itsm("rules", "explain", "1", cwd=tmp_path).stdout
    assert "model category-" in explained and "predicted it with confidence" in explained


def test_the_model_goes_next_to_the_config_named(tmp_path, small_csv):
    (tmp_path / "hub").mkdir()
    (tmp_path / "hub" / "itsm.yaml").write_text("database_url: sqlite:///store.db\n")
    args = ["classify", "train", "-c", "hub/itsm.yaml", "--csv", str(small_csv), "--text-col", "title+body"]
    trained = itsm(*args, "--label-col", "category", "--folds", "2", "--json", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    described = json.loads(trained.stdout)
    assert described["path"] == str(tmp_path / "hub" / "models" / "category.joblib")
    assert described["target"] == "category" and described["rows"] > 300 and described["metrics"]["folds"] == 2
