from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest

from faq.calibration import LabelledQuery, calibrate, confidence_model, load_labelled
from faq.live import faq_yaml
from faq.matcher import Matcher, build_matcher, matcher_for_file
from faq.store import Faq, load_faq
from tests.faq.conftest import BUNDLED_FAQ

PARKING_FAQ = """entries:
  - id: staff-parking
    question: How do I get a staff parking permit?
    alternates: ["Where can staff park at County Hall?"]
    answer: Apply on the Facilities page.
  - id: password-reset
    question: How do I reset my password?
    alternates: [I have forgotten my password.]
    answer: Use the self-service reset link.
"""
CANTEEN_FAQ = PARKING_FAQ.replace(
    """  - id: staff-parking
    question: How do I get a staff parking permit?
    alternates: ["Where can staff park at County Hall?"]
    answer: Apply on the Facilities page.
""",
    """  - id: canteen-hours
    question: When is the staff canteen open?
    alternates: ["What time does the canteen serve lunch?"]
    answer: The canteen is open 8am to 2pm.
""",
)


@pytest.mark.parametrize(
    ("question", "entry_id"),
    [
        ("how many days of leave can I carry over", "leave-carry-over"),
        ("where do I find my payslip online", "payslip-access"),
        ("I've forgotten my password and I'm locked out", "password-reset"),
        ("how do I report a scam email I received", "phishing-reporting"),
        ("how much do I pay into the LGPS pension", "pension-lgps"),
    ],
)
def test_paraphrase_of_bundled_entry_is_answered_with_it(
    bundled_matcher: Matcher, question: str, entry_id: str
) -> None:
    match = bundled_matcher.match(question)
    assert match.entry is not None and match.entry.id == entry_id
    assert match.score >= bundled_matcher.threshold


@pytest.mark.parametrize(
    "question",
    [
        "how do I join the teachers' pension scheme",  # a different pension scheme
        "can I have time off for jury service",  # leave for a reason the FAQ does not cover
        "how do I get access to the Mosaic case management system",  # system not in the FAQ
        "what is the recipe for the canteen lasagne",
    ],
)
def test_near_miss_is_forwarded_not_answered(bundled_matcher: Matcher, question: str) -> None:
    match = bundled_matcher.match(question)
    assert match.entry is None
    assert match.candidates  # moderators still see the nearest entries
    assert match.score < bundled_matcher.threshold


def test_bundled_threshold_comes_from_its_labelled_questions(bundled_matcher: Matcher) -> None:
    assert bundled_matcher.threshold_source.startswith("calibrated")
    assert 0 < bundled_matcher.threshold < 1


def test_match_many_gives_the_same_results_as_match(bundled_matcher: Matcher) -> None:
    questions = ["when is payday", "how do I book a desk", "is the canteen open on Sundays"]
    batched = bundled_matcher.match_many(questions)
    single = [bundled_matcher.match(q) for q in questions]
    assert [m.entry for m in batched] == [m.entry for m in single]
    assert [m.candidates[0][0] for m in batched] == [m.candidates[0][0] for m in single]
    assert [m.score for m in batched] == pytest.approx([m.score for m in single], abs=1e-4)
    for match in batched:
        scores = [score for _, score in match.candidates]
        assert scores == sorted(scores, reverse=True) and scores[0] == match.score


def test_changed_faq_file_changes_answers(tmp_path: Path) -> None:
    path = tmp_path / "faq.yaml"
    path.write_text(PARKING_FAQ, encoding="utf-8")
    before = matcher_for_file(path, threshold=None, min_precision=0.97)
    parking = before.match("how can I get a parking permit for staff")
    assert parking.entry is not None and parking.entry.id == "staff-parking"

    path.write_text(CANTEEN_FAQ, encoding="utf-8")
    after = matcher_for_file(path, threshold=None, min_precision=0.97)
    assert after.match("how can I get a parking permit for staff").entry is None
    canteen = after.match("what time does the staff canteen open")
    assert canteen.entry is not None and canteen.entry.id == "canteen-hours"


def test_explicit_threshold_wins_over_calibration(tmp_path: Path) -> None:
    faq_path = tmp_path / "faq.yaml"
    faq_path.write_text(PARKING_FAQ, encoding="utf-8")
    never = build_matcher(load_faq(faq_path), threshold=1.01)
    assert never.match("how do I reset my password").entry is None
    always = matcher_for_file(faq_path, threshold=0.0, min_precision=0.97)
    assert always.match("anything at all").entry is not None


def test_sibling_queries_file_calibrates_and_stale_ids_count_as_forward(tmp_path: Path) -> None:
    faq_path = tmp_path / "staff.yaml"
    faq_path.write_text(PARKING_FAQ, encoding="utf-8")
    lines = [
        '{"text": "forgot my password", "expected": "password-reset"}',
        '{"text": "ignored: odd lines are the test half", "expected": null}',
        '{"text": "where do I park my car", "expected": "staff-parking"}',
        '{"text": "x", "expected": null}',
        '{"text": "when is the canteen open", "expected": "removed-entry"}',
    ]
    (tmp_path / "staff.queries.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    matcher = matcher_for_file(faq_path, threshold=None, min_precision=0.97)
    assert matcher.threshold_source.startswith("calibrated on 3 labelled questions")
    assert matcher.match("when is the canteen open").entry is None


def test_faq_without_labelled_questions_uses_the_default_rule(tmp_path: Path) -> None:
    faq_path = tmp_path / "faq.yaml"
    faq_path.write_text(PARKING_FAQ, encoding="utf-8")
    matcher = matcher_for_file(faq_path, threshold=None, min_precision=0.97)
    assert matcher.threshold_source.startswith("default")


def test_single_entry_faq_still_matches(tmp_path: Path) -> None:
    path = tmp_path / "one.yaml"
    path.write_text("entries:\n  - id: only\n    question: When is payday?\n    answer: 15th.\n")
    matcher = build_matcher(load_faq(path))
    assert matcher.match("what day is payday").entry is not None
    assert matcher.match("how do I renew my passport").entry is None


def test_calibration_picks_most_correct_answers_at_target_precision() -> None:
    scores = [0.9, 0.8, 0.7, 0.6, 0.5]
    correct = [True, True, False, True, True]
    oos = [False, False, False, False, False]
    assert calibrate(scores, correct, oos, min_precision=0.75).threshold == 0.5
    assert calibrate(scores, correct, oos, min_precision=0.99).threshold == 0.8
    assert math.isinf(calibrate([0.9], [False], [True], min_precision=0.5).threshold)


def test_calibration_weights_rare_out_of_scope_questions_up() -> None:
    # 19 answerable questions right, 1 must-forward question scoring in between
    scores = [1.0 - i / 100 for i in range(20)]
    oos = [i == 10 for i in range(20)]
    correct = [not o for o in oos]
    plain = calibrate(scores, correct, oos, min_precision=0.9, oos_share=0.0)
    weighted = calibrate(scores, correct, oos, min_precision=0.9, oos_share=0.2)
    assert plain.threshold < weighted.threshold


def test_load_labelled_reports_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"text": "a", "expected": null}\n{"text": "b"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"q.jsonl:2"):
        load_labelled(path)
    path.write_text('{"text": "a", "expected": "x"}\n\n', encoding="utf-8")
    assert load_labelled(path) == [LabelledQuery("a", "x")]


def test_faq_without_labels_answers_paraphrases_and_forwards_near_misses(tmp_path: Path) -> None:
    """The confidence model's default threshold, on the bundled FAQ with its labels left out:
    the near misses the old fixed threshold answered wrongly are forwarded."""
    faq_path = tmp_path / "faq.yaml"
    faq_path.write_text(BUNDLED_FAQ.read_text(encoding="utf-8"), encoding="utf-8")
    matcher = matcher_for_file(faq_path, threshold=None, min_precision=0.97)
    assert matcher.threshold == confidence_model().threshold
    for near_miss in [
        "when will teachers get their pay award",  # not council staff's pay award
        "nhs pension transfer into lgps",  # the NHS scheme, not the LGPS
        "how much adoption leave do i get",  # adoption, not paternity leave
    ]:
        assert matcher.match(near_miss).entry is None, near_miss
    for paraphrase, entry_id in [
        ("where do I find my payslip online", "payslip-access"),
        ("how do I report a scam email I received", "phishing-reporting"),
        ("how much do I pay into the LGPS pension", "pension-lgps"),
    ]:
        match = matcher.match(paraphrase)
        assert match.entry is not None and match.entry.id == entry_id, paraphrase


def test_answer_text_counts_as_a_phrasing_of_its_entry(tmp_path: Path) -> None:
    """An FAQ of bare questions: what a colleague asks is often worded like the answer."""
    bundled = load_faq(BUNDLED_FAQ)
    path = tmp_path / "questions-only.yaml"
    path.write_text(
        faq_yaml(Faq("test", tuple(replace(e, alternates=()) for e in bundled.entries))),
        encoding="utf-8",
    )
    matcher = matcher_for_file(path, threshold=None, min_precision=0.97)
    for question, entry_id in [
        ("what time does county hall open", "building-hours"),
        ("can i get an electric car through salary sacrifice", "car-lease"),
        ("overtime rates for grade 5", "overtime-claims"),
    ]:
        match = matcher.match(question)
        assert match.entry is not None and match.entry.id == entry_id, question


def test_confidence_reads_as_a_probability_whatever_the_faq(tmp_path: Path) -> None:
    """Scores are probabilities in [0, 1], the same scale for a 2-entry and a 45-entry FAQ."""
    small = tmp_path / "small.yaml"
    small.write_text(PARKING_FAQ, encoding="utf-8")
    for path in (small, BUNDLED_FAQ):
        matcher = build_matcher(load_faq(path))
        questions = ["how do I reset my password", "what is the capital of Peru"]
        for match in matcher.match_many(questions):
            assert all(0.0 <= score <= 1.0 for _, score in match.candidates)
        assert matcher.match("what is the capital of Peru").entry is None
        assert matcher.match("how do I reset my password").score > 0.9
