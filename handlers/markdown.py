"""Colleagues' text made inert in plain text and Markdown: shown as typed, never as formatting.

Used wherever user text reaches a message, a digest, a report or a chart title. Line breaks,
control characters and invisible formatting are normalised first (`text_lines`), then Markdown
is escaped (`md_inline`, `md_block`). `handlers.plain` builds on `md_inline` to also stop
clients from turning addresses into links.
"""

from __future__ import annotations

import html
import re
import unicodedata

_LINE_BREAKS = re.compile(r"\r\n|[\r\n\u2028\u2029\x0b\x0c\x85]")
# Characters that start Markdown inline constructs anywhere in a line: escapes, code,
# emphasis, links and images, tables, strikethrough.
_MD_INLINE = re.compile(r"([\\`*_\[\]()|~])")
# Constructs that only count at the start of a line: headings, lists, setext underlines.
_MD_LINE_START = re.compile(r"^([#+\-=])")
_MD_ORDERED = re.compile(r"^(\d+)([.)])")


def _visible(text: str) -> str:
    """Control characters become spaces; invisible formatting (bidi overrides, zero-width
    spaces) is dropped because it can hide or reorder what a reader sees. The zero-width
    joiner stays: emoji sequences need it."""
    kept = []
    for ch in text:
        category = unicodedata.category(ch)
        if category == "Cc":
            kept.append(" ")
        elif category != "Cf" or ch == "\u200d":
            kept.append(ch)
    return "".join(kept)


def text_lines(text: str) -> list[str]:
    """Split user text into trimmed visible lines, whatever line endings it used."""
    return [" ".join(_visible(line).split()) for line in _LINE_BREAKS.split(text)]


def paragraphs(text: str) -> list[list[str]]:
    """Blank lines separate paragraphs; other line breaks are kept inside a paragraph."""
    result: list[list[str]] = [[]]
    for line in text_lines(text):
        if line:
            result[-1].append(line)
        elif result[-1]:
            result.append([])
    return [para for para in result if para]


def plain_line(text: str) -> str:
    """One line of plain text: line breaks and control characters become spaces."""
    return " ".join(line for line in text_lines(text) if line)


def _md_escape_line(line: str) -> str:
    escaped = _MD_INLINE.sub(r"\\\1", html.escape(line, quote=False))
    return _MD_ORDERED.sub(r"\1\\\2", _MD_LINE_START.sub(r"\\\1", escaped))


def md_inline(text: str) -> str:
    """User text as one inert line of Markdown.

    Every character that could start a link, image, emphasis, code span or table is
    backslash-escaped, and `&`, `<` and `>` become entities because Markdown renderers pass
    raw HTML straight through. Bare http(s) URLs may still be auto-linked by GitHub-style
    renderers; they are shown as typed, never disguised.
    """
    return _md_escape_line(plain_line(text))


def md_block(text: str) -> str:
    """User text as inert Markdown paragraphs, single line breaks kept as hard breaks."""
    return "\n\n".join(
        "\\\n".join(_md_escape_line(line) for line in para) for para in paragraphs(text)
    )
