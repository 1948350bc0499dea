from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from faq.store import (
    MAX_ENTRIES,
    MAX_FILE_BYTES,
    MAX_TOPIC_CHARS,
    FaqFormatError,
    load_faq,
    parse_faq,
)
from tests.faq.conftest import BUNDLED_FAQ

GOOD_ENTRY = """
  - id: leave-carry-over
    question: Can I carry over unused annual leave?
    alternates: ["How many days of holiday can I roll over?"]
    answer: Up to five days with your manager's agreement.
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "faq.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_bundled_faq_is_valid_and_covers_the_council_topics() -> None:
    faq = load_faq(BUNDLED_FAQ)
    ids = {entry.id for entry in faq.entries}
    assert len(faq.entries) >= 30
    assert {"leave-carry-over", "payslip-access", "password-reset", "pension-lgps"} <= ids
    entry = faq.get("leave-carry-over")
    assert entry is not None and "five days" in entry.answer
    assert faq.get("no-such-entry") is None


def test_every_bundled_entry_has_a_short_topic() -> None:
    faq = load_faq(BUNDLED_FAQ)
    topics = {entry.topic for entry in faq.entries}
    assert None not in topics
    assert {"Pay", "Leave", "Buildings", "IT"} <= topics
    assert faq.get("payslip-access").topic == "Pay"  # type: ignore[union-attr]
    assert faq.get("password-reset").topic == "IT"  # type: ignore[union-attr]


def test_topic_is_optional_and_spelt_one_way(tmp_path: Path) -> None:
    """Spaces are collapsed, a blank topic is none, and topics differing only in case are one,
    spelt as first written, so the digest shows one heading for them."""
    faq = load_faq(write(tmp_path, (
        "entries:\n"
        "  - id: a\n    topic: '  Pensions   and\tbenefits '\n    question: Q?\n    answer: A.\n"
        "  - id: b\n    topic: pensions and BENEFITS\n    question: R?\n    answer: B.\n"
        "  - id: c\n    question: S?\n    answer: C.\n"
        "  - id: d\n    topic: '  '\n    question: T?\n    answer: D.\n"
    )))
    assert [entry.topic for entry in faq.entries] == [
        "Pensions and benefits", "Pensions and benefits", None, None]


def test_alternates_are_optional(tmp_path: Path) -> None:
    faq = load_faq(write(tmp_path, "entries:\n  - id: a\n    question: Q?\n    answer: A.\n"))
    assert faq.entries[0].alternates == ()
    assert faq.entries[0].phrasings == ("Q?",)


@pytest.mark.parametrize(
    ("body", "entry", "problem"),
    [
        (GOOD_ENTRY + GOOD_ENTRY, "entry 2 (leave-carry-over)", "duplicate id"),
        (
            GOOD_ENTRY + "  - id: no-answer\n    question: Why?\n",
            "entry 2 (no-answer)",
            "missing answer",
        ),
        (
            GOOD_ENTRY + "  - id: blank\n    question: '  '\n    answer: A.\n",
            "entry 2 (blank)",
            "empty question",
        ),
        (
            GOOD_ENTRY + "  - id: Bad_Slug\n    question: Q?\n    answer: A.\n",
            "entry 2 (Bad_Slug)",
            "slug",
        ),
        (
            GOOD_ENTRY + "  - id: extra\n    question: Q?\n    answer: A.\n    owner: HR\n",
            "entry 2 (extra)",
            "unknown key(s) owner",
        ),
        (
            GOOD_ENTRY + "  - id: alt\n    question: Q?\n    alternates: one\n    answer: A.\n",
            "entry 2 (alt)",
            "alternates must be a list",
        ),
        (
            GOOD_ENTRY + "  - id: num\n    question: 42\n    answer: A.\n",
            "entry 2 (num)",
            "question must be a string",
        ),
        (GOOD_ENTRY + "  - question: Q?\n    answer: A.\n", "entry 2", "missing id"),
        (GOOD_ENTRY + "  - just a string\n", "entry 2", "must be a mapping"),
        (
            GOOD_ENTRY + "  - id: long\n    question: Q?\n    answer: " + "x" * 6000 + "\n",
            "entry 2 (long)",
            "answer is longer than",
        ),
        (
            GOOD_ENTRY + "  - id: listed\n    topic: [Pay, Leave]\n    question: Q?\n    answer: A.\n",
            "entry 2 (listed)",
            "topic must be a string, not list",
        ),
        (
            GOOD_ENTRY + f"  - id: wordy\n    topic: {'Pay ' * (MAX_TOPIC_CHARS // 4 + 1)}\n"
            "    question: Q?\n    answer: A.\n",
            "entry 2 (wordy)",
            f"topic is longer than {MAX_TOPIC_CHARS} characters",
        ),
    ],
)
def test_broken_entry_names_file_entry_and_problem(
    tmp_path: Path, body: str, entry: str, problem: str
) -> None:
    path = write(tmp_path, "entries:" + body)
    with pytest.raises(FaqFormatError) as caught:
        load_faq(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {entry}: ")
    assert problem in message


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("entries: [unclosed\n", "not valid YAML"),
        ("- id: a\n", "top level must be a mapping"),
        ("entries: []\n", "non-empty list"),
        ("entries:" + GOOD_ENTRY + "extra: 1\n", "one key, 'entries'"),
    ],
)
def test_broken_file_names_file_and_problem(tmp_path: Path, text: str, problem: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(FaqFormatError, match=problem) as caught:
        load_faq(path)
    assert str(caught.value).startswith(f"{path}: ")


def test_too_large_file_is_refused_before_parsing(tmp_path: Path) -> None:
    path = write(tmp_path, "# " + "x" * MAX_FILE_BYTES + "\nentries:" + GOOD_ENTRY)
    with pytest.raises(FaqFormatError, match="limit"):
        load_faq(path)


def test_too_many_entries_is_refused() -> None:
    entries = "".join(
        f"  - id: e{i}\n    question: Q{i}?\n    answer: A.\n" for i in range(MAX_ENTRIES + 1)
    )
    with pytest.raises(FaqFormatError, match=f"limit is {MAX_ENTRIES}"):
        parse_faq("entries:\n" + entries, "big.yaml")


def test_missing_file_is_a_format_error(tmp_path: Path) -> None:
    with pytest.raises(FaqFormatError, match="cannot read file"):
        load_faq(tmp_path / "absent.yaml")


def aliased_faq(entries: int = 2000) -> str:
    """About 150 KB of YAML that, expanded, is `entries` entries of 50 long alternates each."""
    alternates = ", ".join(f'"Alternate wording {n}: {"x" * 400}"' for n in range(50))
    lines = ["entries:", "  - id: e1", "    question: Q1?", "    answer: A."]
    lines.append(f"    alternates: &alts [{alternates}]")
    lines += [
        f'  - {{id: e{n}, question: "Q{n}?", answer: A., alternates: *alts}}'
        for n in range(2, entries + 1)
    ]
    return "\n".join(lines) + "\n"


def test_yaml_aliases_are_refused_at_once_naming_the_entry(tmp_path: Path) -> None:
    path = write(tmp_path, aliased_faq())
    assert 140_000 < path.stat().st_size < 160_000
    started = time.perf_counter()
    with pytest.raises(FaqFormatError) as caught:
        load_faq(path)
    assert time.perf_counter() - started < 1
    assert str(caught.value) == (
        f"{path}: entry 2: YAML aliases are not allowed (*alts at line 6); "
        "write the text out in full"
    )


def test_a_merge_key_alias_is_refused_too(tmp_path: Path) -> None:
    text = "base: &base {answer: A.}\nentries:\n  - {id: a, question: 'Q?', <<: *base}\n"
    path = write(tmp_path, text)
    refusal = r"entry 1: YAML aliases are not allowed \(\*base at line 3\)"
    with pytest.raises(FaqFormatError, match=refusal):
        load_faq(path)


@pytest.mark.parametrize("kind", ["a FIFO", "a directory", "a character device"])
def test_only_a_regular_file_is_read_and_anything_else_is_refused_at_once(
    tmp_path: Path, kind: str
) -> None:
    """A FIFO used to block start-up until someone wrote to it, and /dev/zero to eat memory."""
    if kind == "a FIFO":
        path = tmp_path / "faq.yaml"
        os.mkfifo(path)
    else:
        path = tmp_path if kind == "a directory" else Path("/dev/zero")
    started = time.perf_counter()
    with pytest.raises(FaqFormatError) as caught:
        load_faq(path)
    assert time.perf_counter() - started < 1
    assert str(caught.value) == f"{path}: not a regular file ({kind}); give the path of a YAML file"


def test_a_symbolic_link_to_an_faq_file_is_followed(tmp_path: Path) -> None:
    link = tmp_path / "current.yaml"
    link.symlink_to(write(tmp_path, "entries:" + GOOD_ENTRY))
    assert load_faq(link).entries[0].id == "leave-carry-over"
