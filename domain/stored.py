"""Frozen records to and from the JSON the outbox table stores (domain.jobs, domain.replies).

One reading of stored JSON for every record: a key the record does not have is an error that
names it, lists become tuples, enums their members, and a field typed as a union of tagged
records (each with a `type` tag, as reply messages have) becomes the record its tag names.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import types
import typing
from collections.abc import Mapping
from typing import Any

TAG = "type"  # the key naming a tagged record's class in its JSON (domain.replies)


class PayloadError(ValueError):
    """Stored JSON this version cannot read (a key it does not know, one it needs missing)."""


def encode(value: Any) -> Any:
    """`value` as JSON has it: records by their own `to_json` (or their fields), tuples as lists,
    enums as their values."""
    if hasattr(value, "to_json"):
        return value.to_json()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return fields_json(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {key: encode(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [encode(item) for item in value]
    return value


def fields_json(record: Any) -> dict[str, Any]:
    """Every field of a record (a dataclass instance), as JSON has it."""
    return {field.name: encode(getattr(record, field.name)) for field in dataclasses.fields(record)}


def decode(hint: Any, value: Any) -> Any:
    """`value` read from JSON as the type `hint` says; PayloadError if it cannot be."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        options = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if value is None:
            return None
        if len(options) == 1:
            return decode(options[0], value)
        tagged: dict[str | None, Any] = {getattr(option, TAG, None): option for option in options}
        if None in tagged or not isinstance(value, Mapping):
            return value  # a union of plain values (str | int, say): JSON has them as they are
        if value.get(TAG) not in tagged:
            raise PayloadError(f"{TAG} {value.get(TAG)!r:.40} is not one of {', '.join(sorted(map(str, tagged)))}")
        return decode(tagged[value[TAG]], value)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _record(hint, value)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        try:
            return hint(value)
        except ValueError as unknown:
            raise PayloadError(str(unknown)) from None
    if typing.get_origin(hint) is tuple and isinstance(value, list | tuple):
        [item_hint, _] = typing.get_args(hint)  # tuple[X, ...]
        return tuple(decode(item_hint, item) for item in value)
    return value


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """A record's fields and their types (resolved once per class: it is the slow part of reading)."""
    return {name: hint for name, hint in typing.get_type_hints(cls).items()
            if name in {field.name for field in dataclasses.fields(cls)}}


def _record(cls: type, value: Any) -> Any:
    """A record from its JSON object: every key one of its fields, and its tag (if it has one) its own."""
    if not isinstance(value, Mapping):
        raise PayloadError(f"{cls.__name__} must be an object, not {type(value).__name__}")
    fields = dict(value)
    tag = getattr(cls, TAG, None)
    if tag is not None and fields.pop(TAG, tag) != tag:
        raise PayloadError(f"{cls.__name__}: {TAG} is {value[TAG]!r:.40}, not {tag!r}")
    hints = _hints(cls)
    names = hints.keys()
    unknown = sorted(str(key) for key in set(fields) - names)
    if unknown:
        raise PayloadError(f"unknown keys {', '.join(unknown)}")
    try:
        return cls(**{name: decode(hints[name], item) for name, item in fields.items()})
    except TypeError as missing:
        raise PayloadError(str(missing)) from None
