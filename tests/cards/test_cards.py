"""Every card the bot sends is a valid Adaptive Card 1.5 (Microsoft's own JSON schema, shipped
here with its MIT licence), fits in a Teams message, keeps to Teams' width, and shows no
colleague's words as a link or formatting."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft6Validator

from bot.render import ADAPTIVE_CARD, TEAMS, message_bytes, render
from domain.jobs import ChatReply, UsedCard
from domain.replies import TYPES, EventPicker, Reply
from tests.cards.catalogue import CARDS, HOSTILE, STAFF_FACING, TEXTS, moderation
from tests.unit.test_job_payloads import ADDRESS

SCHEMA = json.loads((Path(__file__).parent / "adaptive-card-1.5.json").read_text(encoding="utf-8"))
VALIDATOR = Draft6Validator(SCHEMA)
TEAMS_MESSAGE_LIMIT = 28 * 1024  # Teams refuses a message over about 28 KB
MODERATOR_TOP_ACTIONS_MAX = 3


def _cards(name: str, channel_id: str | None) -> list[dict[str, Any]]:
    activity = render(CARDS[name], channel_id=channel_id)
    return [a.content for a in activity.attachments or [] if a.content_type == ADAPTIVE_CARD]


def _walk(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, list):
        return [found for item in node for found in _walk(item)]
    if isinstance(node, dict):
        return [node] + [found for value in node.values() for found in _walk(value)]
    return []


def test_every_message_type_is_in_the_catalogue() -> None:
    covered = {message.type for message in [*CARDS.values(), *TEXTS.values()]}
    assert covered == set(TYPES), "add the new message type to tests/cards/catalogue.py"


@pytest.mark.parametrize("channel_id", [TEAMS, None])
@pytest.mark.parametrize("name", sorted(CARDS))
def test_card_is_valid_against_the_adaptive_cards_1_5_schema(name: str, channel_id: str | None) -> None:
    cards = _cards(name, channel_id)
    assert cards
    for card in cards:
        card = dict(card)
        extension = card.pop(TEAMS, None)  # Teams' own key, which the official schema does not know
        assert extension in (None, {"width": "Full"})
        errors = sorted(VALIDATOR.iter_errors(card), key=lambda e: list(e.absolute_path))
        assert not errors, [f"{list(e.absolute_path)}: {e.message[:200]}" for e in errors[:5]]
        assert card["version"] == "1.5"


@pytest.mark.parametrize("name", sorted(CARDS) + sorted(TEXTS))
def test_every_message_stays_under_the_teams_size_limit(name: str) -> None:
    message = CARDS.get(name) or TEXTS[name]
    assert message_bytes(render(message, channel_id=TEAMS)) < TEAMS_MESSAGE_LIMIT


def test_long_texts_are_cut_with_an_ellipsis_and_a_note() -> None:
    dump = json.dumps(_cards("moderation-longest", TEAMS), ensure_ascii=False)
    assert "…" in dump and "Cut to fit the card" in dump
    answer = render(CARDS["answer-longest"], channel_id=TEAMS)
    assert "…" in answer.text and "cut to fit in Teams" in answer.text


@pytest.mark.parametrize("name", [n for n in sorted(CARDS) if n.startswith("moderation")])
def test_moderator_cards_have_at_most_three_buttons_and_forms_that_say_what_they_need(name: str) -> None:
    [card] = _cards(name, TEAMS)
    top = card.get("actions", [])
    assert len(top) <= MODERATOR_TOP_ACTIONS_MAX
    assert [a["title"] for a in top if a.get("style") == "positive"] in ([], ["Send answer"])
    assert card[TEAMS] == {"width": "Full"}
    for panel in (a for a in _walk(card["body"]) if a.get("type") == "Action.ShowCard"):
        inputs = [e for e in panel["card"]["body"] if e["type"].startswith("Input.")]
        assert inputs and all(e.get("label") for e in inputs), panel["title"]
        assert any(e.get("isRequired") for e in inputs), panel["title"]
    for claim in (a for a in top if a["title"] in ("Claim", "Release")):
        assert claim["associatedInputs"] == "none"  # claiming never asks for the answer box


def test_open_moderator_card_offers_send_claim_and_panels() -> None:
    [card] = _cards("moderation-waiting", TEAMS)
    assert [a["title"] for a in card["actions"]] == ["Send answer", "Claim"]
    panels = [[a["title"] for a in block["actions"]] for block in card["body"] if block["type"] == "ActionSet"]
    assert panels == [["Answer with FAQ entry", "Dismiss"], ["Duplicate", "Mark private"]]
    [claimed] = _cards("moderation-claimed", TEAMS)
    assert [a["title"] for a in claimed["actions"]] == ["Send answer", "Release"]


def test_answer_with_faq_entry_offers_the_nearest_entries_or_an_id_and_then_shows_the_entry() -> None:
    [card] = _cards("moderation-waiting", TEAMS)
    [panel] = [a for a in _walk(card) if a.get("title") == "Answer with FAQ entry"]
    [pick] = [e for e in panel["card"]["body"] if e["type"] == "Input.ChoiceSet"]
    values = [choice["value"] for choice in pick["choices"]]
    assert values == ["car-parking", "building-opening-hours", "x" * 80, "*"]  # "*": the id typed below
    assert [e["id"] for e in panel["card"]["body"]] == ["faq_entry", "faq_entry_id"]
    [submit] = panel["card"]["actions"]
    assert submit["data"] == {"action": "moderate", "op": "faq_link", "question_id": 7}
    # no entries to offer: the id is the one field, and it is required
    [bare] = _cards_of(moderation("claimed", faq_choices=[]))
    [panel] = [a for a in _walk(bare) if a.get("title") == "Answer with FAQ entry"]
    assert [(e["id"], e.get("isRequired")) for e in panel["card"]["body"]] == [("faq_entry_id", True)]
    for done in (moderation("forwarded", private=True), moderation("answered"),
                 moderation("forwarded", faq_link="car-parking")):
        assert "Answer with FAQ entry" not in json.dumps(_cards_of(done))
    shown = json.dumps(_cards("moderation-answered-with-faq-entry", TEAMS))
    assert "Answered with FAQ entry: " in shown and "car-parking" in shown
    assert "Add to FAQ" not in shown  # it is in the FAQ already
    assert "Linked to FAQ entry: " in json.dumps(_cards_of(moderation("answered", faq_link="car-parking")))


def _cards_of(message: Reply) -> list[dict[str, Any]]:
    return [a.content for a in render(message, channel_id=TEAMS).attachments or [] if a.content_type == ADAPTIVE_CARD]


def test_each_state_has_its_own_label_and_colour() -> None:
    seen = {}
    for name in ("moderation-waiting", "moderation-claimed", "moderation-answered", "moderation-dismissed",
                 "moderation-merged"):
        [card] = _cards(name, TEAMS)
        header = card["body"][0]
        [run] = header["items"][1]["inlines"]
        seen[name] = (header["style"], run["text"].split(" ")[0])
    assert len(set(seen.values())) == len(seen), seen


def _shown_text(activity: Any) -> tuple[list[str], list[str]]:
    """(Markdown a client formats, plain text it shows as is) of a rendered message. Input
    values are left out: an edit box shows text, never a link."""
    markdown, plain = [activity.text or ""], [activity.summary or ""]
    for node in _walk([a.content for a in activity.attachments or []]):
        kind = node.get("type")
        if kind == "TextBlock":
            markdown.append(node["text"])
        elif kind == "Fact":
            markdown += [node["title"], node["value"]]
        elif kind == "TextRun":
            plain.append(node["text"])
        elif kind is None and "title" in node and "value" in node:  # a choice: Markdown to some renderers
            markdown.append(node["title"])
        elif isinstance(kind, str) and kind.startswith("Action."):
            plain.append(node["title"])
    return markdown, plain


@pytest.mark.parametrize("name", sorted(CARDS) + sorted(TEXTS))
def test_no_colleague_text_becomes_a_link_or_formatting(name: str) -> None:
    markdown, plain = _shown_text(render(CARDS.get(name) or TEXTS[name], channel_id=TEAMS))
    for text in markdown + plain:  # nothing address-like is left for a client to link
        for live in ("https://evil", "www.evil", "hr@evil", "evil.example"):
            assert live not in text, (name, text)
    for text in markdown:  # and Markdown is escaped where it would be read
        for live in ("[Click here](", "**urgent**", "_see_"):
            assert live not in text, (name, text)
    if HOSTILE in json.dumps((CARDS.get(name) or TEXTS[name]).to_json()):
        assert any("Click here" in text for text in markdown + plain), name  # shown, as text


def test_used_cards_have_no_buttons_left() -> None:
    for name in ("faq-answer-used", "event-picker-used", "answer-feedback-used"):
        [card] = _cards(name, TEAMS)
        assert "actions" not in card and "Input." not in json.dumps(card)
        assert "✓ " in json.dumps(card, ensure_ascii=False)


def test_teams_buttons_are_universal_actions_with_a_submit_fallback() -> None:
    for name in CARDS:
        for action in (a for card in _cards(name, TEAMS) for a in _walk(card)
                       if a.get("type") == "Action.Execute"):
            assert action["fallback"]["type"] == "Action.Submit"
            assert action["fallback"]["data"] == action["data"]


def test_staff_cards_are_listed() -> None:
    assert STAFF_FACING <= set(CARDS)


def test_messages_stored_by_earlier_versions_still_render() -> None:
    """Outbox rows keep their message as the JSON it was queued as: an answer queued before
    answers had buttons, and the event picker's used form, render as they did."""
    answer = {"type": "answer", "ref": "Q-4", "question": "Is parking free?", "answer": "Yes, after 6pm.",
              "follow_up": False}
    sent = ChatReply.from_json({"address": ADDRESS, "reply_to_id": None, "message": answer})
    activity = render(sent.message, channel_id=TEAMS)
    assert "Yes, after 6pm." in activity.text and not activity.attachments
    chosen = "Noted: Q-9 is not about any of those events."
    used = UsedCard.from_json({"address": ADDRESS, "card_id": "1700000000000", "message": {
        "type": "event_choice", "question_id": 0, "question": "", "events": [], "chosen": chosen}})
    assert used.message == EventPicker(chosen=chosen)
    [attachment] = render(used.message, channel_id=TEAMS).attachments
    assert "✓ Noted: Q-9" in json.dumps(attachment.content, ensure_ascii=False) and "actions" not in attachment.content
