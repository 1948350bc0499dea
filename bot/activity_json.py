"""Incoming activities read from their JSON without msrest's generic deserialiser.

Why: every POST /api/messages turns its body into a botbuilder `Activity`, on the event loop.
msrest does that by interpreting each class's attribute map on every call (key extractors,
type dispatch, isodate's regular expressions and Decimal arithmetic for the timestamps); under
load, msrest and isodate were 12-14 % of the loop thread's CPU at 300 activities/s. Here each
model class's `_attribute_map` is compiled once into a plan (JSON key -> attribute and a
converter for its type string). Measured with timeit (Python 3.11, a quiet 2-core machine):
a Teams personal message 110 µs with msrest, 13 µs here; a channel @mention 127 µs, 15 µs;
an Action.Execute invoke 118 µs, 12 µs.

What it builds is what msrest builds: the same classes, constructed the same way; keys matched
exactly (msrest's `deserialize` is case-sensitive, so Teams' `tenantId` is an additional
property of ConversationAccount, whose attribute is `tenantID`); unknown keys in
`additional_properties` as the very JSON values; "object" values copied into new dicts and
lists; timestamps as isodate's datetimes with isodate's tzinfo objects.

The guarantee: the fast path only accepts what it is sure msrest reads the same way: JSON
values of the declared type, and timestamps in the one common ISO 8601 shape. Anything else (a
wrong type that msrest would coerce or refuse, an unusual timestamp, a type string or model
feature these models do not use, very deep nesting) hands the untouched input to
`Activity().deserialize`, so msrest decides, raising included.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import Any

from botbuilder.schema import Activity
from isodate import UTC, FixedOffset  # what msrest's timestamps carry (msrest parses with isodate)
from msrest.serialization import Model

# Nesting of "object" values (channelData, value, card content) read here; deeper ones go to
# msrest, whose recursion limit then decides, as it always did.
MAX_OBJECT_DEPTH = 64

_Converter = Callable[[Any], Any]


class _Unsure(Exception):
    """The fast path met something it leaves to msrest."""


def activity_from_json(data: dict[str, Any]) -> Activity:
    """The `Activity` msrest's `Activity().deserialize(data)` would make, or its exception.

    `data` is not changed, so msrest always gets the input as it came."""
    try:
        return _read_activity(data)
    except Exception:  # noqa: BLE001 - _Unsure by design; anything else (a deep stack) likewise
        return Activity().deserialize(data)


class _ModelPlan:
    """How msrest reads one model class from a JSON object, decided once per class."""

    __slots__ = ("blank", "cls", "fields", "known")

    def __init__(self, cls: type[Model]) -> None:
        self.cls = cls
        self.fields: dict[str, tuple[str, _Converter]] = {}
        self.known = frozenset(spec["key"] for spec in cls._attribute_map.values())
        # msrest passes every attribute to the constructor, the missing ones as None.
        self.blank = dict.fromkeys(cls._attribute_map)

    def read(self, data: Any) -> Model:
        if type(data) is not dict:
            raise _Unsure
        kwargs = self.blank.copy()
        fields = self.fields
        unknown_keys = False
        for key, value in data.items():
            field = fields.get(key)
            if field is None:
                unknown_keys = True
            elif value is not None:  # msrest reads null as None whatever the declared type
                attribute, convert = field
                kwargs[attribute] = convert(value)
        model = self.cls(**kwargs)
        if unknown_keys:
            # msrest's very set operation (set(data) would size its table differently), so
            # even the order of the keys is msrest's
            model.additional_properties = {key: data[key] for key in set(data.keys()) - self.known}
        return model


def _str(value: Any) -> str:
    if type(value) is not str:
        raise _Unsure  # msrest would make a string of it: str(5) == "5"
    return value


def _bool(value: Any) -> bool:
    if type(value) is not bool:
        raise _Unsure  # msrest also takes 0, 1, "true", "False", ...
    return value


def _int(value: Any) -> int:
    if type(value) is not int:
        raise _Unsure  # msrest would call int() on it: True, 2.5, "12"
    return value


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _object(value: Any, depth: int = 0) -> Any:
    """A free-form value as msrest returns it: new dicts and lists, the same scalars."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if depth >= MAX_OBJECT_DEPTH:
        raise _Unsure
    if kind is dict:
        return {
            key: item if type(item) in _SCALARS else _object(item, depth + 1)
            for key, item in value.items()
        }
    if kind is list:
        return [item if type(item) in _SCALARS else _object(item, depth + 1) for item in value]
    raise _Unsure  # not a JSON value


# The shape Teams and the Bot Framework send ("2024-05-01T10:20:30.1234567Z", or with an offset
# "+02:00"). ASCII digits only: msrest's pattern would also take other Unicode digits.
_TIMESTAMP = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|([+-])(\d\d):(\d\d))?", re.ASCII
)


def _iso_8601(value: Any) -> datetime:
    """The datetime msrest makes: fraction cut (not rounded) to microseconds, 'Z' as isodate's
    UTC, an offset as isodate's FixedOffset named by its text, no zone as a naive datetime."""
    match = _TIMESTAMP.fullmatch(value) if type(value) is str else None
    if match is None:
        raise _Unsure
    year, month, day, hour, minute, second, fraction, zone_text, sign, zone_hours, zone_minutes = (
        match.groups()
    )
    if year in ("0001", "9999"):
        raise _Unsure  # an offset may carry it out of range: msrest's check says what then
    zone: tzinfo | None = None
    if zone_text == "Z":
        zone = UTC
    elif zone_text:
        hours, minutes = int(zone_hours), int(zone_minutes)
        if hours > 23 or minutes > 59:
            raise _Unsure  # not a valid UTC offset: msrest fails on it later
        if sign == "-":
            hours, minutes = -hours, -minutes
        zone = FixedOffset(hours, minutes, zone_text)
    microsecond = int(fraction[:6].ljust(6, "0")) if fraction else 0
    try:
        return datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), microsecond, zone
        )
    except ValueError:
        raise _Unsure from None  # 24:00, 23:59:60, 31 April, ...


def _list_of(convert: _Converter) -> _Converter:
    def read_list(value: Any) -> list[Any]:
        if type(value) is not list:
            raise _Unsure
        return [None if item is None else convert(item) for item in value]

    return read_list


def _dict_of(convert: _Converter) -> _Converter:
    def read_dict(value: Any) -> dict[Any, Any]:
        if type(value) is not dict:
            raise _Unsure  # msrest also reads [{"key": ..., "value": ...}, ...]
        return {key: None if item is None else convert(item) for key, item in value.items()}

    return read_dict


def _unsure(value: Any) -> Any:
    raise _Unsure


_BASIC: dict[str, _Converter] = {
    "str": _str,
    "bool": _bool,
    "int": _int,
    "object": _object,
    "iso-8601": _iso_8601,
}


def _compile(root: type[Model]) -> _Converter:
    """The reader of `root`: plans for it and every model class its attribute types name,
    resolved as msrest resolves them (the classes of the root's package)."""
    classes = root._infer_class_models()
    plans: dict[str, _ModelPlan] = {}

    def converter(data_type: str) -> _Converter:
        if data_type in _BASIC:
            return _BASIC[data_type]
        if len(data_type) > 2 and data_type[0] + data_type[-1] == "[]":
            return _list_of(converter(data_type[1:-1]))
        if len(data_type) > 2 and data_type[0] + data_type[-1] == "{}":
            return _dict_of(converter(data_type[1:-1]))
        cls = classes.get(data_type)
        if isinstance(cls, type) and issubclass(cls, Model) and _plain(cls):
            return plan(cls).read
        return _unsure  # enums, other types: msrest's rules, for any value but null

    def plan(cls: type[Model]) -> _ModelPlan:
        if cls.__name__ not in plans:
            plans[cls.__name__] = made = _ModelPlan(cls)  # registered first: models may nest
            made.fields = {
                spec["key"]: (attribute, converter(spec["type"]))
                for attribute, spec in cls._attribute_map.items()
            }
        return plans[cls.__name__]

    return converter(root.__name__)


def _plain(cls: type[Model]) -> bool:
    """A class msrest reads with no more than the plan does: no polymorphism (msrest pops the
    discriminator), no read-only or constant attributes, no flattened ("a.b") or empty keys,
    no declared additional_properties attribute."""
    validation = getattr(cls, "_validation", {})
    return (
        not cls.__dict__.get("_subtype_map")
        and not any(rule.get("readonly") or rule.get("constant") for rule in validation.values())
        and "additional_properties" not in cls._attribute_map
        and all(spec["key"] and "." not in spec["key"] for spec in cls._attribute_map.values())
    )


_read_activity = _compile(Activity)
