"""Colleagues' words shown back to people: never a live link, never formatting they typed.

Teams turns Markdown and anything that looks like a web or mail address into live formatting
and links, in chat messages and in cards. `inert` is for Markdown messages (characters escaped,
as `handlers.markdown.md_inline` does for digests), `no_links` for text that is not Markdown
(Adaptive Card text runs): both break auto-linking with an invisible word joiner before the
dots, colons and at-signs of anything address-like, so the text reads exactly as typed.
"""

from __future__ import annotations

import re

from handlers.markdown import md_inline

WORD_JOINER = "\u2060"
# "https://", "www.example", "name@example", "example.org": a separator between word characters
# (after md_inline's escaping, a dot may be preceded by a backslash).
_LINKABLE = re.compile(r"(?<=[0-9A-Za-z])(\\?[.@]|:(?=//))(?=[0-9A-Za-z/])")
ELLIPSIS = "…"
ZERO_WIDTH_SPACE = "\u200b"
LONGEST_UNBROKEN = 24  # characters without a space: longer runs get a place to wrap
_UNBROKEN = re.compile(rf"\S{{{LONGEST_UNBROKEN}}}(?=\S)")


def no_links(text: str) -> str:
    """`text` as typed, with nothing a client would turn into a link."""
    return _LINKABLE.sub(lambda found: WORD_JOINER + found.group(1), text)


def wrappable(text: str) -> str:
    """`text` with an invisible break opportunity in every long run without spaces (a pasted
    address, a name typed without spaces), which a card would otherwise push past its edge."""
    return _UNBROKEN.sub(lambda found: found.group(0) + ZERO_WIDTH_SPACE, text)


def inert(text: str) -> str:
    """Colleague text as one line of Markdown that shows as typed: no formatting, no links."""
    return no_links(md_inline(text))


def cut(text: str, limit: int) -> str:
    """At most `limit` characters, ending with "…" if anything was cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + ELLIPSIS
