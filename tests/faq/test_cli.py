from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from cli import cli
from faq.commands import RELIABLE_PHRASINGS
from tests.faq.conftest import BUNDLED_FAQ, ROOT


def run_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAQ_")}
    return subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
        check=False,
    )


def test_faq_match_prints_one_json_line_per_question() -> None:
    result = run_cli(
        "faq",
        "match",
        "--faq",
        str(BUNDLED_FAQ),
        stdin="when is payday?\n\nhow do I renew my passport\n",
    )
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["text"] for row in rows] == ["when is payday?", "how do I renew my passport"]
    assert rows[0]["entry_id"] == "pay-date"
    assert rows[1]["entry_id"] is None
    assert all(isinstance(row["score"], float) for row in rows)


def test_faq_check_accepts_the_bundled_file() -> None:
    result = run_cli("faq", "check", str(BUNDLED_FAQ))
    assert result.returncode == 0
    assert "OK" in result.stdout and "entries" in result.stdout


def test_faq_check_rejects_a_broken_file_on_stderr(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("entries:\n  - id: a\n    question: Q?\n", encoding="utf-8")
    result = run_cli("faq", "check", str(path))
    assert result.returncode == 1
    assert result.stderr.strip() == f"{path}: entry 1 (a): missing answer"
    assert result.stdout == ""


def test_faq_match_threshold_option_overrides(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["faq", "match", "--faq", str(BUNDLED_FAQ), "--threshold", "2"],
        input="when is payday?\n",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["entry_id"] is None


def test_faq_calibrate_prints_curve_and_recommended_threshold() -> None:
    result = CliRunner().invoke(
        cli,
        [
            "faq",
            "calibrate",
            "--faq",
            str(BUNDLED_FAQ),
            "--queries",
            str(BUNDLED_FAQ.with_name("faq.queries.jsonl")),
            "--min-precision",
            "0.97",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "threshold  precision" in result.output
    assert "recommended threshold: " in result.output
    assert "test: " in result.output


def test_faq_check_reports_every_problem_in_one_run(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(
        "entries:\n"
        "  - id: a\n    question: Q?\n"  # no answer
        "  - id: b\n    question: When?\n    answer: Now.\n"
        "  - id: Bad Id\n    question: Why?\n    answer: Because.\n"
        "  - id: b\n    question: Again?\n    answer: Yes.\n",
        encoding="utf-8",
    )
    result = run_cli("faq", "check", str(path))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"{path}: entry 1 (a): missing answer",
        (f"{path}: entry 3 (Bad Id): id must be a slug of lower-case letters, digits and single"
         " hyphens"),
        f"{path}: entry 4 (b): duplicate id",
    ]
    assert result.stdout == ""


def test_faq_check_says_which_entries_need_more_phrasings(tmp_path: Path) -> None:
    path = tmp_path / "thin.yaml"
    path.write_text(
        "entries:\n"
        "  - id: pay-date\n    question: When is payday?\n    answer: The 15th.\n"
        "  - id: parking\n    question: Where can staff park?\n"
        "    alternates: ['Is there a staff car park?', 'How do I get a parking permit?',"
        " 'Can I park at County Hall?', 'Where do I leave my car?']\n"
        "    answer: At the Shire Hall car park.\n",
        encoding="utf-8",
    )
    result = run_cli("faq", "check", str(path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"{path}: OK, 2 entries, 6 phrasings"
    assert lines[1] == "phrasings per entry (question + alternates): 1: 1 entries, 5: 1 entries"
    assert lines[2] == 'topics: none (questions are grouped under "Other questions" in the digest)'
    assert f"1 entries have fewer than {RELIABLE_PHRASINGS} phrasings" in lines[3]
    assert lines[4:] == ["  pay-date (1): When is payday?"]


def test_faq_check_lists_topics_and_names_a_bad_one_among_other_problems(tmp_path: Path) -> None:
    path = tmp_path / "topics.yaml"
    path.write_text(
        "entries:\n"
        "  - id: pay-date\n    topic: Pay\n    question: When is payday?\n    answer: The 15th.\n"
        "  - id: parking\n    topic: {name: Buildings}\n    question: Where can I park?\n"
        "    answer: Shire Hall.\n"
        "  - id: vpn\n    topic: " + "IT and digital services " * 3 + "\n"
        "    question: How do I use the VPN?\n    answer: Open GlobalProtect.\n"
        "  - id: badge\n    question: I lost my badge\n",
        encoding="utf-8",
    )
    result = run_cli("faq", "check", str(path))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"{path}: entry 2 (parking): topic must be a string, not dict",
        f"{path}: entry 3 (vpn): topic is longer than 40 characters",
        f"{path}: entry 4 (badge): missing answer",
    ]
    path.write_text(
        "entries:\n"
        "  - id: pay-date\n    topic: Pay\n    question: When is payday?\n    answer: The 15th.\n"
        "  - id: pay-query\n    topic: ' pay'\n    question: My pay is wrong\n    answer: Ask.\n"
        "  - id: parking\n    question: Where can I park?\n    answer: Shire Hall.\n",
        encoding="utf-8",
    )
    result = run_cli("faq", "check", str(path))
    assert result.returncode == 0, result.stderr
    assert "topics (entries): Pay: 2; 1 entries without a topic" in result.stdout.splitlines()
