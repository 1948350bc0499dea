"""Fit the matcher's confidence model and its default threshold; write faq/confidence.json.

Run from the repository root: `.venv/bin/python bench/fit_confidence.py [--data DIR]`.

Public development data only (never a test split). FAQs of many shapes are built from the
CLINC150 and BANKING77 training examples: 25-150 entries, 1-6 phrasings per entry (the same
for every entry, or mixed), and 10-30 % of the sampled intents held out of the FAQ so that their
questions become near misses that must be forwarded (CLINC150's out-of-scope dev questions
too). Each FAQ is scored on its set's dev split, and every dev question's best entry gives one
row: the signals of faq.calibration.FEATURES and whether that entry is the right answer. A
logistic regression fitted on one half of the FAQs is the confidence; the default threshold
is the one that answers most questions correctly at precision >= --precision on the other
half (faq.calibration.calibrate, the rule used with labelled questions).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.faq_quality import DEFAULT_DATA, embedded, labelled_from, read_jsonl
from faq.calibration import (
    CONFIDENCE_FILE,
    FEATURES,
    FITTED_ENTRIES,
    ConfidenceModel,
    calibrate,
    confidence_features,
)
from faq.matcher import Matcher
from faq.store import Faq, FaqEntry

SETS = ("clinc150", "banking77")
MIN_ENTRIES, MAX_ENTRIES = FITTED_ENTRIES
MAX_PHRASINGS = 6
HELD_OUT = (0.1, 0.3)
# Stands in for the model being fitted: the signals do not depend on it.
NEUTRAL = ConfidenceModel(np.zeros(len(FEATURES)), 0.0, 0.5, 0.0)


@dataclass(frozen=True)
class DevSet:
    name: str
    examples: dict[str, list[str]]  # intent -> training examples, in file order
    queries: list[tuple[str, str | None]]  # dev (text, expected intent or None)
    vectors: np.ndarray  # dev questions' embeddings, in order


@dataclass(frozen=True)
class Rows:
    features: np.ndarray
    right: np.ndarray
    must_forward: np.ndarray
    shape: str


def load(data: Path, name: str) -> DevSet:
    rows = read_jsonl(data / name / "faq.jsonl")
    examples = {
        str(r["id"]): [str(x) for x in r["examples"]]
        for r in rows
    }
    embedded([x for texts in examples.values() for x in texts])  # primes the encoder's cache
    dev = labelled_from(data / name / "queries_dev.jsonl")
    return DevSet(
        name=name,
        examples=examples,
        queries=[(q.text, q.expected) for q in dev],
        vectors=embedded([q.text for q in dev]),
    )


def shapes(dev: DevSet, count: int, seed: int) -> Iterator[tuple[Faq, set[str], str]]:
    """`count` random FAQs over dev's intents: (faq, held-out intents, description)."""
    rng = np.random.default_rng(seed)
    intents = sorted(dev.examples)
    for _ in range(count):
        held_share = rng.uniform(*HELD_OUT)
        most = min(MAX_ENTRIES, int(len(intents) * (1 - held_share)))
        n_entries = int(rng.integers(MIN_ENTRIES, most + 1))
        n_held = max(1, round(n_entries * held_share / (1 - held_share)))
        chosen = rng.permutation(intents)[: n_entries + n_held]
        base = int(rng.integers(1, MAX_PHRASINGS + 1))
        mixed = bool(rng.random() < 0.4)
        entries = []
        for intent in chosen[:n_entries]:
            k = int(rng.integers(1, MAX_PHRASINGS + 1)) if mixed else base
            picked = rng.choice(len(dev.examples[intent]), size=k, replace=False)
            texts = [dev.examples[intent][i] for i in sorted(picked)]
            entries.append(FaqEntry(str(intent), texts[0], tuple(texts[1:]), answer=""))
        shape = (
            f"{dev.name}: {n_entries} entries, {'1-6' if mixed else base} phrasings, "
            f"{n_held} held out"
        )
        yield Faq(source=shape, entries=tuple(entries)), {str(i) for i in chosen[n_entries:]}, shape


def score(dev: DevSet, faq: Faq, held: set[str], shape: str) -> Rows:
    """One row per dev question about the FAQ's or the held-out intents, plus out of scope."""
    entry_ids = {e.id for e in faq.entries}
    asked = entry_ids | held
    keep = [i for i, (_, e) in enumerate(dev.queries) if e is None or e in asked]
    matcher = Matcher(faq, math.inf, "fit", confidence=NEUTRAL)
    cosine, centroid, probability = matcher.signals(dev.vectors[keep])
    best = np.argmax(probability * np.clip(cosine, 0.0, 1.0) ** 2, axis=1)[:, None]
    phrasings = np.array([len(e.phrasings) for e in faq.entries])
    features = confidence_features(cosine, centroid, probability, phrasings, best)[:, 0]
    expected = [dev.queries[i][1] for i in keep]
    answer = [faq.entries[j].id for j in best[:, 0]]
    return Rows(
        features=features,
        right=np.array([a == e for a, e in zip(answer, expected)]),
        must_forward=np.array([e not in entry_ids for e in expected]),
        shape=shape,
    )


def collect(sets: list[DevSet], per_set: int, seed: int) -> list[Rows]:
    rows = []
    for number, dev in enumerate(sets):
        for faq, held, shape in shapes(dev, per_set, seed + 1000 * number):
            started = time.perf_counter()
            rows.append(score(dev, faq, held, shape))
            r = rows[-1]
            print(
                f"  {shape}: {len(r.right)} questions, {r.must_forward.mean():.0%} must forward, "
                f"best entry right {r.right[~r.must_forward].mean():.0%} "
                f"({time.perf_counter() - started:.1f} s)",
                flush=True,
            )
    return rows


def fit(rows: list[Rows]) -> tuple[np.ndarray, float]:
    """Logistic regression on standardised features, returned in raw-feature units. Each FAQ
    weighs the same, however many questions it has."""
    x = np.concatenate([r.features for r in rows])
    y = np.concatenate([r.right for r in rows])
    weight = np.concatenate([np.full(len(r.right), 1.0 / len(r.right)) for r in rows])
    scaler = StandardScaler().fit(x)
    model = LogisticRegression(C=1.0, max_iter=2000)
    model.fit(scaler.transform(x), y, sample_weight=weight * len(rows))
    weights = model.coef_[0] / scaler.scale_
    intercept = float(model.intercept_[0] - np.dot(weights, scaler.mean_))
    return weights, intercept


def report(rows: list[Rows], model: ConfidenceModel, label: str) -> None:
    """Precision and answered share per set at the model's threshold, and the worst FAQs."""
    for name in SETS:
        mine = [r for r in rows if r.shape.startswith(name)]
        if not mine:
            continue
        answered = correct = in_scope = 0
        worst = []
        for r in mine:
            given = model(r.features) >= model.threshold
            hits = given & r.right
            answered, correct = answered + int(given.sum()), correct + int(hits.sum())
            in_scope += int((~r.must_forward).sum())
            worst.append((hits.sum() / max(1, given.sum()), r.shape))
        print(
            f"{label} {name}: precision {correct / max(1, answered):.3f}, "
            f"answered correctly {correct / max(1, in_scope):.3f}; "
            f"lowest FAQ precision {min(worst)[0]:.3f} ({min(worst)[1]})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="benchmark sets folder")
    parser.add_argument("--faqs", type=int, default=24, help="FAQs per set and half")
    parser.add_argument("--precision", type=float, default=0.98)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--output", type=Path, default=CONFIDENCE_FILE)
    args = parser.parse_args()

    sets = [load(args.data, name) for name in SETS]
    print("fitting FAQs:")
    fitting = collect(sets, args.faqs, args.seed)
    print("threshold FAQs:")
    choosing = collect(sets, args.faqs, args.seed + 1)
    weights, intercept = fit(fitting)
    unthresholded = ConfidenceModel(weights, intercept, math.inf, args.precision)
    chosen = calibrate(
        scores=np.concatenate([unthresholded(r.features) for r in choosing]).tolist(),
        correct=np.concatenate([r.right for r in choosing]).tolist(),
        out_of_scope=np.concatenate([r.must_forward for r in choosing]).tolist(),
        min_precision=args.precision,
        oos_share=0.0,
    )
    model = ConfidenceModel(weights, intercept, chosen.threshold, args.precision)
    for name, weight in zip(FEATURES, weights):
        print(f"  {name:20s} {weight:+.3f}")
    print(f"  intercept            {intercept:+.3f}; threshold {model.threshold:.4f}")
    report(fitting, model, "fitting FAQs")
    report(choosing, model, "threshold FAQs")
    args.output.write_text(model.to_json(), encoding="utf-8")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
