"""Turn what happened to colleagues' questions into suggested FAQ changes (`cli.py faq suggest`).

Labels come from use, not from an editor:
- "Yes" on an FAQ answer: the question is a phrasing of that entry;
- "No, send it to the team": it is not a phrasing of that entry;
- a moderator's answer to a forwarded question: if it says what an entry's answer says, the
  question is a phrasing of that entry the matcher missed (an alternate to add); if it matches
  no entry, the FAQ lacks one. Forwarded questions with no entry are grouped by meaning, and a
  group asked more than once is a suggested new entry.
Nothing is changed: an editor reads the suggestions and edits the FAQ (or uses "add to FAQ").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from faq.embedding import get_encoder
from faq.matcher import Matcher
from faq.text import normalise

# Cosine between a moderator's answer and an entry's answer above which they say the same thing.
SAME_ANSWER = 0.8
# Cosine between a question and an entry's phrasing above which it adds nothing as an alternate.
ALREADY_PHRASED = 0.95
# Cosine to a group's first question above which another forwarded question joins the group.
SAME_QUESTION = 0.65
MIN_GROUP = 2


@dataclass(frozen=True)
class Example:
    """One question the bot saw and what people said about it (see store.faq_examples.Use)."""

    ref: str
    text: str
    answered_with: str | None  # entry id the bot answered with
    helpful: bool | None  # asker's verdict on that answer
    moderator_answer: str | None
    forwarded: bool  # went to the moderators (directly, or after "No")


@dataclass(frozen=True)
class Alternate:
    entry_id: str
    entry_question: str
    text: str
    refs: tuple[str, ...]
    why: str


@dataclass(frozen=True)
class NewEntry:
    questions: tuple[tuple[str, str], ...]  # (ref, text), first one is the group's seed
    answer: str | None  # a moderator's answer to one of them, if any


@dataclass(frozen=True)
class Suggestions:
    alternates: list[Alternate] = field(default_factory=list)
    new_entries: list[NewEntry] = field(default_factory=list)
    rejected: dict[str, int] = field(default_factory=dict)  # entry id -> "No" count


def suggest(matcher: Matcher, examples: Sequence[Example]) -> Suggestions:
    """Alternates for existing entries and groups of forwarded questions that need an entry."""
    faq = matcher.faq
    encoder = get_encoder()
    entry_answers = encoder.encode_cached([normalise(e.answer) for e in faq.entries])
    current = matcher.match_many([e.text for e in examples]) if examples else []
    alternates: dict[tuple[str, str], Alternate] = {}
    unmatched: list[Example] = []
    rejected: dict[str, int] = {}
    for example, now in zip(examples, current):
        label: str | None
        if example.helpful is False and example.answered_with:
            rejected[example.answered_with] = rejected.get(example.answered_with, 0) + 1
        if example.helpful is True and example.answered_with and faq.get(example.answered_with):
            label, why = example.answered_with, "asker said the FAQ answer helped"
        elif example.forwarded and example.moderator_answer:
            label = _entry_answered_by(
                example.moderator_answer, entry_answers, matcher, exclude=example.answered_with
            )
            why = "a moderator answered it with this entry's answer"
        else:
            label, why = None, ""
        if label is None:
            if example.forwarded and now.entry is None:
                unmatched.append(example)
            continue
        if now.entry is not None and now.entry.id == label:
            continue  # today's FAQ answers it correctly already (most "Yes" verdicts)
        entry = faq.get(label)
        assert entry is not None
        if _already_phrased(example.text, entry.phrasings):
            continue
        key = (label, normalise(example.text))
        found = alternates.get(key)
        refs = (*found.refs, example.ref) if found else (example.ref,)
        alternates[key] = Alternate(label, entry.question, example.text, refs, why)
    return Suggestions(
        alternates=sorted(alternates.values(), key=lambda a: (a.entry_id, a.refs[0])),
        new_entries=_groups(unmatched),
        rejected=rejected,
    )


def _entry_answered_by(
    answer: str, entry_answers: np.ndarray, matcher: Matcher, *, exclude: str | None
) -> str | None:
    """The entry whose answer says what the moderator said, if one clearly does."""
    if not len(entry_answers):
        return None
    vector = get_encoder().encode([normalise(answer)])[0]
    similarity = entry_answers @ vector
    best = int(np.argmax(similarity))
    entry = matcher.faq.entries[best]
    if similarity[best] < SAME_ANSWER or entry.id == exclude:
        return None
    return entry.id


def _already_phrased(text: str, phrasings: Sequence[str]) -> bool:
    encoder = get_encoder()
    known = encoder.encode_cached([normalise(p) for p in phrasings])
    return bool((known @ encoder.encode([normalise(text)])[0]).max() >= ALREADY_PHRASED)


def _groups(examples: Sequence[Example]) -> list[NewEntry]:
    """Greedy grouping by meaning, oldest question first; groups of MIN_GROUP or more, largest
    first. Greedy is enough here: a few hundred forwarded questions, read by a person."""
    if not examples:
        return []
    vectors = get_encoder().encode([normalise(e.text) for e in examples])
    groups: list[list[int]] = []
    seeds: list[int] = []
    for i in range(len(examples)):
        if seeds:
            similarity = vectors[seeds] @ vectors[i]
            best = int(np.argmax(similarity))
            if similarity[best] >= SAME_QUESTION:
                groups[best].append(i)
                continue
        seeds.append(i)
        groups.append([i])
    result = []
    for members in sorted(groups, key=len, reverse=True):
        if len(members) < MIN_GROUP:
            continue
        answer = next(
            (examples[i].moderator_answer for i in members if examples[i].moderator_answer), None
        )
        result.append(
            NewEntry(tuple((examples[i].ref, examples[i].text) for i in members), answer)
        )
    return result
