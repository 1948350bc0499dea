"""How often a question gets the right topic, by the floor on the nearest entry's confidence.

Run from the repository root: `.venv/bin/python bench/faq_topics.py`.

A question the FAQ answers takes its entry's topic; one it forwards takes the topic of its
nearest entry when the matcher's confidence in that entry reaches the floor
(`faq.matcher.TOPIC_FLOOR`), else none ("Other questions" in the digest). Measured on the
bundled FAQ's labelled questions (config/faq.queries.jsonl) with the matcher the bot builds:
a question with an expected entry should get that entry's topic; the near misses (expected
null) are labelled below by hand with the topic a reader would look for them under, or none
for questions that are not about working here (council tax, bins). The floor is chosen on the
even lines (dev) and reported on the odd ones (test), as the answer threshold is; "forwarded"
columns count only the questions the FAQ did not answer, the ones the floor decides and the
ones the digest publishes. These near misses were written to sit close to entries, so they
flatter low floors: questions unlike any entry ("Is the restructure going to affect my team?",
0.16 on IT's teams-help) sit just below 0.2.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from faq.calibration import LabelledQuery, load_labelled, split_labelled
from faq.matcher import TOPIC_FLOOR, Match, labelled_path, matcher_for_file

FAQ = ROOT / "config" / "faq.yaml"
FLOORS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
# The least share of topics given that must be right for a floor to be chosen.
MIN_RIGHT = 0.96

PAY, LEAVE, PENSIONS, BUILDINGS = "Pay", "Leave", "Pensions and benefits", "Buildings"
IT, LEARNING, POLICIES = "IT", "Learning and careers", "Policies"
# Near misses: the topics a reader would accept for each (empty: none fits, "Other questions").
NEAR_MISS_TOPICS: dict[str, frozenset[str]] = {
    text: frozenset(topics)
    for text, topics in {
        "when will teachers get their pay award": {PAY},
        "how do i join the teachers pension scheme": {PENSIONS},
        "nhs pension transfer into lgps": {PENSIONS},
        "when is the council tax due date": set(),
        "how do i claim universal credit": set(),
        "what is the pay scale for a grade 7 social worker": {PAY},
        "can i get an advance on my salary": {PAY},
        "how do i get a pay rise if i take on extra duties": {PAY},
        "when is the next job evaluation review": {PAY},
        "is there a bonus scheme": {PAY, PENSIONS},
        "can i take unpaid leave to look after my sick child": {LEAVE},
        "how much adoption leave do i get": {LEAVE},
        "can i have time off for jury service": {LEAVE},
        "is there leave for volunteering": {LEAVE},
        "can i take time off for my wedding": {LEAVE},
        "time off for reserve forces training": {LEAVE},
        "how do i request a career break": {LEAVE, LEARNING},
        "can i take study leave for my degree exam": {LEAVE, LEARNING},
        "my child's school is closed can i have emergency leave": {LEAVE},
        "carers leave for looking after my dad": {LEAVE},
        "how do i get access to mosaic": {IT},
        "the planning portal is down": {IT},
        "how do i reset my sap concur password": {IT},
        "my iphone email isnt syncing": {IT},
        "how do i get adobe acrobat pro installed": {IT},
        "can i use chatgpt for work": {IT, POLICIES},
        "how do i get access to the finance system": {IT},
        "how do i set up a shared mailbox": {IT},
        "my personal laptop has a virus": {IT},
        "how do i connect to wifi on the train": {IT},
        "is the canteen open": {BUILDINGS},
        "where is the nearest defibrillator": {BUILDINGS},
        "how do i book the council chamber for a wedding": {BUILDINGS},
        "is there a prayer room at county hall": {BUILDINGS},
        "can i bring my dog to the office": {BUILDINGS, POLICIES},
        "where are the showers": {BUILDINGS},
        "the toilets on floor 2 are broken": {BUILDINGS},
        "how do i report a pothole": set(),
        "how do i apply for a blue badge for my mum": set(),
        "when are the bins collected": set(),
        "what is the dress code": {POLICIES},
        "can i have a second job": {POLICIES},
        "what is the social media policy": {POLICIES},
        "can i claim for my broadband when working from home": {PAY, POLICIES},
        "do we get a christmas party": set(),
        "is there a staff discount at the leisure centre": {PENSIONS},
        "what is the car allowance for essential users": {PAY, PENSIONS},
        "how do i become a first aider": {LEARNING},
        "how do i get a reference for a mortgage": {PAY, POLICIES},
        "who is the chief executive": set(),
        "when is the next all staff event": set(),
        "can i record a teams meeting with a customer": {IT, POLICIES},
        "what is the probation period for new starters": {POLICIES, LEARNING},
        "how do i request a flexible working pattern like compressed hours": {POLICIES, LEAVE},
        "can i change my contracted hours": {POLICIES},
        "what happens at my appraisal": {LEARNING, POLICIES},
        "how do i report an accident at work": {POLICIES, BUILDINGS},
        "can i retire early on ill health grounds": {PENSIONS},
        "how is redundancy pay calculated": {PAY},
    }.items()
}


def accepted(query: LabelledQuery, topics: dict[str, str | None]) -> frozenset[str]:
    """The topics that are right for a labelled question: its entry's, or the hand label's."""
    if query.expected is not None:
        topic = topics.get(query.expected)
        return frozenset({topic} if topic else ())
    return NEAR_MISS_TOPICS[query.text]


def row(
    floor: float, queries: Sequence[LabelledQuery], matches: Sequence[Match],
    topics: dict[str, str | None],
) -> tuple[float, float, float, int]:
    """(share of given topics that are right, share of questions with the right topic or
    rightly none, share given a topic, number given) at this floor."""
    given = right = overall = 0
    for query, match in zip(queries, matches, strict=True):
        entry, confidence = match.candidates[0]
        topic = (match.entry or entry).topic if match.entry or confidence >= floor else None
        ok = accepted(query, topics)
        if topic is not None:
            given += 1
            right += topic in ok
            overall += topic in ok
        else:
            overall += not ok
    return (right / given if given else 1.0, overall / len(queries), given / len(queries), given)


def main() -> None:
    matcher = matcher_for_file(FAQ, threshold=None, min_precision=0.97)
    topics = {entry.id: entry.topic for entry in matcher.faq.entries}
    dev, test = split_labelled(load_labelled(labelled_path(FAQ)))
    halves = {"dev": dev, "test": test}
    scored = {name: matcher.match_many([q.text for q in half]) for name, half in halves.items()}
    print(f"{FAQ.relative_to(ROOT)}: answer threshold {matcher.threshold:.3f}; "
          f"dev {len(dev)}, test {len(test)} questions")
    print("Each cell: share of topics given that are right / share of questions with the right "
          "topic or rightly none / share given a topic")
    print("floor | dev: all           | dev: forwarded     | test: all          | test: forwarded")
    chosen = None
    for floor in FLOORS:
        cells = []
        for name, half in halves.items():
            forwarded = [(q, m) for q, m in zip(half, scored[name]) if m.entry is None]
            for queries, matches in (
                (half, scored[name]), ([q for q, _ in forwarded], [m for _, m in forwarded])
            ):
                precision, overall, share, _ = row(floor, queries, matches, topics)
                cells.append(f"{precision:.3f} {overall:.3f} {share:.3f}")
            if name == "dev" and chosen is None and row(floor, half, scored[name], topics)[0] >= MIN_RIGHT:
                chosen = floor
        print(f"{floor:5.2f} | " + " | ".join(cells))
    print(f"lowest floor at which {MIN_RIGHT} of dev topics given are right: {chosen}; "
          f"faq.matcher.TOPIC_FLOOR = {TOPIC_FLOOR}")


if __name__ == "__main__":
    main()
