"""What every hostile-input test checks: the database as a whole, before and after one input."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from sqlalchemy import func, select

from store.schema import (
    answers,
    audit_log,
    events,
    faq_feedback,
    inbound_mail,
    outbox,
    people,
    question_support,
    questions,
    roles,
)
from store.store import Store

TABLES = (questions, answers, faq_feedback, question_support, inbound_mail, outbox, people, roles, events, audit_log)


async def row_counts(store: Store) -> dict[str, int]:
    async with store.engine.connect() as conn:
        return {
            table.name: (await conn.execute(select(func.count()).select_from(table))).scalar_one()
            for table in TABLES
        }


async def question_states(store: Store) -> list[tuple[Any, ...]]:
    """What a colleague or moderator would see change: each question's state and counters."""
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            select(questions.c.id, questions.c.status, questions.c.support, questions.c.claimed_by,
                   questions.c.acted_by).order_by(questions.c.id)
        )
        return [tuple(row) for row in rows]


#: Any JSON value, hostile ones included: deep-ish nesting, odd numbers, control characters.
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)

#: Integers at and past the database's column limits, where ids are read from input.
EDGE_INTS = st.sampled_from([0, -1, 1, 2**31 - 1, 2**31, 2**63 - 1, 2**63, 2**64, 10**30]) | st.integers()
