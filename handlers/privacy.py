"""What colleagues are told about their data, and where a question was asked, said in words.

`privacy_notice` is the two lines the welcome, `help` and the first reply to a new asker end
with; `asked_in` is how forward mails and moderators' cards say where a question was asked, in
the words its chat channel chose (Said.place): never a conversation or message id (a personal
chat's id never changes, so it would tie an anonymous question to its asker's named ones).
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from domain.replies import ReplyBase
from handlers.deps import Limits
from store.records import Question

R = TypeVar("R", bound=ReplyBase)

ASKED_IN = "askedIn"  # the words, kept in the question's stored address (see with_place)
UNSAID = "a chat with the bot"  # a question kept without an address, so without the words


def privacy_notice(limits: Limits, *, by_mail: bool = False) -> str:
    """Two lines: what is kept, for how long and who sees it; how to ask privately or
    anonymously (RETENTION_DAYS and DIGEST_NAMES from `limits`; `by_mail`: for a colleague who
    wrote to the shared mailbox, whose address the moderators always see)."""
    published = ("published digests name colleagues who asked openly" if limits.digest_names
                 else "published digests name nobody")
    kept = (f"**Your data:** I keep your question, name and work email so the answer can reach you, "
            f"and delete them {limits.retention_days} days after the question was last handled. "
            f"Moderators see your name; event hosts see the question and, unless you ask "
            f"anonymously, your name; {published}.")
    if by_mail:
        return (f"{kept}\n\n**Private or anonymous:** ask in Teams instead, typing **ask privately** "
                "or **ask anonymously** before your question: a mail always shows the moderators "
                "who sent it.")
    return (f"{kept}\n\n**Private or anonymous:** type **ask privately** before your question to keep "
            "it to the moderators (never on a board or published), or **ask anonymously** to keep "
            "your name from everyone; in a channel or group chat I then answer you in a personal chat.")


def with_notice(message: R, notice: str) -> R:
    """A reply message that ends with the privacy notice (bot.render adds it to text or card)."""
    return dataclasses.replace(message, privacy=notice)


def asked_in(question: Question) -> str:
    """Where `question` was asked, in words."""
    if question.source == "mail":
        return "a mail to the shared mailbox"
    words = (question.address or {}).get(ASKED_IN)
    return words if isinstance(words, str) and words else UNSAID


def with_place(address: dict[str, Any], words: str) -> dict[str, Any]:
    """The address to store with a question: where to reply, and where it was asked in words."""
    return {**address, ASKED_IN: words}
