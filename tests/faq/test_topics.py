"""A question takes its topic from the FAQ: the entry that answered it, else its nearest entry
when that is close enough, else none; a moderator's link sets it too."""

from __future__ import annotations

from pathlib import Path

from domain.jobs import Triage
from faq.live import live_matcher_for_file
from faq.matcher import TOPIC_FLOOR
from handlers import triage
from store.records import QuestionStatus
from store.store import Store
from tests.faq.conftest import BUNDLED_FAQ
from tests.faq.test_learning import ask, make_deps

ANSWERED = "when do we get paid this month"  # pay-date, answered from the FAQ
NEAR = "is the canteen open"  # forwarded; nearest entry building-hours, well over the floor
UNLIKE = "when are the bins collected"  # forwarded; nothing in the FAQ is near it


async def test_each_question_takes_the_topic_of_its_answered_or_nearest_entry(
    store: Store, tmp_path: Path
) -> None:
    matcher = live_matcher_for_file(BUNDLED_FAQ, threshold=None, min_precision=0.97)
    await matcher.reload(store)
    assert matcher.match(NEAR).candidates[0][1] >= TOPIC_FLOOR > matcher.match(UNLIKE).candidates[0][1]
    ids = {text: await ask(store, text, text) for text in (ANSWERED, NEAR, UNLIKE)}
    await triage.triage(make_deps(store, matcher, tmp_path), [Triage(i) for i in ids.values()])

    async with store.unit() as unit:
        got = {text: await unit.questions.get(i) for text, i in ids.items()}
    assert {text: (q.status, q.topic) for text, q in got.items() if q is not None} == {
        ANSWERED: (QuestionStatus.ANSWERED_FAQ, "Pay"),
        NEAR: (QuestionStatus.FORWARDED, "Buildings"),
        UNLIKE: (QuestionStatus.FORWARDED, None),
    }
