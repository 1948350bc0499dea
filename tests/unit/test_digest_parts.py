"""A long digest posted in Teams arrives whole, in parts that each fit in one message."""

from __future__ import annotations

from handlers.digest import TEAMS_PART_CHARS, _parts


def test_a_long_digest_is_split_between_paragraphs_and_nothing_is_lost() -> None:
    paragraphs = [f"**Question {n}**\n\n{'An answer sentence. ' * 40}" for n in range(120)]
    text = "# Questions from All-staff briefing\n\n" + "\n\n".join(paragraphs)
    parts = list(_parts(text, TEAMS_PART_CHARS))
    assert len(parts) > 1
    assert all(len(part) <= TEAMS_PART_CHARS for part in parts)
    assert "\n\n".join(parts) == text
    assert all(not part.startswith("\n") for part in parts)


def test_a_short_digest_is_one_message() -> None:
    text = "# Questions from Briefing\n\nNo questions have been answered yet.\n"
    assert list(_parts(text, TEAMS_PART_CHARS)) == [text]
