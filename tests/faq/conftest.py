from __future__ import annotations

from pathlib import Path

import pytest

from faq.matcher import Matcher, matcher_for_file

ROOT = Path(__file__).resolve().parents[2]
BUNDLED_FAQ = ROOT / "config" / "faq.yaml"


@pytest.fixture(scope="session")
def bundled_matcher() -> Matcher:
    """The bundled FAQ exactly as the bot builds it (calibrated on its labelled questions)."""
    return matcher_for_file(BUNDLED_FAQ, threshold=None, min_precision=0.97)
