"""Choose an answer threshold that reaches a target precision on labelled questions.

Rule (the same as the benchmark baselines): among thresholds whose precision of answers on
the labelled set is at least the target, take the one that answers the most questions
correctly; on ties, the higher threshold. A dev set usually holds far fewer "must forward"
questions than live traffic (CLINC150's dev is 3 % out of scope, its test 18 %), and a
threshold tuned on it answers too many of them. So unanswerable questions are weighted up
until they count as at least `OOS_SHARE` of the set before precision is computed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

OOS_SHARE = 0.2


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
