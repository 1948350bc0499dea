"""Hostile FAQ files: each one loads, or fails with a FaqFormatError naming the file and the
problem, so the bot refuses to start with a message an editor can act on (never a traceback)."""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from faq.store import ID_PATTERN, FaqFormatError, load_faq
from tests.faq.test_store import aliased_faq
from tests.hostile.support import JSON
from tests.support.process import ROOT, bot_process

FILE_NUMBERS = itertools.count(1)

ENTRY_VALUES = (
    JSON
    | st.sampled_from(["pay-day", "Pay Day", "", "  ", "a" * 81, "t" * 41, "x" * 5001, "2024-01-01", "!!python/none"])
    | st.lists(st.text(max_size=30) | JSON, max_size=4)
)
ENTRIES = st.lists(
    st.dictionaries(st.sampled_from(["id", "question", "alternates", "answer", "topic", "owner"]) | st.text(max_size=8),
                    ENTRY_VALUES, max_size=5)
    | JSON,
    max_size=5,
)
DOCUMENTS = (
    st.fixed_dictionaries({"entries": ENTRIES}).map(lambda doc: yaml.safe_dump(doc, allow_unicode=True))
    | JSON.map(lambda value: yaml.safe_dump(value))
)
TRICKS = st.sampled_from(
    [
        "entries: !!python/object/apply:os.system ['true']\n",
        "entries:\n  - &a {id: a, question: Q?, answer: A.}\n  - *a\n",
        "entries: *nowhere\n",
        "entries:\n  - {id: a, question: Q?, answer: A., <<: {owner: x}}\n",
        "? [complex, key]\n: value\n",
        "entries:\n\t- id: tab\n",
        "\ufeffentries: []\n",
        "%YAML 1.1\n---\nentries: []\n---\nentries: []\n",
    ]
)
NESTED = st.integers(min_value=1, max_value=20_000).map(lambda depth: "entries: " + "[" * depth + "]" * depth)
TEXTS = DOCUMENTS | TRICKS | NESTED | st.text(max_size=400)


def _check(path: Path) -> None:
    try:
        faq = load_faq(path)
    except FaqFormatError as error:
        message = str(error)
        assert message.startswith(f"{path}: ") and len(message) > len(f"{path}: "), message
        return
    ids = [entry.id for entry in faq.entries]
    assert ids and len(set(ids)) == len(ids)
    assert all(ID_PATTERN.match(entry_id) for entry_id in ids)
    assert all(entry.question and entry.answer for entry in faq.entries)


@given(text=TEXTS)
def test_any_faq_text_loads_or_is_refused_with_a_clear_message(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    directory = tmp_path_factory.mktemp("faq")
    path = directory / f"faq-{next(FILE_NUMBERS)}.yaml"
    path.write_text(text, encoding="utf-8")
    _check(path)


@given(data=st.binary(max_size=400))
def test_any_bytes_as_an_faq_file_are_refused_with_a_clear_message(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    directory = tmp_path_factory.mktemp("faq")
    path = directory / f"faq-{next(FILE_NUMBERS)}.yaml"
    path.write_bytes(data)
    _check(path)


def test_a_deeply_nested_file_is_refused_clearly(tmp_path: Path) -> None:
    """Found by the property above: PyYAML's recursion used to escape as RecursionError."""
    path = tmp_path / "faq.yaml"
    path.write_text("entries: " + "[" * 5000 + "]" * 5000, encoding="utf-8")
    with pytest.raises(FaqFormatError) as refused:
        load_faq(path)
    assert str(refused.value) == f"{path}: not an FAQ file: lists or mappings nested too deeply"


def _hostile_faq_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """FAQ paths an operator might give by mistake (or an attacker on purpose), and the problem
    each must be refused with."""
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    aliases = tmp_path / "aliases.yaml"
    aliases.write_text(aliased_faq(), encoding="utf-8")
    return {
        "fifo": (fifo, f"{fifo}: not a regular file (a FIFO)"),
        "aliases": (aliases, f"{aliases}: entry 2: YAML aliases are not allowed"),
    }


@pytest.mark.parametrize("case", ["fifo", "aliases"])  # /dev/zero: tests/faq/test_store.py
async def test_a_hostile_faq_file_stops_the_bot_at_once_naming_file_and_problem(tmp_path: Path, case: str) -> None:
    path, problem = _hostile_faq_files(tmp_path)[case]
    env = {"FAQ_PATH": str(path), "DATABASE_URL": f"sqlite:///{tmp_path}/bot.db"}
    async with bot_process(env) as process:
        output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    assert problem in output.decode()


@pytest.mark.parametrize("case", ["fifo", "aliases"])  # /dev/zero: tests/faq/test_store.py
def test_faq_check_refuses_a_hostile_file_at_once_naming_file_and_problem(tmp_path: Path, case: str) -> None:
    path, problem = _hostile_faq_files(tmp_path)[case]
    result = subprocess.run(
        [sys.executable, "cli.py", "faq", "check", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith(problem)
