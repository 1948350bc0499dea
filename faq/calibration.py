"""How sure the matcher is, and the threshold that decides whether to answer.

Two parts:
- the confidence model: a logistic regression over signals that mean the same on any FAQ
  (cosines, margins, the classifier's odds, the FAQ's shape), fitted offline on FAQs of many
  shapes built from public training data (bench/fit_confidence.py writes faq/confidence.json),
  so its output reads as "probability the answer is right" on an FAQ it has never seen; its
  default threshold was chosen there for precision >= 0.98;
- per-FAQ calibration, when the FAQ comes with labelled questions. Rule (the same as the
  benchmark baselines): among thresholds whose precision of answers on the labelled set is at
  least the target, take the one that answers the most questions correctly; on ties, the
  higher threshold. A dev set usually holds far fewer "must forward" questions than live
  traffic (CLINC150's dev is 3 % out of scope, its test 18 %), and a threshold tuned on it
  answers too many of them. So unanswerable questions are weighted up until they count as at
  least `OOS_SHARE` of the set before precision is computed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

OOS_SHARE = 0.2
CONFIDENCE_FILE = Path(__file__).with_name("confidence.json")
# The signals, in the order of the fitted weights (see confidence_features).
FEATURES = (
    "cosine",  # to the entry's closest phrasing
    "cosine_margin",  # over the best other entry's closest phrasing
    "centroid_cosine",  # to the mean of the entry's phrasings
    "log_odds",  # the classifier's probability for the entry, as log odds
    "log_ratio",  # log of that probability over the best other entry's
    "log_entries",
    "log_phrasings",  # of this entry
    "log_mean_phrasings",  # per entry, over the FAQ
)
_LOG_ODDS_LIMIT = 12.0
FITTED_ENTRIES = (25, 150)  # bench/fit_confidence.py's FAQs


@dataclass(frozen=True)
class ConfidenceModel:
    """P(answer is right) = sigmoid(weights . features + intercept)."""

    weights: np.ndarray
    intercept: float
    threshold: float  # default: chosen on development data for `precision`
    precision: float

    def __call__(self, features: np.ndarray) -> np.ndarray:
        """Confidence for rows of features (..., len(FEATURES))."""
        return 1.0 / (1.0 + np.exp(-(features @ self.weights + self.intercept)))

    def to_json(self) -> str:
        return json.dumps(
            {
                "features": list(FEATURES),
                "weights": [round(float(w), 6) for w in self.weights],
                "intercept": round(self.intercept, 6),
                "threshold": round(self.threshold, 6),
                "precision": self.precision,
            },
            indent=2,
        ) + "\n"


@lru_cache(maxsize=1)
def confidence_model(path: Path = CONFIDENCE_FILE) -> ConfidenceModel:
    """The shipped coefficients; a file fitted for other features is refused, not misread."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if tuple(data["features"]) != FEATURES:
        raise ValueError(f"{path}: fitted for features {data['features']}, expected {FEATURES}")
    return ConfidenceModel(
        weights=np.asarray(data["weights"], dtype=np.float64),
        intercept=float(data["intercept"]),
        threshold=float(data["threshold"]),
        precision=float(data["precision"]),
    )


def confidence_features(
    cosine: np.ndarray,
    centroid_cosine: np.ndarray,
    probability: np.ndarray,
    phrasings: np.ndarray,
    columns: np.ndarray,
) -> np.ndarray:
    """FEATURES for entries `columns` (n, k) of each row of the (n, entries) score matrices.

    `phrasings[j]` is entry j's number of phrasings. The number of entries is held to the
    range the model was fitted on (FITTED_ENTRIES) rather than extrapolated. With one entry
    there is no runner-up: its cosine margin is taken against zero, its probability against
    the rest (1 - p).
    """
    rows = np.arange(len(cosine))[:, None]
    n_entries = cosine.shape[1]
    cos = np.clip(cosine, 0.0, 1.0).astype(np.float64)
    p = np.clip(probability.astype(np.float64), 1e-9, 1.0 - 1e-9)
    if n_entries > 1:
        # best and runner-up per row: an entry's rival is the best, or the runner-up if it is best
        top_cos = -np.partition(-cos, 1, axis=1)[:, :2]
        top_p = -np.partition(-p, 1, axis=1)[:, :2]
    else:
        top_cos = np.c_[cos, np.zeros_like(cos)]
        top_p = np.c_[p, 1.0 - p]
    c, pj = cos[rows, columns], p[rows, columns]
    rival_cos = np.where(c >= top_cos[:, :1], top_cos[:, 1:2], top_cos[:, :1])
    rival_p = np.where(pj >= top_p[:, :1], top_p[:, 1:2], top_p[:, :1])
    counts = phrasings.astype(np.float64)
    features = np.stack(
        np.broadcast_arrays(
            c,
            c - rival_cos,
            np.clip(centroid_cosine[rows, columns], 0.0, 1.0),
            np.clip(np.log(pj) - np.log1p(-pj), -_LOG_ODDS_LIMIT, _LOG_ODDS_LIMIT),
            np.clip(np.log(pj) - np.log(rival_p), -_LOG_ODDS_LIMIT, _LOG_ODDS_LIMIT),
            np.full(c.shape, math.log(min(max(n_entries, FITTED_ENTRIES[0]), FITTED_ENTRIES[1]))),
            np.log(counts[columns]),
            np.full(c.shape, math.log(counts.mean())),
        ),
        axis=-1,
    )
    return features


@dataclass(frozen=True)
class LabelledQuery:
    text: str
    expected: str | None  # FAQ entry id that should answer it, or None: forward to a human


@dataclass(frozen=True)
class CurvePoint:
    threshold: float
    precision: float  # weighted precision of answers given at this threshold
    answer_rate: float  # answerable questions answered correctly / answerable questions
    answered: int
    correct: int


@dataclass(frozen=True)
class Calibration:
    threshold: float  # math.inf when no threshold reaches the target: answer nothing
    min_precision: float
    points: tuple[CurvePoint, ...]  # one per distinct score, highest threshold first


def load_labelled(path: Path) -> list[LabelledQuery]:
    """Read `{"text": ..., "expected": id | null}` lines; blank lines are skipped."""
    queries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            text, expected = row["text"], row["expected"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f'{path}:{number}: expected {{"text", "expected"}} JSON') from exc
        if not isinstance(text, str) or not (expected is None or isinstance(expected, str)):
            raise ValueError(f"{path}:{number}: text must be a string, expected a string or null")
        queries.append(LabelledQuery(text=text, expected=expected))
    return queries


def split_labelled(
    queries: Sequence[LabelledQuery],
) -> tuple[list[LabelledQuery], list[LabelledQuery]]:
    """Deterministic dev/test split of one file: even lines tune, odd lines report."""
    return list(queries[0::2]), list(queries[1::2])


def calibrate(
    scores: Sequence[float],
    correct: Sequence[bool],
    out_of_scope: Sequence[bool],
    min_precision: float,
    oos_share: float = OOS_SHARE,
) -> Calibration:
    """Pick the threshold; `correct[i]` says the best entry for query i is its expected one."""
    score = np.asarray(scores, dtype=np.float64)
    right = np.asarray(correct, dtype=bool)
    oos = np.asarray(out_of_scope, dtype=bool)
    order = np.argsort(-score, kind="stable")
    score, right, oos = score[order], right[order], oos[order]
    weight = np.ones(len(score))
    n_oos, n_in = int(oos.sum()), int((~oos).sum())
    if n_oos and n_in and n_oos / len(score) < oos_share:
        weight[oos] = oos_share / (1 - oos_share) * n_in / n_oos
    hits = right & ~oos
    cum_hits = np.cumsum(hits)
    precision = np.cumsum(hits * weight) / np.cumsum(weight)
    points: list[CurvePoint] = []
    best: CurvePoint | None = None
    for k in range(len(score)):
        if k + 1 < len(score) and score[k + 1] == score[k]:
            continue  # a threshold answers every query with an equal score
        point = CurvePoint(
            threshold=float(score[k]),
            precision=float(precision[k]),
            answer_rate=float(cum_hits[k] / n_in) if n_in else 0.0,
            answered=k + 1,
            correct=int(cum_hits[k]),
        )
        points.append(point)
        if point.precision >= min_precision and (best is None or point.correct > best.correct):
            best = point
    threshold = best.threshold if best is not None else math.inf
    return Calibration(threshold=threshold, min_precision=min_precision, points=tuple(points))
