"""Which function runs each job kind, registered beside the function:

    @job(Triage, batched=True)
    async def triage(deps: Deps, payloads: list[Triage]) -> None: ...

`runners(deps)` hands the worker every registered function bound to the app's dependencies,
each given its payload object read from the stored JSON (a payload that cannot be read fails
the job for good, naming what is wrong). It refuses to start if a kind in domain.jobs has no
function, so a kind added without one is found at the first start, not when its job fails.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal, TypeVar, overload

from domain.jobs import KINDS, JobPayload, PayloadError
from errors import Permanent
from outbox.worker import JobHandler, batched, rerunnable

P = TypeVar("P", bound=JobPayload)
One = Callable[[Any, P], Awaitable[None]]
Many = Callable[[Any, list[P]], Awaitable[None]]


@dataclass(frozen=True)
class _Registered:
    payload: type[JobPayload]
    run: Callable[[Any, Any], Awaitable[None]]
    batched: bool
    rerunnable: bool


_REGISTERED: dict[str, _Registered] = {}


@overload
def job(payload: type[P], *, batched: Literal[True]) -> Callable[[Many[P]], Many[P]]: ...
@overload
def job(payload: type[P], *, rerunnable: bool = False) -> Callable[[One[P]], One[P]]: ...
def job(payload: type[P], *, batched: bool = False, rerunnable: bool = False) -> Callable[[Any], Any]:
    """Register the decorated function as the one that runs `payload`'s kind.

    `batched`: it takes every claimed job of the kind at once; `rerunnable`: a rerun changes
    nothing (see outbox.worker for what each means for when the job is recorded as done)."""

    def register(function: Callable[[Any, Any], Awaitable[None]]) -> Callable[[Any, Any], Awaitable[None]]:
        if payload.kind in _REGISTERED:
            raise TypeError(f"job kind {payload.kind!r} is registered twice")
        _REGISTERED[payload.kind] = _Registered(payload, function, batched, rerunnable)
        return function

    return register


def runners(deps: Any) -> dict[str, JobHandler | batched | rerunnable]:
    """Every registered kind's function with `deps` bound, for outbox.worker.OutboxWorker."""
    missing = sorted(set(KINDS) - set(_REGISTERED))
    if missing:
        raise LookupError(f"job kinds with no function registered (@job): {', '.join(missing)}")
    bound: dict[str, JobHandler | batched | rerunnable] = {}
    for kind, registered in _REGISTERED.items():
        if registered.batched:
            bound[kind] = batched(partial(_run_batch, registered, deps))
        elif registered.rerunnable:
            bound[kind] = rerunnable(partial(_run_one, registered, deps))
        else:
            bound[kind] = partial(_run_one, registered, deps)
    return bound


async def _run_one(registered: _Registered, deps: Any, raw: dict[str, Any]) -> None:
    await registered.run(deps, _read(registered.payload, raw))


async def _run_batch(registered: _Registered, deps: Any, raws: list[dict[str, Any]]) -> None:
    await registered.run(deps, [_read(registered.payload, raw) for raw in raws])


def _read(payload: type[JobPayload], raw: Mapping[str, Any]) -> JobPayload:
    try:
        return payload.from_json(raw)
    except PayloadError as error:
        raise Permanent(str(error)) from error
