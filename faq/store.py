"""Load and validate FAQ files (config/faq.yaml and any replacement an operator supplies).

A broken FAQ must stop the bot at start-up with a message an editor can act on, so every
problem names the file, the entry (index and id) and what is wrong.
"""

from __future__ import annotations

import dataclasses
import os
import re
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

MAX_FILE_BYTES = 1024 * 1024
MAX_ENTRIES = 2000
MAX_ALTERNATES = 50
MAX_ID_CHARS = 80
MAX_QUESTION_CHARS = 500
MAX_ANSWER_CHARS = 5000
# A topic is a heading in the digest and a word on the hosts' board: short, like "Pay" or
# "Pensions and benefits".
MAX_TOPIC_CHARS = 40
ID_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
ENTRY_KEYS = frozenset({"id", "question", "alternates", "answer", "topic"})


class FaqFormatError(ValueError):
    """The FAQ file breaks the format; the message names file, entry and problem."""


class _AliasRefused(yaml.YAMLError):
    """A YAML alias, with where it was: the entry (1-based) when inside one, and the line."""

    def __init__(self, anchor: str, entry: int | None, line: int) -> None:
        super().__init__(anchor)
        self.anchor, self.entry, self.line = anchor, entry, line


class _NoAliasLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing aliases (`*name`). One alias stands for a whole subtree,
    so a 150 KB file of them became 2,000 entries of 50 alternates each (36 s and 2.4 GB to
    load and index, in a security review). An FAQ written by people has no need of them."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._indexes: list[Any] = []  # the position of each node being composed, root first

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            entry = self._entry([*self._indexes, index])
            raise _AliasRefused(event.anchor, entry, event.start_mark.line + 1)
        self._indexes.append(index)
        try:
            return super().compose_node(parent, index)
        finally:
            self._indexes.pop()

    @staticmethod
    def _entry(indexes: list[Any]) -> int | None:
        """[document, key 'entries', n, ...] is inside entry n + 1."""
        in_entries = len(indexes) > 2 and isinstance(indexes[1], yaml.ScalarNode)
        return int(indexes[2]) + 1 if in_entries and indexes[1].value == "entries" else None


@dataclass(frozen=True)
class FaqEntry:
    id: str
    question: str
    alternates: tuple[str, ...]
    answer: str
    topic: str | None = None  # what the entry is about ("Pay"); questions answered by it take it

    @property
    def phrasings(self) -> tuple[str, ...]:
        """Every way the entry's question is worded, main question first."""
        return (self.question, *self.alternates)


@dataclass(frozen=True)
class Faq:
    source: str
    entries: tuple[FaqEntry, ...]
    _by_id: dict[str, FaqEntry] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {entry.id: entry for entry in self.entries})

    def get(self, entry_id: str) -> FaqEntry | None:
        return self._by_id.get(entry_id)


def load_faq(path: Path) -> Faq:
    """Read and validate an FAQ file."""
    return parse_faq(read_faq_text(path), str(path))


def read_faq_text(path: Path) -> str:
    """An FAQ file's text. Only a regular file, and no more of it than the limit:
    `/dev/zero` never ends and a FIFO blocks until someone writes to it, so either would hang
    start-up; a file can also grow between a size check and the read, so the read is bounded."""
    source = str(path)
    try:
        # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as exc:
        raise FaqFormatError(f"{source}: cannot read file ({exc.strerror})") from exc
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise FaqFormatError(
                f"{source}: not a regular file ({_file_kind(mode)}); give the path of a YAML file"
            )
        with os.fdopen(descriptor, "rb", closefd=False) as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise FaqFormatError(f"{source}: cannot read file ({exc.strerror})") from exc
    finally:
        os.close(descriptor)
    if len(data) > MAX_FILE_BYTES:
        raise FaqFormatError(f"{source}: file is larger than the {MAX_FILE_BYTES}-byte limit")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FaqFormatError(f"{source}: not UTF-8 text ({exc.reason})") from exc
    return text


def _file_kind(mode: int) -> str:
    kinds = {
        stat.S_ISDIR: "a directory",
        stat.S_ISFIFO: "a FIFO",
        stat.S_ISCHR: "a character device",
        stat.S_ISBLK: "a block device",
        stat.S_ISSOCK: "a socket",
    }
    return next((kind for test, kind in kinds.items() if test(mode)), "an unusual file")


def load_document(text: str, source: str) -> Any:
    """The FAQ text as YAML, aliases refused (a few kilobytes of them expand to gigabytes)."""
    try:
        document = yaml.load(text, Loader=_NoAliasLoader)  # a SafeLoader
    except _AliasRefused as exc:
        where = f"entry {exc.entry}: " if exc.entry else ""
        raise FaqFormatError(
            f"{source}: {where}YAML aliases are not allowed (*{exc.anchor} at line {exc.line}); "
            "write the text out in full"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None)
        detail = f": {problem}" if problem else ""
        raise FaqFormatError(f"{source}: not valid YAML{where}{detail}") from exc
    except RecursionError as exc:  # PyYAML recurses once per nesting level: "[[[[..." exhausts it
        raise FaqFormatError(f"{source}: not an FAQ file: lists or mappings nested too deeply") from exc
    return document


def parse_faq(text: str, source: str) -> Faq:
    """Parse FAQ YAML text; `source` is only used in error messages and `Faq.source`."""
    if len(text.encode("utf-8")) > MAX_FILE_BYTES:
        raise FaqFormatError(f"{source}: file is larger than the {MAX_FILE_BYTES}-byte limit")
    document = load_document(text, source)
    if not isinstance(document, dict) or set(document) != {"entries"}:
        raise FaqFormatError(f"{source}: the top level must be a mapping with one key, 'entries'")
    raw_entries = document["entries"]
    if not isinstance(raw_entries, list) or not raw_entries:
        raise FaqFormatError(f"{source}: 'entries' must be a non-empty list")
    if len(raw_entries) > MAX_ENTRIES:
        raise FaqFormatError(f"{source}: {len(raw_entries)} entries, the limit is {MAX_ENTRIES}")
    entries: list[FaqEntry] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_entries, start=1):
        entry = parse_entry(raw, source, index)
        if entry.id in seen:
            raise FaqFormatError(f"{source}: entry {index} ({entry.id}): duplicate id")
        seen.add(entry.id)
        entries.append(entry)
    return Faq(source=source, entries=same_topic_spelling(entries))


def same_topic_spelling(entries: Iterable[FaqEntry]) -> tuple[FaqEntry, ...]:
    """Topics that differ only in case ("pay", "Pay") are one topic, spelt as it first appears,
    so the digest does not show two headings for it."""
    spelling: dict[str, str] = {}
    kept = []
    for entry in entries:
        if entry.topic is not None:
            topic = spelling.setdefault(entry.topic.casefold(), entry.topic)
            entry = entry if topic == entry.topic else dataclasses.replace(entry, topic=topic)
        kept.append(entry)
    return tuple(kept)


def parse_entry(raw: Any, source: str, index: int) -> FaqEntry:
    if not isinstance(raw, dict):
        raise FaqFormatError(f"{source}: entry {index}: must be a mapping of id/question/answer")
    entry_id = raw.get("id")
    named = isinstance(entry_id, str) and entry_id
    label = f"entry {index} ({entry_id})" if named else f"entry {index}"

    def fail(problem: str) -> FaqFormatError:
        return FaqFormatError(f"{source}: {label}: {problem}")

    unknown = sorted(str(key) for key in raw if key not in ENTRY_KEYS)
    if unknown:
        raise fail(f"unknown key(s) {', '.join(unknown)}")
    entry_id = _text(raw, "id", MAX_ID_CHARS, fail)
    if not ID_PATTERN.match(entry_id):
        raise fail("id must be a slug of lower-case letters, digits and single hyphens")
    question = _text(raw, "question", MAX_QUESTION_CHARS, fail)
    answer = _text(raw, "answer", MAX_ANSWER_CHARS, fail)
    alternates_raw = raw.get("alternates", [])
    if alternates_raw is None:
        alternates_raw = []
    if not isinstance(alternates_raw, list):
        raise fail("alternates must be a list of strings")
    if len(alternates_raw) > MAX_ALTERNATES:
        raise fail(f"{len(alternates_raw)} alternates, the limit is {MAX_ALTERNATES}")
    alternates = []
    for number, alternate in enumerate(alternates_raw, start=1):
        if not isinstance(alternate, str) or not alternate.strip():
            raise fail(f"alternate {number} must be a non-empty string")
        if len(alternate) > MAX_QUESTION_CHARS:
            raise fail(f"alternate {number} is longer than {MAX_QUESTION_CHARS} characters")
        alternates.append(alternate.strip())
    topic = _topic(raw.get("topic"), fail)
    return FaqEntry(
        id=entry_id, question=question, alternates=tuple(alternates), answer=answer, topic=topic
    )


def _topic(value: Any, fail: Callable[[str], FaqFormatError]) -> str | None:
    """The optional topic, spaces collapsed ("Pensions  and benefits" is one topic); None when
    absent or blank."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise fail(f"topic must be a string, not {type(value).__name__}")
    topic = " ".join(value.split())
    if len(topic) > MAX_TOPIC_CHARS:
        raise fail(f"topic is longer than {MAX_TOPIC_CHARS} characters")
    return topic or None


def _text(raw: dict[str, Any], key: str, limit: int, fail: Callable[[str], FaqFormatError]) -> str:
    value = raw.get(key)
    if value is None:
        raise fail(f"missing {key}")
    if not isinstance(value, str):
        raise fail(f"{key} must be a string, not {type(value).__name__}")
    value = value.strip()
    if not value:
        raise fail(f"empty {key}")
    if len(value) > limit:
        raise fail(f"{key} is longer than {limit} characters")
    return value
