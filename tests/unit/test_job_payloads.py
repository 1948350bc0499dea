"""Outbox job payloads: rows queued by earlier versions still read, every kind has its function,
and a payload this version cannot read fails its job for good, saying why."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

import outbox.jobs
from domain.jobs import (
    KINDS,
    BoardRefresh,
    ChatReply,
    ForwardMail,
    JobPayload,
    NearMiss,
    PayloadError,
    Triage,
)
from errors import Permanent
from handlers.jobs import job_runners
from outbox.jobs import job, runners
from outbox.worker import batched, rerunnable

ADDRESS = {"channelId": "msteams", "serviceUrl": "https://smba.example/", "user": {"id": "29:jo"},
           "bot": {"id": "28:bot"}, "conversation": {"id": "a:jo", "conversationType": "personal"}}
MESSAGE = {"type": "forwarded", "ref": "Q-3"}

#: Payloads exactly as the version before typed payloads wrote them (json.dumps of its dicts).
STORED = [
    ("question.triage", '{"question_id": 3}'),  # a mail question, from the inbox
    ("question.triage", '{"question_id": 3, "new_asker": true}'),
    ("mail.forward", ('{"question_id": 3, "near_misses": [{"id": "parking", "question": "Where can I park?", '
                      '"score": 0.512}]}')),
    ("mail.forward", '{"question_id": 3, "near_misses": [], "faq_rejected": "parking"}'),
    ("mail.forward", '{"question_id": 3}'),
    ("mail.reply", json.dumps({"question_id": 3, "message": MESSAGE, "key": "reply:3:forwarded"})),
    ("mail.follow_up", '{"question_id": 3, "text": "Any news?", "key": "follow-up:ab12"}'),
    ("mail.teams_answer", '{"question_id": 3, "answer_id": 7}'),
    ("mail.faq_link_refused", json.dumps({"question_id": 3, "to": "mo@council.example", "text": "no entry",
                                          "key": "faq-link-refused:ab12", "in_reply_to": "<r1@council.example>"})),
    ("teams.send", json.dumps({"address": ADDRESS, "reply_to_id": None, "message": MESSAGE})),
    ("teams.send", json.dumps({"address": ADDRESS, "reply_to_id": "1700000000000", "message": MESSAGE,
                               "personal": True})),
    ("moderation.card", '{"question_id": 3, "first": true}'),
    ("moderation.card", '{"question_id": 3}'),
    ("moderation.page", '{"question_ids": [1, 2, 5]}'),
    ("faq.rebuild", '{"question_id": 3}'),
    ("board.refresh", '{"event_id": 1}'),
    ("board.refresh", '{"event_id": 1, "first": true}'),
    ("card.used", json.dumps({"address": ADDRESS, "card_id": "1700000000009", "message": {"type": "feedback_thanks"}})),
]


@pytest.mark.parametrize(("kind", "stored"), STORED)
def test_a_payload_stored_by_the_earlier_version_reads_and_writes_back_the_same(kind: str, stored: str) -> None:
    raw = json.loads(stored)
    payload = KINDS[kind].from_json(raw)
    written = json.loads(json.dumps(payload.to_json()))
    assert {key: written[key] for key in raw} == raw  # new keys only where it had none: their defaults
    assert KINDS[kind].from_json(written) == payload


def test_stored_fields_become_typed_values() -> None:
    forward = ForwardMail.from_json(json.loads(STORED[2][1]))
    assert forward.near_misses == (NearMiss("parking", "Where can I park?", 0.512),)
    assert Triage.from_json({"question_id": 3}).new_asker is None
    assert ChatReply.from_json({"address": ADDRESS, "message": MESSAGE}).personal is False
    assert KINDS["moderation.page"].from_json({"question_ids": [1, 2]}).to_json() == {"question_ids": [1, 2]}


def test_every_kind_is_covered_by_a_stored_example() -> None:
    assert {kind for kind, _ in STORED} == set(KINDS)


def test_a_key_the_payload_does_not_have_is_an_error_naming_it() -> None:
    with pytest.raises(PayloadError, match="board.refresh payload: unknown keys event, urgent"):
        BoardRefresh.from_json({"event": 1, "urgent": True})
    with pytest.raises(PayloadError, match="board.refresh payload"):
        BoardRefresh.from_json({})


async def test_a_job_whose_payload_cannot_be_read_fails_for_good_naming_the_key() -> None:
    run = job_runners(None)  # type: ignore[arg-type]  # the payload is read before anything is used
    refresh = run[BoardRefresh.kind]
    assert callable(refresh)
    with pytest.raises(Permanent, match="unknown keys event_ref"):
        await refresh({"event_ref": "E-1"})  # type: ignore[operator]


def test_every_kind_has_its_function_and_how_it_runs() -> None:
    run = job_runners(None)  # type: ignore[arg-type]
    assert set(run) == set(KINDS)
    assert isinstance(run["question.triage"], batched)
    assert isinstance(run["mail.forward"], rerunnable)
    assert not isinstance(run["teams.send"], batched | rerunnable)  # not idempotent: recorded at once


def test_a_kind_without_a_function_stops_the_start_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    @dataclass(frozen=True)
    class Withdraw(JobPayload):
        kind: ClassVar[str] = "question.withdraw"
        question_id: int

    monkeypatch.setattr(outbox.jobs, "KINDS", {**KINDS, Withdraw.kind: Withdraw})
    with pytest.raises(LookupError, match="no function registered .*: question.withdraw"):
        runners(None)


def test_a_kind_registered_twice_is_refused() -> None:
    async def again(deps: Any, payload: Triage) -> None:
        pass

    with pytest.raises(TypeError, match="'board.refresh' is registered twice"):
        job(BoardRefresh)(again)  # type: ignore[arg-type]
