"""Outbox payloads of kinds the tests name: the outbox's behaviour does not depend on the kind."""

from __future__ import annotations

from functools import cache
from typing import Any

from domain.jobs import JobPayload


class _Sample(JobPayload):
    def __init__(self, fields: dict[str, Any]) -> None:
        self._fields = fields

    def to_json(self) -> dict[str, Any]:
        return dict(self._fields)


@cache
def _kind(kind: str) -> type[_Sample]:
    return type(f"Sample[{kind}]", (_Sample,), {"kind": kind})


def sample(kind: str, **fields: Any) -> JobPayload:
    """A job of kind `kind` whose payload is `fields`."""
    return _kind(kind)(fields)
