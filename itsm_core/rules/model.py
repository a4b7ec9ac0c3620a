"""The ticket text classifier: a trained model that predicts a label (category, intent, ...) from a ticket's text.

`TextModel.train` fits `build_pipeline` — TF-IDF word unigrams and bigrams plus character 3–5-grams (within word
boundaries, so typos, inflections, compound German words and mixed languages still share features), then a linear
SVM whose scores are calibrated into probabilities (Platt scaling, cross-validated) — on labelled texts, and
measures it first by stratified k-fold cross-validation (`evaluate`). `predict` returns, for a whole batch at
once, the best label and its calibrated probability, so callers can keep a prediction only above a threshold.
Only the first `MAX_CHARS` characters of a text are read: the request is at the start, the rest is mostly quoted
history and signatures, and the cost of a prediction stays bounded (roughly 0.5 µs per character).

A model file is one joblib pickle holding the fitted pipeline and its metadata (target, version, training date,
rows, labels, cross-validated metrics), with a format marker that `load` checks. **Model files are pickles: loading
one runs code from it. Load only files you trained yourself or trust like code**; never load one from a ticket,
an upload or another untrusted place. A model is tied to the scikit-learn version that wrote it: after an upgrade,
`load` refuses it and asks for retraining.

`majority_baseline` and `read_labelled_csv` serve training and benchmarks (``bench/classify_baselines.py``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import sklearn
from sklearn.calibration import CalibratedClassifierCV
from sklearn.dummy import DummyClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.svm import LinearSVC

from itsm_core.errors import ModelError

FORMAT = "itsm-hub/text-model"
FORMAT_VERSION = 1
MAX_CHARS = 1500
"""Characters of a text the model reads (the start); bounds the cost of a prediction."""
CALIBRATION_FOLDS = 3
_TARGET = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_TRAIN_HINT = "train one with `itsm classify train`"
log = logging.getLogger("itsm.rules.model")


@dataclass(frozen=True)
class Prediction:
    label: str
    """The most probable label."""
    confidence: float
    """Its calibrated probability, 0..1."""


def _clip(texts: Sequence[str]) -> list[str]:
    return [text[:MAX_CHARS] for text in texts]


def word_tfidf() -> TfidfVectorizer:
    """The classifier's word features, unfitted: TF-IDF of word unigrams and bigrams (also what the reports' ticket
    clustering uses when no model is trained)."""
    return TfidfVectorizer(
        ngram_range=(1, 2), sublinear_tf=True, lowercase=True, strip_accents="unicode", min_df=1, dtype=np.float32
    )


def build_pipeline(seed: int = 0) -> Pipeline:
    """The untrained classifier: clip → word and character TF-IDF → linear SVM with calibrated probabilities.

    Chosen on ``bench/data/it_tickets.csv`` (5-fold, category and intent): the calibrated LinearSVC scored 1–2 points
    of macro-F1 above a logistic regression (C 10–30) and trains about 5x faster; predicting costs the same (the
    TF-IDF transform dominates). Character 3–5-grams scored as well as 2–5-grams and are 13–30 % cheaper to compute.
    Calibration uses `CALIBRATION_FOLDS` folds; `TextModel.train` lowers that when the smallest label is smaller.
    """
    words = word_tfidf()
    chars = TfidfVectorizer(
        analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, lowercase=True, strip_accents="unicode",
        min_df=1, dtype=np.float32,
    )  # fmt: skip
    svm = LinearSVC(C=0.5, random_state=seed)
    return Pipeline(
        [
            ("clip", FunctionTransformer(_clip)),
            ("features", FeatureUnion([("words", words), ("chars", chars)])),
            ("classifier", CalibratedClassifierCV(svm, cv=CALIBRATION_FOLDS, method="sigmoid")),
        ]
    )


class TextModel:
    """A fitted pipeline and what it is: target, version, training date, rows, labels, cross-validated metrics."""

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        target: str,
        version: str,
        trained_at: datetime,
        rows: int,
        labels: list[str],
        metrics: dict[str, float],
    ) -> None:
        self.pipeline = pipeline
        self.target = target
        self.version = version
        self.trained_at = trained_at
        self.rows = rows
        self.labels = labels
        self.metrics = metrics

    def __repr__(self) -> str:
        return f"TextModel(version={self.version!r}, rows={self.rows}, labels={len(self.labels)})"

    @classmethod
    def train(
        cls,
        texts: Sequence[str],
        labels: Sequence[str],
        *,
        target: str = "category",
        folds: int = 5,
        seed: int = 0,
    ) -> TextModel:
        """Fit on all rows; first cross-validate with `folds` folds when every label has enough rows for it.

        `metrics` is then ``{"macro_f1", "accuracy", "folds"}``, else empty (too few rows per label, or
        ``folds < 2``). A label with a single row cannot be learnt (nor its probability calibrated): its rows are
        left out, with a warning in the log, so one stray label does not stop a scheduled retraining; `labels`
        and `rows` say what the model was trained on. Raises `ModelError` for mismatched lengths, fewer than two
        labels left, or a `target` that is not a short name (letters, digits, ``_.-``).
        """
        texts, labels = _rows(texts, labels)
        if not _TARGET.fullmatch(target):
            raise ModelError(f"target {target!r} is not a short name (letters, digits, '_', '.', '-')")
        single = {label for label, count in Counter(labels).items() if count < 2}
        if single:
            log.warning(
                "training %s: left out %d label(s) with a single example: %s",
                target, len(single), ", ".join(sorted(single)[:10]),
            )  # fmt: skip
            kept = [i for i, label in enumerate(labels) if label not in single]
            texts, labels = [texts[i] for i in kept], [labels[i] for i in kept]
        counts = _label_counts(labels)
        metrics: dict[str, float] = {}
        if folds >= 2 and min(counts.values()) >= max(folds, 3):
            scores = evaluate(texts, labels, folds=folds, seed=seed)
            metrics = {"macro_f1": scores["macro_f1"], "accuracy": scores["accuracy"], "folds": scores["folds"]}
        pipeline = _fit(texts, labels, seed)
        trained_at = datetime.now(UTC).replace(microsecond=0)
        return cls(
            pipeline,
            target=target,
            version=f"{target}-{trained_at:%Y%m%dT%H%M%SZ}-{_digest(texts, labels)[:8]}",
            trained_at=trained_at,
            rows=len(texts),
            labels=sorted(counts),
            metrics=metrics,
        )

    def word_vectorizer(self) -> TfidfVectorizer:
        """The fitted word TF-IDF of the pipeline (`word_tfidf`, its vocabulary and weights learnt in training)."""
        return dict(self.pipeline.named_steps["features"].transformer_list)["words"]

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """The best label and its probability for each text, computed for the whole batch at once."""
        if isinstance(texts, str):
            raise TypeError("predict takes a sequence of texts, not one string: predict([text])")
        if len(texts) == 0:
            return []
        probabilities = self.pipeline.predict_proba(list(texts))
        best = probabilities.argmax(axis=1)
        classes = self.pipeline.classes_
        return [
            Prediction(label=str(classes[i]), confidence=float(row[i]))
            for i, row in zip(best, probabilities, strict=True)
        ]

    def save(self, path: Path) -> None:
        """Write the model to `path` (joblib, compressed); parent folders are created, the file replaced atomically."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "sklearn_version": sklearn.__version__,
            "pipeline": self.pipeline,
            "meta": self.describe(),
        }
        handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as file:
                joblib.dump(payload, file, compress=3)
                file.flush()
                os.fsync(file.fileno())
            Path(tmp).replace(path)  # os.replace: atomic on the same file system
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: Path) -> TextModel:
        """The model saved at `path`. Unpickling runs code from the file: load only models you trust.

        Raises `ModelError` saying what to do when the file is missing, unreadable, not an itsm-hub text model, or
        written by another scikit-learn version.
        """
        path = Path(path)
        if not path.exists():
            raise ModelError(f"no model at {path}; {_TRAIN_HINT}")
        if path.is_dir():
            raise ModelError(f"{path} is a folder, not a model file; give the model file's path or {_TRAIN_HINT}")
        try:
            with warnings.catch_warnings():
                # a pickle from another scikit-learn warns while loading; the version check below says it clearly
                warnings.simplefilter("ignore")
                payload = joblib.load(path)
        except OSError as exc:
            raise ModelError(f"cannot read the model {path}: {exc.strerror or exc}") from None
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"[:200]
            raise ModelError(f"{path} is not a readable model file ({reason}); {_TRAIN_HINT}") from None
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise ModelError(
                f"{path} is not an itsm-hub text model (it holds a {type(payload).__name__}); {_TRAIN_HINT}"
            )
        if payload.get("format_version") != FORMAT_VERSION:
            raise ModelError(
                f"{path} has model format {payload.get('format_version')!r}, this itsm-hub reads format "
                f"{FORMAT_VERSION}; retrain it with `itsm classify train`"
            )
        if payload.get("sklearn_version") != sklearn.__version__:
            raise ModelError(
                f"{path} was trained with scikit-learn {payload.get('sklearn_version')}, this installation has "
                f"{sklearn.__version__}; models do not carry over between versions: retrain it with "
                "`itsm classify train`"
            )
        try:
            meta = payload["meta"]
            return cls(
                payload["pipeline"],
                target=meta["target"],
                version=meta["version"],
                trained_at=datetime.fromisoformat(meta["trained_at"]),
                rows=int(meta["rows"]),
                labels=list(meta["labels"]),
                metrics=dict(meta["metrics"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{path} is an incomplete model file (bad {exc}); {_TRAIN_HINT}") from None

    def describe(self) -> dict[str, Any]:
        """What the model is, as plain JSON-able values: for the CLI, logs and run artifacts."""
        return {
            "target": self.target,
            "version": self.version,
            "trained_at": self.trained_at.isoformat(),
            "rows": self.rows,
            "labels": list(self.labels),
            "metrics": dict(self.metrics),
        }


def evaluate(texts: Sequence[str], labels: Sequence[str], *, folds: int = 5, seed: int = 0) -> dict[str, float | int]:
    """Stratified k-fold cross-validation of `build_pipeline`: ``{"macro_f1", "accuracy", "rows", "folds"}``.

    Scores are computed once over the out-of-fold predictions of all rows; macro-F1 averages over every label,
    a label never predicted counting 0. Raises `ModelError` when there are fewer than two labels or a label has
    fewer than `folds` rows (3 with 2 folds: each training fold needs 2 of each label to calibrate).
    """
    texts, labels = _rows(texts, labels)
    predicted = np.empty(len(labels), dtype=object)
    for train, test in stratified_folds(labels, folds, seed):
        pipeline = _fit([texts[i] for i in train], [labels[i] for i in train], seed)
        predicted[test] = pipeline.predict([texts[i] for i in test])
    return _scores(labels, predicted, folds)


def majority_baseline(labels: Sequence[str], *, folds: int = 5, seed: int = 0) -> dict[str, float | int]:
    """The same cross-validation as `evaluate`, predicting each training fold's most frequent label."""
    labels = list(labels)
    predicted = np.empty(len(labels), dtype=object)
    zeros = np.zeros((len(labels), 1))
    for train, test in stratified_folds(labels, folds, seed):
        dummy = DummyClassifier(strategy="most_frequent").fit(zeros[train], [labels[i] for i in train])
        predicted[test] = dummy.predict(zeros[test])
    return _scores(labels, predicted, folds)


def read_labelled_csv(path: Path, text_col: str, label_col: str) -> tuple[list[str], list[str]]:
    """Texts and labels from a UTF-8 CSV with a header; rows with an empty label are skipped.

    `text_col` may join several columns with ``+`` (``title+body``): their values are joined with a newline.
    Raises `ModelError` for a missing file or column (naming the columns the CSV has) or a file that is not UTF-8 CSV.
    """
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except FileNotFoundError:
        raise ModelError(f"no CSV file at {path}") from None
    except UnicodeDecodeError:
        raise ModelError(f"{path} is not UTF-8 text; save the CSV as UTF-8") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError) as exc:
        raise ModelError(f"cannot read {path} as CSV: {exc}") from None
    text_cols = [name.strip() for name in text_col.split("+")]
    for name in [*text_cols, label_col]:
        if name not in frame.columns:
            raise ModelError(f"{path} has no column {name!r}; its columns are: {', '.join(map(str, frame.columns))}")
    kept = frame[frame[label_col].str.strip() != ""]
    texts = kept[text_cols[0]].tolist()
    for name in text_cols[1:]:
        texts = [f"{text}\n{more}" for text, more in zip(texts, kept[name].tolist(), strict=True)]
    return texts, kept[label_col].str.strip().tolist()


# --- helpers --------------------------------------------------------------------------------------------------------


def _rows(texts: Sequence[str], labels: Sequence[str]) -> tuple[list[str], list[str]]:
    if isinstance(texts, str) or isinstance(labels, str):
        raise TypeError("texts and labels are sequences of strings, not one string")
    texts, labels = list(texts), [str(label) for label in labels]
    if len(texts) != len(labels):
        raise ModelError(f"{len(texts)} texts but {len(labels)} labels: give one label per text")
    return texts, labels


def _label_counts(labels: list[str]) -> Counter[str]:
    counts = Counter(labels)
    if len(counts) < 2:
        found = f"only {next(iter(counts))!r}" if counts else "no rows"
        raise ModelError(f"a classifier needs at least two labels, the data has {found}")
    return counts


def _fit(texts: list[str], labels: list[str], seed: int) -> Pipeline:
    smallest = min(_label_counts(labels).values())
    if smallest < 2:  # callers prevent it: train() leaves such labels out, stratified_folds() refuses them
        raise ModelError("every label needs at least 2 examples to calibrate the model's probabilities")
    pipeline = build_pipeline(seed)
    pipeline.set_params(classifier__cv=min(CALIBRATION_FOLDS, smallest))
    return pipeline.fit(texts, labels)


def stratified_folds(labels: Sequence[str], folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The stratified folds `evaluate` and `majority_baseline` use (shuffled with `seed`): benchmarks reuse them."""
    if folds < 2:
        raise ModelError(f"cross-validation needs at least 2 folds, not {folds}")
    counts = _label_counts(list(labels))
    needed = max(folds, 3)  # and every training fold keeps 2 rows of each label, for the calibration
    small = sorted(label for label, count in counts.items() if count < needed)
    if small:
        shown = ", ".join(f"{label!r} ({counts[label]})" for label in small[:10])
        more = f" and {len(small) - 10} more" if len(small) > 10 else ""
        raise ModelError(
            f"{folds}-fold cross-validation needs at least {needed} rows per label; too few for {shown}{more}. "
            "Label more tickets, merge or drop these labels, or use fewer folds"
        )
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros((len(labels), 1)), list(labels)))


def _scores(labels: list[str], predicted: np.ndarray, folds: int) -> dict[str, float | int]:
    every = sorted(set(labels))
    macro = f1_score(labels, list(predicted), labels=every, average="macro", zero_division=0)
    accuracy = accuracy_score(labels, list(predicted))
    return {"macro_f1": float(macro), "accuracy": float(accuracy), "rows": len(labels), "folds": folds}


def _digest(texts: list[str], labels: list[str]) -> str:
    digest = hashlib.sha256()
    for text, label in zip(texts, labels, strict=True):
        digest.update(text.encode("utf-8", "surrogatepass"))
        digest.update(b"\x1f")
        digest.update(label.encode("utf-8", "surrogatepass"))
        digest.update(b"\x1e")
    return digest.hexdigest()
