"""What `cli.py faq ...` does, kept free of click so it can be called and tested directly."""

from __future__ import annotations

import asyncio
import json
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from domain.states import QuestionStatus
from faq.calibration import Calibration, CurvePoint, LabelledQuery, load_labelled, split_labelled
from faq.learning import Example, suggest
from faq.live import faq_yaml, live_matcher_for_file, merged_faq, stored_entries, with_phrasings
from faq.matcher import Matcher, build_matcher, calibration_for
from faq.store import Faq, FaqFormatError, load_document, load_faq, parse_entry, read_faq_text
from store.store import Store

CURVE_ROWS = 15
# Phrasings (question + alternates) per entry from which answers become reliable: with 4 the
# bundled FAQ without labels answers more than half of its answerable questions (0.558, all
# right) and every benchmark set keeps precision >= 0.97 (README "FAQ matcher",
# bench/faq_quality.py --tables phrasings).
RELIABLE_PHRASINGS = 4


def check(path: Path) -> str:
    """A valid file's summary and where it is thin; raises FaqFormatError naming every problem
    (one a line), so an editor fixes them all in one go."""
    try:
        faq = load_faq(path)
    except FaqFormatError as first:
        raise FaqFormatError("\n".join(problems(path, first))) from first
    counts = Counter(len(entry.phrasings) for entry in faq.entries)
    thin = [entry for entry in faq.entries if len(entry.phrasings) < RELIABLE_PHRASINGS]
    lines = [
        (f"{path}: OK, {len(faq.entries)} entries, "
         f"{sum(len(entry.phrasings) for entry in faq.entries)} phrasings"),
        "phrasings per entry (question + alternates): "
        + ", ".join(f"{k}: {counts[k]} entries" for k in sorted(counts)),
    ]
    lines.append(_topics_line(faq))
    if not thin:
        lines.append(f"every entry has at least {RELIABLE_PHRASINGS} phrasings")
        return "\n".join(lines)
    lines.append(
        f"{len(thin)} entries have fewer than {RELIABLE_PHRASINGS} phrasings, the count from "
        "which answers become reliable; add alternates (other ways colleagues ask it) to:"
    )
    lines.extend(f"  {entry.id} ({len(entry.phrasings)}): {entry.question}" for entry in thin)
    return "\n".join(lines)


def _topics_line(faq: Faq) -> str:
    """Entries per topic in the file's order, so an editor sees the digest's headings."""
    counts = Counter(entry.topic for entry in faq.entries)
    named = ", ".join(f"{topic}: {counts[topic]}" for topic in counts if topic is not None)
    missing = counts[None]
    if not named:
        return "topics: none (questions are grouped under \"Other questions\" in the digest)"
    tail = f"; {missing} entries without a topic" if missing else ""
    return f"topics (entries): {named}{tail}"


def problems(path: Path, first: FaqFormatError) -> list[str]:
    """Every entry's problem when the file as a whole reads as YAML with an `entries` list;
    otherwise (unreadable, too big, not YAML, wrong shape) the one problem `first` found."""
    try:  # read as load_faq reads: only a regular file, bounded, aliases refused
        document = load_document(read_faq_text(path), str(path))
    except FaqFormatError:
        document = None
    raw_entries = document.get("entries") if isinstance(document, dict) else None
    if not isinstance(raw_entries, list):
        return [str(first)]
    found: list[str] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_entries, start=1):
        try:
            entry = parse_entry(raw, str(path), index)
        except FaqFormatError as problem:
            found.append(str(problem))
            continue
        if entry.id in seen:
            found.append(f"{path}: entry {index} ({entry.id}): duplicate id")
        seen.add(entry.id)
    # a whole-file limit (too many entries) comes first; an entry's problem is already listed
    return found if str(first) in found else [str(first), *found]


def match_lines(matcher: Matcher, lines: Iterable[str]) -> Iterator[str]:
    """One JSON object per non-blank input line, in input order."""
    for line in lines:
        text = line.strip()
        if not text:
            continue
        match = matcher.match(text)
        yield json.dumps(
            {
                "text": text,
                "entry_id": match.entry.id if match.entry else None,
                "score": round(match.score, 4),
            }
        )


def calibrate_report(
    faq_path: Path, queries_path: Path, test_path: Path | None, min_precision: float
) -> str:
    """Curve and recommended threshold on the dev questions, then how it does on test ones.

    Without a separate test file the queries file is split as the bot splits it (even lines
    dev, odd lines test), so the threshold shown is the one `matcher_for_file` would choose.
    """
    queries = load_labelled(queries_path)
    if test_path is None:
        dev, test = split_labelled(queries)
    else:
        dev, test = queries, load_labelled(test_path)
    matcher = build_matcher(load_faq(faq_path), threshold=math.inf)
    result = calibration_for(matcher, dev, min_precision)
    lines = [
        (
            f"dev: {len(dev)} questions ({sum(q.expected is None for q in dev)} must forward); "
            f"target precision {min_precision}"
        ),
        "threshold  precision  answered-correctly  answered",
        *(_row(p) for p in _thin(result.points, result.threshold)),
    ]
    if math.isinf(result.threshold):
        lines.append("recommended threshold: none reaches the target; the bot will answer nothing")
        return "\n".join(lines)
    lines.append(f"recommended threshold: {result.threshold:.4f}")
    if test:
        lines.append(_test_line(matcher, test, result))
    return "\n".join(lines)


def _row(point: CurvePoint) -> str:
    return (
        f"{point.threshold:9.4f}  {point.precision:9.3f}  {point.answer_rate:18.3f}"
        f"  {point.answered:8d}"
    )


def _thin(points: Sequence[CurvePoint], chosen: float) -> list[CurvePoint]:
    """About CURVE_ROWS evenly spaced rows of the curve plus the chosen one, to fit a screen."""
    step = max(1, len(points) // CURVE_ROWS)
    return [p for i, p in enumerate(points) if i % step == 0 or p.threshold == chosen]


def _test_line(matcher: Matcher, test: Sequence[LabelledQuery], result: Calibration) -> str:
    matches = matcher.match_many([q.text for q in test])
    answered = [(m, q) for m, q in zip(matches, test) if m.score >= result.threshold]
    correct = sum(1 for m, q in answered if m.candidates[0][0].id == q.expected)
    in_scope = sum(1 for q in test if q.expected is not None)
    precision = f"{correct / len(answered):.3f}" if answered else "n/a (nothing answered)"
    rate = f"{correct / in_scope:.3f}" if in_scope else "n/a"
    return (
        f"test: {len(test)} questions; precision of answers {precision}, "
        f"answerable questions answered correctly {rate}"
    )


async def bot_matcher(
    faq_path: Path, store: Store, threshold: float | None, min_precision: float
) -> Matcher:
    """The matcher the bot uses now: built from the file as app.py builds it, then everything
    the database has learned (`LiveMatcher.reload`: moderators' entries, confirmed phrasings,
    negatives), same threshold."""
    live = await asyncio.to_thread(
        live_matcher_for_file, faq_path, threshold=threshold, min_precision=min_precision
    )
    await live.reload(store)
    return live.current


async def suggest_report(
    faq_path: Path, store: Store, *, threshold: float | None = None, min_precision: float = 0.97
) -> str:
    """What `faq suggest` prints: alternates to add, new entries to write, entries rejected."""
    matcher = await bot_matcher(faq_path, store, threshold, min_precision)
    async with store.unit() as unit:
        uses = await unit.faq.uses()
    examples = [
        Example(
            ref=use.ref,
            text=use.text,
            answered_with=use.faq_entry_id,
            helpful=use.helpful,
            moderator_answer=use.moderator_answer,
            forwarded=use.status is not QuestionStatus.ANSWERED_FAQ,
        )
        for use in uses
    ]
    found = await asyncio.to_thread(suggest, matcher, examples)
    lines = [f"{len(examples)} questions with a verdict, a moderator's answer or a forward"]
    lines.append(f"\nAlternates to add to existing entries ({len(found.alternates)}):")
    for alt in found.alternates:
        lines.append(f"  {alt.entry_id} ({alt.entry_question})")
        lines.append(f"    + {alt.text}    [{', '.join(alt.refs)}: {alt.why}]")
    lines.append(f"\nNew entries suggested by forwarded questions ({len(found.new_entries)}):")
    for number, group in enumerate(found.new_entries, start=1):
        lines.append(f"  {number}. asked {len(group.questions)} times:")
        lines.extend(f"    {ref}: {text}" for ref, text in group.questions)
        answer = f"answer given: {group.answer}" if group.answer else "not answered yet"
        lines.append(f"    {answer}")
    if found.rejected:
        lines.append("\nFAQ answers colleagues said did not help (entry: times):")
        lines.extend(f"  {entry_id}: {count}" for entry_id, count in sorted(found.rejected.items()))
    return "\n".join(lines)


async def bot_faq(faq_path: Path, store: Store) -> Faq:
    """The bundled file's entries plus moderators' entries: every entry the bot answers with."""
    bundled = await asyncio.to_thread(load_faq, faq_path)
    async with store.unit() as unit:
        rows = await unit.faq.entries()
    return merged_faq(bundled, stored_entries(rows))


async def export_yaml(faq_path: Path, store: Store) -> str:
    """The bundled file's entries plus moderators' entries, with the questions moderators linked
    to an entry as its alternates, in the bundled format."""
    faq = await bot_faq(faq_path, store)
    async with store.unit() as unit:
        phrasings = await unit.faq.phrasings()
    return faq_yaml(with_phrasings(faq, phrasings))
