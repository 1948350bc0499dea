"""Every reply that can reach a mail asker (domain.replies.ToAsker) has its own words in both
mail templates: a kind added to ToAsker without them fails here, not in a colleague's inbox."""

from __future__ import annotations

import re
import typing
from types import SimpleNamespace

import pytest

from domain.replies import ToAsker
from handlers.templating import templates
from tests.cards.catalogue import CARDS, TEXTS

EXAMPLES = {message.type: message for message in [*CARDS.values(), *TEXTS.values()]}
QUESTION = SimpleNamespace(text="Is the car park open on Saturdays?")


def _words(template: str, message: object) -> str:
    """What the mail says before it quotes the question, tags and spaces stripped."""
    body = templates.get_template(template).render({"q": QUESTION, "m": message})
    return " ".join(re.sub(r"<[^>]+>", " ", body.split("Your question:")[0]).split())


@pytest.mark.parametrize("kind", [kind.type for kind in typing.get_args(ToAsker)])
@pytest.mark.parametrize("template", ["mail_reply.txt.j2", "mail_reply.html.j2"])
def test_each_reply_a_mail_asker_can_get_has_its_own_words(kind: str, template: str) -> None:
    words = _words(template, EXAMPLES[kind])
    assert words, f"{template} says nothing for {kind}"
    others = {other.type: _words(template, EXAMPLES[other.type]) for other in typing.get_args(ToAsker)}
    assert list(others.values()).count(words) == 1, f"{template} words {kind} as another kind"

