"""Decide which FAQ entry, if any, answers a colleague's question.

Design (measured in bench/faq_quality.py; README "FAQ matcher"):
- every phrasing of every entry is normalised (faq.text) and embedded with MiniLM;
- a logistic-regression classifier trained on those phrasings picks the entry: it learns
  which words separate neighbouring entries, which nearest-phrasing search cannot;
- entries are ranked by p * c**2: the classifier's probability for the entry times the squared
  cosine to that entry's closest phrasing (the probability is high for a question clearly more
  like one entry than the others; the cosine stays low for a question unlike any entry);
- the confidence of the best few is the confidence model's (faq.calibration): a probability
  that the answer is right, from those signals, their margins over the runner-up and the FAQ's
  shape, fitted on public data so that it means the same on any FAQ;
- a question is answered only when that confidence reaches the threshold: calibrated on the
  FAQ's labelled questions if it has them, else the confidence model's default."""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from threadpoolctl import ThreadpoolController

from faq.calibration import (
    Calibration,
    ConfidenceModel,
    LabelledQuery,
    calibrate,
    confidence_features,
    confidence_model,
    load_labelled,
    split_labelled,
)
from faq.embedding import get_encoder
from faq.store import Faq, FaqEntry, load_faq
from faq.text import normalise

log = logging.getLogger(__name__)

# Each entry's answer is one more phrasing of it (README "FAQ matcher": measured).
ANSWERS_AS_PHRASINGS = True
CANDIDATES = 3
# A forwarded question takes its nearest entry's topic from this confidence up; below it the
# nearest entry says little about the question, which goes under "Other questions". On the
# bundled FAQ's labelled questions (bench/faq_topics.py, test half) 0.95 of the topics given
# are right, 0.87 of those given to forwarded questions; at 0.15 off-topic questions such as
# "Is the restructure going to affect my team?" (0.16) were filed under IT.
TOPIC_FLOOR = 0.2
_REGULARISATION_C = 10.0
_CHUNK = 256
_BLAS = ThreadpoolController()


@dataclass(frozen=True)
class Match:
    text: str
    entry: FaqEntry | None  # set only when confident enough to answer
    score: float  # confidence of the best entry
    candidates: tuple[tuple[FaqEntry, float], ...]  # best few entries, for moderators

    @property
    def topic(self) -> str | None:
        """The topic the question takes: its answer's entry's, else its nearest entry's when
        the confidence in that entry reaches TOPIC_FLOOR (bench/faq_topics.py measures how
        often that is right)."""
        if self.entry is not None:
            return self.entry.topic
        if not self.candidates:
            return None
        nearest, confidence = self.candidates[0]
        return nearest.topic if confidence >= TOPIC_FLOOR else None


class Matcher:
    """An FAQ indexed for matching plus the threshold that decides whether to answer."""

    def __init__(
        self,
        faq: Faq,
        threshold: float,
        threshold_source: str,
        *,
        answers_as_phrasings: bool = ANSWERS_AS_PHRASINGS,
        confidence: ConfidenceModel | None = None,
    ) -> None:
        """`confidence`: the shipped model unless given (bench/fit_confidence.py fits one)."""
        self.faq = faq
        self.threshold = threshold
        self.threshold_source = threshold_source
        self.confidence = confidence or confidence_model()
        # (entry id, normalised question) pairs never to answer with: "No, send it to the team"
        self.negatives: frozenset[tuple[str, str]] = frozenset()
        self._encoder = get_encoder()
        phrasings = [
            (i, normalise(p))
            for i, e in enumerate(faq.entries)
            for p in (*e.phrasings, *([e.answer] if answers_as_phrasings and e.answer else []))
        ]
        labels = np.array([i for i, _ in phrasings])
        self._vectors = self._encoder.encode_cached([text for _, text in phrasings])
        # phrasings are grouped by entry, so each entry's columns start where its label starts
        self._starts = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])
        # the FAQ's shape as the confidence model was fitted on it: questions and alternates
        self._phrasings = np.array([len(e.phrasings) for e in faq.entries])
        centroids = np.add.reduceat(self._vectors, self._starts, axis=0)
        self._centroids = centroids / np.linalg.norm(centroids, axis=1, keepdims=True)
        self._classifier: LogisticRegression | None = None
        if len(faq.entries) > 1:
            # Balanced: an entry a moderator just added has one phrasing beside others' five, and
            # unweighted its paraphrases got a third of the probability. Same results on the
            # balanced benchmarks; bundled test precision 0.986 -> 1.000, BANKING77 answered
            # 0.843 -> 0.835.
            classifier = LogisticRegression(
                C=_REGULARISATION_C, max_iter=500, class_weight="balanced"
            )
            with warnings.catch_warnings():
                # A not-quite-converged fit still ranks entries, and an FAQ with one phrasing per
                # entry is normal here though sklearn warns about it; calibration measures both.
                warnings.simplefilter("ignore", ConvergenceWarning)
                warnings.filterwarnings("ignore", "The number of unique classes", UserWarning)
                classifier.fit(self._vectors, labels)
            self._classifier = classifier

    def match(self, text: str) -> Match:
        return self.match_many([text])[0]

    def match_many(self, texts: Sequence[str]) -> list[Match]:
        """Score many questions at once (one model call per batch); same results as match()."""
        if not texts:
            return []
        return self.match_embedded(texts, self._encoder.encode([normalise(t) for t in texts]))

    def match_embedded(self, texts: Sequence[str], queries: np.ndarray) -> list[Match]:
        """match_many for questions already embedded (normalised text, one row each)."""
        columns, confidence = self.candidates(queries)
        matches = []
        for row, text in enumerate(texts):
            candidates = tuple(
                (self.faq.entries[j], float(c)) for j, c in zip(columns[row], confidence[row])
            )
            best_entry, best_score = candidates[0]
            entry = best_entry if best_score >= self.threshold else None
            if entry is not None and self.negatives and (entry.id, normalise(text)) in self.negatives:
                entry = None
            matches.append(Match(text=text, entry=entry, score=best_score, candidates=candidates))
        return matches

    def candidates(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The CANDIDATES entries ranked by p * cos**2 (columns), reordered by confidence, and
        their confidence: two (len(queries), CANDIDATES) arrays, most confident first."""
        cosine, centroid, probability = self.signals(queries)
        rank = probability * np.clip(cosine, 0.0, 1.0) ** 2
        columns = np.argsort(-rank, axis=1, kind="stable")[:, :CANDIDATES]
        features = confidence_features(cosine, centroid, probability, self._phrasings, columns)
        confidence = self.confidence(features)
        order = np.argsort(-confidence, axis=1, kind="stable")
        return (
            np.take_along_axis(columns, order, axis=1),
            np.take_along_axis(confidence, order, axis=1),
        )

    def signals(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per question and entry: cosine to the closest phrasing, cosine to the entry's mean
        phrasing, and the classifier's probability; each (len(queries), number of entries)."""
        # One BLAS thread: these products are small, and OpenBLAS's second thread waiting for
        # the first (spinning, with the model's threads on the same 2 cores) made one
        # question's scoring take 8 ms instead of 0.7 ms on BANKING77.
        with _BLAS.limit(limits=1, user_api="blas"):
            # in chunks: a query-by-phrasing matrix for a whole batch can run to hundreds of MB
            cosine = np.concatenate(
                [
                    np.maximum.reduceat(chunk @ self._vectors.T, self._starts, axis=1)
                    for chunk in np.array_split(queries, max(1, len(queries) // _CHUNK))
                ]
            )
            centroid = queries @ self._centroids.T
            if self._classifier is None:  # one entry: how much like it the question is
                probability = np.clip(cosine, 0.0, 1.0)
            else:
                probability = self._classifier.predict_proba(queries)
        return cosine, centroid, probability


def build_matcher(
    faq: Faq,
    *,
    threshold: float | None = None,
    min_precision: float = 0.97,
    labelled: Sequence[LabelledQuery] | None = None,
    unlabelled_ids: Collection[str] = (),
) -> Matcher:
    """Explicit threshold wins; else calibrate on `labelled`; else the confidence model's own.

    `unlabelled_ids`: entries added after the labelled questions were written (by moderators).
    """
    if threshold is not None:
        return Matcher(faq, threshold, "explicit")
    if not labelled:
        matcher = Matcher(faq, math.inf, "default")
        matcher.threshold = matcher.confidence.threshold
        matcher.threshold_source = (
            f"default (no labelled questions): confidence model's threshold for precision "
            f"{matcher.confidence.precision}"
        )
        return matcher
    matcher = Matcher(faq, math.inf, "calibrating")
    result = calibration_for(matcher, labelled, min_precision, unlabelled_ids)
    matcher.threshold = result.threshold
    matcher.threshold_source = (
        f"calibrated on {len(labelled)} labelled questions for precision {min_precision}"
    )
    if math.isinf(result.threshold):
        log.warning(
            "%s: no threshold reaches precision %s; answering nothing", faq.source, min_precision
        )
    return matcher


def calibration_for(
    matcher: Matcher,
    labelled: Sequence[LabelledQuery],
    min_precision: float,
    unlabelled_ids: Collection[str] = (),
) -> Calibration:
    """Score labelled questions and calibrate. An expected id the FAQ no longer has counts as
    'must forward': its answer is gone, so answering it with anything would be wrong.

    A 'must forward' question whose best entry is in `unlabelled_ids` is left out: its label
    predates that entry, which may well answer it (the bundled set's "can i bring my dog to the
    office" after a moderator added a dogs entry), and counting it wrong would raise the
    threshold for the whole FAQ.
    """
    matches = matcher.match_many([q.text for q in labelled])
    if unlabelled_ids:
        kept = [
            (q, m)
            for q, m in zip(labelled, matches)
            if q.expected is not None or m.candidates[0][0].id not in unlabelled_ids
        ]
        labelled, matches = [q for q, _ in kept], [m for _, m in kept]
    known = [q.expected if q.expected and matcher.faq.get(q.expected) else None for q in labelled]
    stale = sorted({q.expected for q, k in zip(labelled, known) if q.expected and k is None})
    if stale:
        log.warning("%s: labelled questions name unknown ids %s", matcher.faq.source, stale)
    return calibrate(
        scores=[m.score for m in matches],
        correct=[k is not None and m.candidates[0][0].id == k for m, k in zip(matches, known)],
        out_of_scope=[k is None for k in known],
        min_precision=min_precision,
    )


def labelled_path(faq_path: Path) -> Path:
    """Labelled questions live beside the FAQ: config/faq.yaml -> config/faq.queries.jsonl."""
    return faq_path.with_name(f"{faq_path.stem}.queries.jsonl")


def matcher_for_file(faq_path: Path, *, threshold: float | None, min_precision: float) -> Matcher:
    """What the app and `cli.py faq match` use: the FAQ, calibrated on the dev half of its
    labelled questions when the sibling file exists (the other half is kept for reporting)."""
    faq = load_faq(faq_path)
    queries = labelled_path(faq_path)
    labelled = None
    if threshold is None and queries.exists():
        labelled, _ = split_labelled(load_labelled(queries))
    return build_matcher(faq, threshold=threshold, min_precision=min_precision, labelled=labelled)
