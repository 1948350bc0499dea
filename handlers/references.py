"""Reading the references people type for questions (`Q-12`) and events (`E-3`)."""

from __future__ import annotations

import re

from errors import Refused


def reference_number(given: str, prefix: str, kind: str, example: int) -> int:
    """`12`, `Q-12` or `q12` (with prefix "Q") → 12; Refused naming `kind` for anything else."""
    found = re.fullmatch(rf"(?:{prefix}-?)?(\d{{1,9}})", given.strip(), re.IGNORECASE)
    if not found or int(found[1]) == 0:
        raise Refused(
            f"{given!r} is not {kind} reference: use its number, e.g. {example} or {prefix}-{example}."
        )
    return int(found[1])
