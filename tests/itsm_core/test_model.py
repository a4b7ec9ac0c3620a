"""The text classifier: it learns and predicts, says how sure it is, survives a save and load, refuses files that
are not its own, measures itself honestly, and reads labelled CSVs with errors people can act on."""

import logging
import random
import re
from datetime import UTC

import joblib
import pytest

from itsm_core.errors import ModelError
from itsm_core.rules import model as model_module
from itsm_core.rules.model import (
    Prediction,
    TextModel,
    build_pipeline,
    evaluate,
    majority_baseline,
    read_labelled_csv,
)

VOCABULARY = {
    "network": (["vpn", "wifi", "wlan", "internet", "network cable", "router"],
                ["drops", "is very slow", "won't connect", "disconnects", "times out"]),
    "printing": (["printer", "paper tray", "toner", "print queue", "copier"],
                 ["is jammed", "prints streaks", "is offline", "is empty", "shows paper jam"]),
    "access": (["password", "account", "login", "passwort", "mot de passe"],
               ["expired", "is locked", "needs a reset", "was forgotten", "is not accepted"]),
    "hardware": (["screen", "keyboard", "docking station", "laptop battery", "mouse"],
                 ["is broken", "flickers", "is cracked", "doesn't charge", "has dead keys"]),
}  # fmt: skip
FILLER = ["", "Please help.", "Thanks!", "Since this morning.", "Urgent, customer call at 10.", "Regards, Anna"]


def synthetic(per_label: int = 15, seed: int = 1) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    texts, labels = [], []
    for label, (things, states) in VOCABULARY.items():
        for _ in range(per_label):
            texts.append(f"My {rng.choice(things)} {rng.choice(states)}. {rng.choice(FILLER)}".strip())
            labels.append(label)
    return texts, labels


@pytest.fixture(scope="module")
def trained() -> TextModel:
    texts, labels = synthetic()
    return TextModel.train(texts, labels, target="category", folds=3)


UNSEEN = {
    "network": "Hi, the router in the office disconnects every ten minutes and the wifi is slow",
    "printing": "Paper jam again in the copier, the toner light is blinking too",
    "access": "I forgot my password after the holidays and now my account is locked",
    "hardware": "The laptop battery doesn't charge and the screen flickers",
}


# --- learning and predicting ----------------------------------------------------------------------------------------


def test_it_predicts_the_right_label_of_texts_it_never_saw(trained):
    predictions = trained.predict(list(UNSEEN.values()))
    assert [p.label for p in predictions] == list(UNSEEN)
    assert all(isinstance(p, Prediction) and 0.0 <= p.confidence <= 1.0 for p in predictions)
    assert all(p.confidence > 0.5 for p in predictions)


def test_it_is_less_sure_of_a_text_about_nothing_it_learnt(trained):
    clear, unrelated = trained.predict([UNSEEN["printing"], "The canteen serves lasagne on Thursday, see you there"])
    assert unrelated.confidence < clear.confidence - 0.2
    assert unrelated.confidence < 0.6


def test_it_describes_what_it_is(trained):
    texts, _ = synthetic()
    assert trained.target == "category"
    assert re.fullmatch(r"category-\d{8}T\d{6}Z-[0-9a-f]{8}", trained.version)
    assert trained.trained_at.tzinfo is not None and trained.trained_at.utcoffset() == UTC.utcoffset(None)
    assert trained.rows == len(texts)
    assert trained.labels == ["access", "hardware", "network", "printing"]
    assert set(trained.metrics) == {"macro_f1", "accuracy", "folds"} and trained.metrics["folds"] == 3
    assert trained.metrics["macro_f1"] > 0.8
    described = trained.describe()
    assert described == {
        "target": "category",
        "version": trained.version,
        "trained_at": trained.trained_at.isoformat(),
        "rows": trained.rows,
        "labels": trained.labels,
        "metrics": trained.metrics,
    }


def test_the_version_hashes_the_training_data():
    texts, labels = synthetic(per_label=4)
    first = TextModel.train(texts, labels, target="intent", folds=0)
    again = TextModel.train(texts, labels, target="intent", folds=0)
    other = TextModel.train([*texts[:-1], texts[-1] + " really"], labels, target="intent", folds=0)
    assert first.version.startswith("intent-")
    assert first.version[-8:] == again.version[-8:] != other.version[-8:]
    assert first.metrics == {}  # no cross-validation asked for


def test_a_whole_batch_is_one_transform_and_one_predict_proba(trained, monkeypatch):
    calls = []
    original = trained.pipeline.predict_proba
    monkeypatch.setattr(trained.pipeline, "predict_proba", lambda texts: calls.append(len(texts)) or original(texts))
    predictions = trained.predict([UNSEEN["network"]] * 120)
    assert calls == [120] and len(predictions) == 120
    assert trained.predict([]) == []
    with pytest.raises(TypeError, match="not one string"):
        trained.predict("my printer is jammed")


def test_only_the_start_of_a_very_long_text_is_read(trained):
    head = UNSEEN["printing"].ljust(model_module.MAX_CHARS)
    tail = " Quoted history: my password expired, my account is locked." * 200
    short, long = trained.predict([head, head + tail])
    assert short == long and long.label == "printing"
    (tail_alone,) = trained.predict([tail])
    assert tail_alone.label == "access"  # so the tail would have changed the answer, had it been read


def test_training_refuses_what_cannot_make_a_classifier():
    with pytest.raises(ModelError, match="at least two labels"):
        TextModel.train(["vpn down", "vpn slow", "no vpn"], ["network"] * 3)
    with pytest.raises(ModelError, match="3 texts but 2 labels"):
        TextModel.train(["a", "b", "c"], ["x", "y"])
    with pytest.raises(ModelError, match="short name"):
        TextModel.train(*synthetic(per_label=3), target="my category")


def test_a_label_seen_once_is_left_out_with_a_warning_not_a_failed_retraining(caplog):
    texts, labels = synthetic(per_label=6)
    with caplog.at_level(logging.WARNING, logger="itsm.rules.model"):
        model = TextModel.train([*texts, "Coffee machine broken"], [*labels, "facilities"], folds=3)
    assert "facilities" not in model.labels and model.rows == len(texts)
    assert "facilities" in caplog.text
    assert model.metrics["folds"] == 3


def test_no_metrics_when_labels_are_too_small_for_the_folds():
    model = TextModel.train(*synthetic(per_label=3), folds=5)
    assert model.metrics == {}
    assert len(model.labels) == 4  # trained all the same


# --- saving and loading ---------------------------------------------------------------------------------------------


def test_save_and_load_keep_the_model_and_what_it_is(trained, tmp_path):
    path = tmp_path / "models" / "nested" / "category.joblib"
    trained.save(path)
    trained.save(path)  # replaced in place
    assert [p.name for p in path.parent.iterdir()] == ["category.joblib"]  # no temporary file left behind
    loaded = TextModel.load(path)
    assert loaded.describe() == trained.describe()
    assert loaded.trained_at == trained.trained_at
    texts = [*UNSEEN.values(), "something else entirely"]
    assert loaded.predict(texts) == trained.predict(texts)


def test_loading_a_missing_file_says_how_to_get_one(tmp_path):
    with pytest.raises(ModelError, match=r"no model at .*nope\.joblib; train one with `itsm classify train`"):
        TextModel.load(tmp_path / "nope.joblib")
    with pytest.raises(ModelError, match="is a folder"):
        TextModel.load(tmp_path)


def test_loading_garbage_is_refused(tmp_path):
    path = tmp_path / "garbage.joblib"
    path.write_bytes(b"\x00\x01 this is not a pickle at all \xff" * 10)
    with pytest.raises(ModelError, match=r"garbage\.joblib is not a readable model file .*itsm classify train"):
        TextModel.load(path)
    path.write_bytes(b"")
    with pytest.raises(ModelError, match="not a readable model file"):
        TextModel.load(path)


@pytest.mark.parametrize("payload", [{"weights": [1, 2, 3]}, ["a", "list"], build_pipeline()])
def test_loading_a_joblib_of_something_else_is_refused(tmp_path, payload):
    path = tmp_path / "other.joblib"
    joblib.dump(payload, path)
    with pytest.raises(ModelError, match=r"is not an itsm-hub text model \(it holds a \w+\)"):
        TextModel.load(path)


def test_a_model_from_another_format_or_scikit_learn_version_asks_for_retraining(trained, tmp_path):
    path = tmp_path / "m.joblib"
    trained.save(path)
    payload = joblib.load(path)
    joblib.dump({**payload, "sklearn_version": "0.24.2"}, path)
    with pytest.raises(ModelError, match=r"trained with scikit-learn 0\.24\.2.*retrain it with `itsm classify train`"):
        TextModel.load(path)
    joblib.dump({**payload, "format_version": 99}, path)
    with pytest.raises(ModelError, match="model format 99"):
        TextModel.load(path)


# --- measuring ------------------------------------------------------------------------------------------------------


def test_evaluate_cross_validates_and_beats_the_majority_class():
    texts, labels = synthetic(per_label=10)
    labels_skewed = labels + ["network"] * 20
    texts_skewed = texts + [f"The vpn {s} again, {i}" for i, s in enumerate(["drops", "is slow"] * 10)]
    scores = evaluate(texts_skewed, labels_skewed, folds=4, seed=3)
    baseline = majority_baseline(labels_skewed, folds=4, seed=3)
    assert set(scores) == set(baseline) == {"macro_f1", "accuracy", "rows", "folds"}
    assert scores["rows"] == baseline["rows"] == 60 and scores["folds"] == baseline["folds"] == 4
    assert 0.0 <= scores["macro_f1"] <= 1.0 and 0.0 <= scores["accuracy"] <= 1.0
    assert baseline["accuracy"] == pytest.approx(30 / 60)  # always "network"
    assert baseline["macro_f1"] == pytest.approx((2 * 0.5 * 1 / 1.5) / 4)  # F1 of network only, over 4 labels
    assert scores["macro_f1"] > 0.8 > baseline["macro_f1"] + 0.5


def test_evaluate_refuses_labels_too_small_for_the_folds():
    texts, labels = synthetic(per_label=6)
    with pytest.raises(ModelError, match=r"5-fold cross-validation needs at least 5 rows per label; too few for "
                                         r"'printing' \(2\)"):  # fmt: skip
        evaluate([*texts[:6], *texts[6:8], *texts[12:]], [*labels[:6], *labels[6:8], *labels[12:]], folds=5)
    with pytest.raises(ModelError, match="at least two labels"):
        majority_baseline(["network"] * 10, folds=5)
    with pytest.raises(ModelError, match="at least 2 folds"):
        evaluate(texts, labels, folds=1)


# --- labelled CSVs --------------------------------------------------------------------------------------------------


def test_read_labelled_csv_joins_columns_and_skips_unlabelled_rows(tmp_path):
    path = tmp_path / "tickets.csv"
    path.write_text(
        "title,body,category\n"
        'VPN down,"Since 9:00,\nnobody connects",network\n'
        "Drucker,Papierstau im 2. OG,printing\n"
        "Unlabelled,no label here,\n"
        "Écran,   ,  hardware \n",
        encoding="utf-8-sig",  # a byte-order mark, as Excel writes it
    )
    texts, labels = read_labelled_csv(path, "title+body", "category")
    assert texts == ["VPN down\nSince 9:00,\nnobody connects", "Drucker\nPapierstau im 2. OG", "Écran\n   "]
    assert labels == ["network", "printing", "hardware"]
    assert read_labelled_csv(path, "body", "category")[0][1] == "Papierstau im 2. OG"


def test_read_labelled_csv_names_a_missing_column_and_the_ones_there_are(tmp_path):
    path = tmp_path / "tickets.csv"
    path.write_text("title,body,category\na,b,c\n", encoding="utf-8")
    with pytest.raises(ModelError, match=r"no column 'description'; its columns are: title, body, category"):
        read_labelled_csv(path, "title+description", "category")
    with pytest.raises(ModelError, match=r"no column 'intent'"):
        read_labelled_csv(path, "title+body", "intent")
    with pytest.raises(ModelError, match="no CSV file at"):
        read_labelled_csv(tmp_path / "missing.csv", "title", "category")
    latin = tmp_path / "latin1.csv"
    latin.write_bytes("title,category\nDrucker kaputt \xfcberall,printing\n".encode("latin-1"))
    with pytest.raises(ModelError, match="not UTF-8"):
        read_labelled_csv(latin, "title", "category")
