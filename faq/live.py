"""The FAQ the bot answers from: the bundled file plus the entries moderators added.

Moderators turn answered questions into FAQ entries from the moderation card; those live in the
database (`faq_entries`), so they survive restarts and need no file edit or redeploy. The matcher
is rebuilt with them at once, in a worker thread (building embeds the new phrasings and refits
the classifier: one to two seconds for a council-sized FAQ, far too long for the event loop), and
swapped in with one assignment, so questions being matched meanwhile use the previous matcher.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from faq.calibration import LabelledQuery, load_labelled, split_labelled
from faq.matcher import Match, Matcher, build_matcher, labelled_path
from faq.store import MAX_ID_CHARS, Faq, FaqEntry, load_faq
from faq.text import normalise

if TYPE_CHECKING:
    from store.faq_examples import StoredEntry
    from store.store import Store

log = logging.getLogger(__name__)

_SLUG_WORDS = 8
_WORD = re.compile(r"[a-z0-9]+")


def merged_faq(bundled: Faq, added: Iterable[FaqEntry]) -> Faq:
    """Bundled entries first, then added ones. An added entry whose id the file now has is
    skipped: after `faq export` the file carries it, and the file is what an editor reviewed."""
    known = {entry.id for entry in bundled.entries}
    extra = []
    for entry in added:
        if entry.id in known:
            continue
        known.add(entry.id)
        extra.append(entry)
    if not extra:
        return bundled
    return Faq(source=f"{bundled.source} + database", entries=(*bundled.entries, *extra))


def with_phrasings(faq: Faq, phrasings: Iterable[tuple[str, str]]) -> Faq:
    """Each confirmed phrasing (entry id, text) as one more alternate of its entry, unless the
    entry already has it; a phrasing of an entry the FAQ no longer has is left out."""
    extra: dict[str, list[str]] = {}
    for entry_id, text in phrasings:
        entry = faq.get(entry_id)
        if entry is None:
            continue
        known = {normalise(p) for p in (*entry.phrasings, *extra.get(entry_id, ()))}
        if normalise(text) not in known:
            extra.setdefault(entry_id, []).append(text)
    if not extra:
        return faq
    entries = tuple(
        dataclasses.replace(e, alternates=(*e.alternates, *extra[e.id])) if e.id in extra else e
        for e in faq.entries
    )
    return Faq(source=f"{faq.source} + confirmed phrasings", entries=entries)


def negative_pairs(negatives: Iterable[tuple[str, str]]) -> frozenset[tuple[str, str]]:
    """(entry id, normalised question) pairs, as `Matcher.negatives` looks them up."""
    return frozenset((entry_id, normalise(text)) for entry_id, text in negatives)


def stored_entries(rows: Iterable[StoredEntry]) -> list[FaqEntry]:
    return [FaqEntry(r.id, r.question, tuple(r.alternates), r.answer, r.topic) for r in rows]


def new_entry_id(question: str, taken: Iterable[str]) -> str:
    """A readable, unique slug from the question's first words: `how-do-i-book-a-desk`."""
    words = _WORD.findall(question.lower())[:_SLUG_WORDS] or ["entry"]
    base = "-".join(words)[: MAX_ID_CHARS - 6].strip("-") or "entry"
    used = set(taken)
    candidate, number = base, 2
    while candidate in used:
        candidate, number = f"{base}-{number}", number + 1
    return candidate


def faq_yaml(faq: Faq) -> str:
    """The FAQ in the bundled file's format (entries: id, topic, question, alternates, answer)."""
    entries = []
    for entry in faq.entries:
        item: dict[str, object] = {"id": entry.id}
        if entry.topic:
            item["topic"] = entry.topic
        item["question"] = entry.question
        if entry.alternates:
            item["alternates"] = list(entry.alternates)
        item["answer"] = entry.answer
        entries.append(item)
    header = (
        "# Colleague FAQ exported by `cli.py faq export`: the bundled file's entries plus those\n"
        "# moderators added from answered questions, and questions they linked to an entry as its\n"
        "# alternates. Format: see README \"FAQ matcher\".\n"
    )
    body = yaml.safe_dump(
        {"entries": entries},
        sort_keys=False,
        allow_unicode=True,
        width=100,
        default_flow_style=False,
    )
    return header + body


class LiveMatcher:
    """Answers like `Matcher`; `reload(store)` brings in what the database has learned:
    moderators' entries, questions linked to an entry, and "No" verdicts."""

    def __init__(
        self,
        bundled: Faq,
        *,
        threshold: float | None,
        min_precision: float,
        labelled: Sequence[LabelledQuery] | None,
    ) -> None:
        self.bundled = bundled
        self._threshold = threshold
        self._min_precision = min_precision
        self._labelled = labelled
        self.current: Matcher = self._build(bundled)
        self._lock = asyncio.Lock()

    @property
    def faq(self) -> Faq:
        return self.current.faq

    @property
    def threshold(self) -> float:
        return self.current.threshold

    def match(self, text: str) -> Match:
        return self.current.match(text)

    def match_many(self, texts: Sequence[str]) -> list[Match]:
        return self.current.match_many(texts)

    async def reload(self, store: Store) -> bool:
        """Rebuild with the database's entries, confirmed phrasings and negatives if they
        changed; True if the matcher changed."""
        async with self._lock:  # one rebuild at a time; the last one reads the newest rows
            async with store.unit() as unit:
                rows = await unit.faq.entries()
                phrasings = await unit.faq.phrasings()
                negatives = negative_pairs(await unit.faq.negatives())
            faq = with_phrasings(merged_faq(self.bundled, stored_entries(rows)), phrasings)
            if faq.entries == self.current.faq.entries:
                if negatives == self.current.negatives:
                    return False
                self.current.negatives = negatives  # same index: only the answers it refuses
                return True
            self.current = await asyncio.to_thread(self._build, faq, negatives)
            log.info("FAQ now has %d entries (%s)", len(faq.entries), faq.source)
            return True

    def _build(self, faq: Faq, negatives: frozenset[tuple[str, str]] = frozenset()) -> Matcher:
        bundled = {entry.id for entry in self.bundled.entries}
        matcher = build_matcher(
            faq,
            threshold=self._threshold,
            min_precision=self._min_precision,
            labelled=self._labelled,
            unlabelled_ids={entry.id for entry in faq.entries} - bundled,
        )
        matcher.negatives = negatives
        return matcher


def live_matcher_for_file(
    faq_path: Path, *, threshold: float | None, min_precision: float
) -> LiveMatcher:
    """Like `matcher_for_file`, but able to take in moderators' entries (call `reload`)."""
    labelled = None
    queries = labelled_path(faq_path)
    if threshold is None and queries.exists():
        labelled, _ = split_labelled(load_labelled(queries))
    return LiveMatcher(
        load_faq(faq_path), threshold=threshold, min_precision=min_precision, labelled=labelled
    )


async def reload_faq(matcher: object, store: Store) -> None:
    """After a moderator added an entry: rebuild the bot's matcher if it is a live one."""
    if isinstance(matcher, LiveMatcher):
        await matcher.reload(store)


def faq_ids(matcher: object) -> frozenset[str]:
    """Ids the bot's FAQ uses now, so a moderator's new entry gets an id of its own."""
    faq = getattr(matcher, "faq", None)
    return frozenset(e.id for e in faq.entries) if isinstance(faq, Faq) else frozenset()
