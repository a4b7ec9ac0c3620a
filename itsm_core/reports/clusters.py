"""Grouping similar tickets by their text, for the `kb_trends` report: which problems come back, and how often.

`fit_clusters` turns texts into word TF-IDF vectors with a fitted vectoriser (the classifier's own, or one with the
same settings, `word_tfidf`, fitted by the caller) and groups them bottom-up (agglomerative clustering, average
linkage, cosine distance): two groups merge while their texts are, on average, at least `MERGE_SIMILARITY` alike, so
the number of clusters comes from the data, not from a guess. Groups of fewer than `MIN_MEMBERS` texts are noise,
not trends, and are dropped. `Clusters.assign` then places any text in the cluster whose centre (the mean of its
members' vectors) is most similar to it, or in none (-1) when no centre reaches `MIN_SIMILARITY`. There is nothing
random in it: the same texts give the same clusters. The pairwise similarities take memory in the square of the
number of texts (3,000: 72 MB): callers cap it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix, spmatrix, vstack
from sklearn.cluster import AgglomerativeClustering
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

from itsm_core.rules.model import word_tfidf

#: Two groups merge while the mean cosine similarity of their texts' word TF-IDF vectors reaches this.
MERGE_SIMILARITY = 0.1
#: A cluster needs this many texts (fewer: noise).
MIN_MEMBERS = 3
#: Cosine similarity to a cluster's centre a text needs to be placed in it. On the planted themes of the tests,
#: members score 0.18 to 0.64 (the lowest: texts that formed a pair of their own), unrelated texts under 0.1.
MIN_SIMILARITY = 0.15
#: Mean pairwise cosine similarity of their solutions' word TF-IDF above which tickets share a solution.
SHARED_SIMILARITY = 0.5


@dataclass(frozen=True)
class Clusters:
    """Fitted clusters: the vectoriser, the centres (unit length, a row a cluster) and each cluster's most
    distinctive terms, most distinctive first."""

    vectorizer: TfidfVectorizer
    centres: csr_matrix
    terms: list[list[str]]

    def assign(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """For each text, its cluster (index into `centres`, -1 for none) and its cosine similarity to that centre
        (words outside the vectoriser's vocabulary are not seen)."""
        if not texts:
            return np.empty(0, dtype=int), np.empty(0)
        similarity = (self.vectorizer.transform(texts) @ self.centres.T).toarray()
        best = similarity.argmax(axis=1)
        score = similarity[np.arange(len(texts)), best]
        return np.where(score >= MIN_SIMILARITY, best, -1), score


def fit_clusters(texts: Sequence[str], vectorizer: TfidfVectorizer, terms: int = 8) -> Clusters | None:
    """Clusters of `texts` (see the module) in the space of the fitted `vectorizer`, with up to `terms` top terms
    each; None when no cluster of `MIN_MEMBERS` forms."""
    if len(texts) < MIN_MEMBERS:
        return None
    words = vectorizer.transform(texts)
    distance = 1 - (words @ words.T).toarray()  # rows have unit length: the product is the cosine similarity
    labels = (
        AgglomerativeClustering(
            n_clusters=None, metric="precomputed", linkage="average", distance_threshold=1 - MERGE_SIMILARITY
        )
        .fit(np.clip(distance, 0, None))
        .labels_
    )
    kept = [label for label, size in enumerate(np.bincount(labels)) if size >= MIN_MEMBERS]
    if not kept:
        return None
    members = [labels == label for label in kept]
    # sparse centres: a vocabulary can hold hundreds of thousands of terms
    centres = normalize(vstack([csr_matrix(words[rows].mean(axis=0)) for rows in members]))
    return Clusters(vectorizer, centres, [_top_terms(vectorizer, words, rows, terms) for rows in members])


def _top_terms(vectorizer: TfidfVectorizer, words: spmatrix, rows: np.ndarray, count: int) -> list[str]:
    """The terms whose mean weight in the cluster's `rows` most exceeds their mean weight over all texts (so words
    every ticket uses are never a cluster's top term)."""
    names = vectorizer.get_feature_names_out()
    lift = np.asarray(words[rows].mean(axis=0) - words.mean(axis=0)).ravel()
    order = np.argsort(-lift, kind="stable")[:count]
    return [str(names[i]) for i in order if lift[i] > 0]


def shared_solution(solutions: Sequence[str | None]) -> bool:
    """Whether the tickets of a cluster share a solution: at least half of them have one, and the solutions they
    have are alike — the mean cosine similarity of every pair of their word TF-IDF vectors reaches
    `SHARED_SIMILARITY`."""
    given = [text for text in solutions if text and text.strip()]
    if len(given) < 2 or 2 * len(given) < len(solutions):
        return False
    try:
        vectors = word_tfidf().fit_transform(given)  # rows of unit length
    except ValueError:  # no word at all (punctuation only)
        return False
    total = np.asarray(vectors.sum(axis=0)).ravel()
    n = len(given)
    pairs_mean = (float(total @ total) - n) / (n * (n - 1))  # Σ over pairs i≠j of ⟨vi, vj⟩, each pair twice
    return pairs_mean >= SHARED_SIMILARITY
