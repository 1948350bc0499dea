"""bot.activity_json reads an incoming activity into the very objects msrest makes of it.

Checked three ways: the Teams activities the other tests send (and a few more Teams and
Emulator shapes) are read by the fast path alone, into objects equal to msrest's down to
types, key order, tzinfo and which parts are shared with the input; any activity-shaped input,
tampered with at random, gives msrest's result or msrest's exception; and any timestamp the
fast path reads is the datetime msrest reads.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from botbuilder.schema import Activity
from hypothesis import event, example, given, settings
from hypothesis import strategies as st
from msrest.exceptions import DeserializationError
from msrest.serialization import Deserializer, Model

from bot.activity_json import MAX_OBJECT_DEPTH, _iso_8601, _read_activity, _Unsure, activity_from_json
from tests.support.channel import TeamsActivities, TeamsUser

TEAMS = TeamsActivities(
    service_url="https://smba.trafficmanager.net/emea/",
    app_id="5d1c0a8e-0000-4000-8000-0000000c0a11",
    bot_name="Questions Bot",
    tenant_id="3b0e5c4f-0000-4000-8000-00000000d1d1",
)
ADA = TeamsUser(
    id="29:1f2e3d4c5b6a-ada", name="Ada Lovelace", aad_object_id="6b1f0c55-0000-4000-8000-00000000ada1",
    email="ada@council.example", user_principal_name="ada@council.example", given_name="Ada",
    surname="Lovelace", tenant_id=TEAMS.tenant_id,
)
MEETING = {"id": "MCMxOTptZWV0aW5nX3dlZWtseUB0aHJlYWQudjIjMA=="}


def _in_meeting_chat() -> dict[str, Any]:
    chat = "19:meeting_x@thread.v2"
    activity = TEAMS.group_chat_message(ADA, "is the briefing recorded?", conversation_id=chat)
    activity["channelData"]["meeting"] = MEETING
    return activity


def _meeting_event(name: str, value: dict[str, Any]) -> dict[str, Any]:
    activity = _in_meeting_chat()
    for field in ("text", "textFormat", "entities"):
        del activity[field]
    activity.update(type="event", name=name, value=value)
    return activity


def _reaction() -> dict[str, Any]:
    activity = TEAMS.personal_message(ADA, "")
    for field in ("text", "textFormat", "attachments", "entities"):
        del activity[field]
    activity["channelData"]["legacy"] = {"replyToId": "1:1Zq0x"}
    activity.update(type="messageReaction", replyToId="1700000000000", reactionsAdded=[{"type": "like"}])
    return activity


def _members_removed() -> dict[str, Any]:
    activity = TEAMS.bot_added(ADA, conversation_type="channel")
    del activity["membersAdded"]
    activity["membersRemoved"] = [{"id": ADA.id, "aadObjectId": ADA.aad_object_id}]
    activity["channelData"]["eventType"] = "teamMemberRemoved"
    return activity


def _emulator_message() -> dict[str, Any]:
    """What the Bot Framework Emulator posts: roles, a millisecond timestamp, a local offset."""
    return {
        "text": "how do I reset my password?", "textFormat": "plain", "type": "message",
        "channelData": {
            "clientActivityID": "17145590305590.k2j3", "clientTimestamp": "2024-05-01T10:20:30.559Z",
        },
        "from": {"id": "5c7b0f4e-emulator-user", "name": "User", "role": "user"},
        "locale": "en-GB", "localTimestamp": "2024-05-01T11:20:30+01:00", "localTimezone": "Europe/London",
        "timestamp": "2024-05-01T10:20:30.574Z",
        "entities": [{"requiresBotState": True, "supportsListening": True, "supportsTts": True,
                      "type": "ClientCapabilities"}],
        "conversation": {"id": "a1b2c3d4-e5f6|livechat"}, "id": "f0e1d2c3-b4a5",
        "recipient": {"id": "c1d2e3f4-bot", "name": "Bot", "role": "bot"},
        "serviceUrl": "http://localhost:58123", "channelId": "emulator", "attachments": [],
    }


def _card_in_attachment() -> dict[str, Any]:
    activity = TEAMS.personal_message(ADA, "")
    activity["attachments"] = [{
        "contentType": "application/vnd.microsoft.card.adaptive", "name": "answer",
        "content": {"type": "AdaptiveCard", "version": "1.5", "body": [
            {"type": "Container", "items": [{"type": "ColumnSet", "columns": [
                {"type": "Column", "width": "auto",
                 "items": [{"type": "TextBlock", "text": "Q-42", "wrap": True}]},
            ]}]},
        ], "actions": [{"type": "Action.Execute", "verb": "faq_feedback", "data": {"question_id": 42}}]},
    }]
    return activity


def _every_field() -> dict[str, Any]:
    """Every Activity attribute with a value of its declared type, so every type string
    (lists of models, {Entity}, int, bool, every model class) is read by the fast path."""
    account = {"id": "29:x", "name": "X", "aadObjectId": "a", "role": "user", "properties": {"k": [1, 2.5]}}
    return {
        **TEAMS.channel_mention(ADA, "all of it"),
        "localTimezone": "Europe/Berlin", "attachmentLayout": "carousel",
        "membersAdded": [account, None], "membersRemoved": [account],
        "reactionsAdded": [{"type": "like"}], "reactionsRemoved": [{"type": "heart", "extra": None}],
        "topicName": "Briefings", "historyDisclosed": False, "speak": "hi", "inputHint": "acceptingInput",
        "summary": "s", "suggestedActions": {"to": ["29:x"], "actions": [
            {"type": "imBack", "title": "Yes", "image": "https://x/i.png", "text": "yes",
             "displayText": "Yes",
             "value": {"answer": True}, "channelData": [None], "imageAltText": "tick"}]},
        "action": "add", "label": "l", "valueType": "t", "value": ["a", {"b": None}], "name": "n",
        "relatesTo": {"activityId": "1", "user": account, "bot": {"id": "28:b"},
                      "conversation": {"id": "c", "isGroup": True, "tenantID": "t", "properties": {}},
                      "channelId": "msteams", "locale": "de-DE", "serviceUrl": "https://x"},
        "code": "completedSuccessfully", "expiration": "2024-05-02T00:00:00-05:30", "importance": "high",
        "deliveryMode": "normal", "listenFor": ["yes", None],
        "textHighlights": [{"text": "all", "occurrence": 1}],
        "semanticAction": {
            "id": "sa", "state": "start", "entities": {"e": {"type": "x", "k": [1]}, "none": None},
        },
        "callerId": "urn:botframework:azure",
    }


def teams_activities() -> dict[str, dict[str, Any]]:
    user = ADA
    personal = TEAMS.personal_message(user, "how do I reset my password?")
    mention = TEAMS.channel_mention(user, "will the car park reopen?")
    return {
        "personal message": personal,
        "channel @mention": mention,
        "channel @mention in a thread": TEAMS.channel_mention(
            user, "and after?", thread_root_id="1700000000001"
        ),
        "group chat @mention": TEAMS.group_chat_message(user, "pay award?"),
        "meeting chat message": _in_meeting_chat(),
        "card submit": TEAMS.card_submit(user, {"action": "faq_feedback", "question_id": 3, "helpful": False},
                                         reply_to_id="1700000000002"),
        "card submit in a channel": TEAMS.card_submit(user, {"action": "moderate", "op": "claim"},
                                                      reply_to_id="1700000000003", context=mention),
        "invoke adaptiveCard/action": TEAMS.invoke_action(
            user, "moderate", {"op": "answer", "answer": "Yes."}, reply_to_id="1700000000004", context=mention
        ),
        "bot added, personal": TEAMS.bot_added(user),
        "bot added to a team": TEAMS.bot_added(user, conversation_type="channel"),
        "bot added to a group chat": TEAMS.bot_added(user, conversation_type="groupChat"),
        "member removed": _members_removed(),
        "installationUpdate": TEAMS.installation_update(user),
        "messageReaction": _reaction(),
        "meeting start": _meeting_event("application/vnd.microsoft.meetingStart", {
            "Id": MEETING["id"], "MeetingType": "Scheduled", "Title": "All-staff briefing",
            "JoinUrl": "https://teams.microsoft.com/l/meetup-join/19%3ameeting_x%40thread.v2/0",
            "StartTime": "2024-05-01T10:00:00.0000000Z"}),
        "meeting end": _meeting_event("application/vnd.microsoft.meetingEnd", {
            "Id": MEETING["id"], "MeetingType": "Scheduled", "Title": "All-staff briefing",
            "EndTime": "2024-05-01T11:00:00.0000000Z"}),
        "adaptive card attachment": _card_in_attachment(),
        "emulator message": _emulator_message(),
        "every field": _every_field(),
    }


TEAMS_SHAPES = teams_activities()


# --------------------------------------------------------------------------
# how two results are compared
# --------------------------------------------------------------------------


def assert_same(fast: Any, slow: Any, path: str = "activity") -> None:
    """Equal, of the same types, in the same order, all the way down: Model.__eq__ alone would
    let 1 == True, a different tzinfo or a reordered dict pass."""
    assert type(fast) is type(slow), f"{path}: {type(fast).__name__} is not {type(slow).__name__}"
    if isinstance(slow, Model):
        assert_same(vars(fast), vars(slow), path)
    elif isinstance(slow, dict):
        assert list(fast) == list(slow), f"{path}: keys {list(fast)} != {list(slow)}"
        for key, value in slow.items():
            assert_same(fast[key], value, f"{path}.{key}")
    elif isinstance(slow, list):
        assert len(fast) == len(slow), f"{path}: {len(fast)} items, not {len(slow)}"
        for index, (fast_item, slow_item) in enumerate(zip(fast, slow, strict=True)):
            assert_same(fast_item, slow_item, f"{path}[{index}]")
    elif isinstance(slow, datetime):
        assert (fast.replace(tzinfo=None), fast.fold) == (slow.replace(tzinfo=None), slow.fold), path
        assert type(fast.tzinfo) is type(slow.tzinfo), f"{path}: tzinfo {fast.tzinfo!r} vs {slow.tzinfo!r}"
        if slow.tzinfo is not None:
            described = (slow.utcoffset(), slow.tzname(), slow.dst())
            assert (fast.utcoffset(), fast.tzname(), fast.dst()) == described, path
    else:
        assert fast == slow or (math.isnan(fast) and math.isnan(slow)), f"{path}: {fast!r} != {slow!r}"


def shared_with(result: Any, data: Any) -> set[str]:
    """Where the result holds the input's own dicts and lists rather than copies of them
    (msrest copies "object" values and keeps additional properties as they came)."""
    inputs = {id(part) for part in _containers(data)}

    def walk(value: Any, path: str) -> Iterator[str]:
        if isinstance(value, Model):
            value = vars(value)
        elif id(value) in inputs:
            yield path
        if isinstance(value, dict):
            for key, item in value.items():
                yield from walk(item, f"{path}.{key}")
        elif isinstance(value, list):
            for index, item in enumerate(value):
                yield from walk(item, f"{path}[{index}]")

    return set(walk(result, "activity"))


def _containers(value: Any) -> Iterator[Any]:
    if isinstance(value, dict | list):
        yield value
        for item in value.values() if isinstance(value, dict) else value:
            yield from _containers(item)


# --------------------------------------------------------------------------
# the activities Teams sends
# --------------------------------------------------------------------------


@pytest.mark.parametrize("body", [pytest.param(body, id=name) for name, body in TEAMS_SHAPES.items()])
def test_a_teams_activity_is_read_by_the_fast_path_into_what_msrest_makes(body: dict[str, Any]) -> None:
    as_sent = json.dumps(body)
    slow = Activity().deserialize(body)
    fast = _read_activity(body)  # the fast path alone: no fallback hides a miss here

    assert_same(fast, slow)
    assert fast.serialize() == slow.serialize()
    assert shared_with(fast, body) == shared_with(slow, body)
    assert json.dumps(body) == as_sent  # the input is left as it came
    assert_same(activity_from_json(body), slow)


def test_teams_fields_land_where_msrest_puts_them() -> None:
    """The surprises the fast path must keep: Teams' tenantId is not ConversationAccount's
    tenantID attribute, and a mention is an Entity whose fields are additional properties."""
    body = TEAMS.channel_mention(ADA, "will the car park reopen?")
    activity = activity_from_json(body)

    assert activity.conversation.tenant_id is None
    assert activity.conversation.additional_properties == {"tenantId": TEAMS.tenant_id}
    [mention] = activity.entities
    assert type(mention).__name__ == "Entity" and mention.type == "mention"
    assert mention.additional_properties["mentioned"] is body["entities"][0]["mentioned"]
    assert activity.channel_data == body["channelData"] and activity.channel_data is not body["channelData"]
    assert activity.timestamp.tzinfo is Activity().deserialize(body).timestamp.tzinfo  # isodate's UTC


def test_deeply_nested_free_form_data_is_left_to_msrest() -> None:
    body = TEAMS.personal_message(ADA, "deep")
    nested: Any = "bottom"
    for _ in range(MAX_OBJECT_DEPTH + 1):
        nested = {"down": [nested]}
    body["channelData"]["deep"] = nested

    with pytest.raises(_Unsure):
        _read_activity(body)
    assert_same(activity_from_json(body), Activity().deserialize(body))


# --------------------------------------------------------------------------
# any activity-shaped input
# --------------------------------------------------------------------------

#: Values msrest reads leniently, refuses, or reads only in one slot.
ODD_VALUES = st.sampled_from([
    "true", "False", "1", "0", " 7 ", "12", "", "1e3", 1, 0, -3, 2**70, 1.0, 0.0, 2.5, True, False,
    float("nan"), float("inf"), [], {}, [None], [1], [[]], ["x"], [{}], [{"id": 1}], {"id": 5}, {"id": None},
    [{"key": "k", "value": {"type": "mention"}}],
    {"to": ["29:x"], "actions": [{"type": "imBack", "value": 1}]},
    {"activityId": "1", "user": {"id": "u"}, "conversation": {"id": "c", "tenantId": "t"}},
    [{"text": "hi", "occurrence": 1}], [{"text": "hi", "occurrence": "1"}],
    {"id": "sa", "entities": {"e": {"type": "x"}}},
    "2024-05-01T10:20:30.1234567Z", "2024-05-01t10:20:30z", "2024-05-01T10:20:30+02:00",
    "2024-05-01T10:20:30",
    "2024-02-30T00:00:00Z", "2024-05-01T24:00:00Z", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00",
    "2024-05-01T10:20:30.Z", "2024-05-01T10:20:30,5Z", "2024-05-01T10:20:30+0200", "not a date",
])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=10), children, max_size=3),
    max_leaves=10,
)
#: Every JSON key of Activity, nested keys of its parts, and keys msrest does not know
#: (other cases, unknown names), each set to a value or removed.
ACTIVITY_KEYS = sorted(spec["key"] for spec in Activity._attribute_map.values())
NESTED_KEYS = [
    "from.id", "from.name", "from.role", "from.properties", "from.aadObjectId", "from.Id",
    "conversation.isGroup", "conversation.tenantID", "conversation.tenantId", "conversation.properties",
    "recipient.name", "entities.0", "entities.0.type", "entities.0.mentioned", "attachments.0",
    "attachments.0.content", "attachments.0.contentType", "channelData.tenant", "value.action",
]
UNKNOWN_KEYS = ["Text", "TYPE", "x-unknown", "", "from.x", "tenantID", "additional_properties", "a.b"]
PATHS = st.sampled_from(ACTIVITY_KEYS + NESTED_KEYS + UNKNOWN_KEYS)
REMOVED = object()
CHANGES = st.dictionaries(PATHS, ODD_VALUES | JSON_VALUES | st.just(REMOVED), max_size=4)
BASES = st.sampled_from(list(TEAMS_SHAPES.values()))


def _changed(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    activity = copy.deepcopy(base)
    for path, value in changes.items():
        target: Any = activity
        *parents, field = path.split(".") if path not in UNKNOWN_KEYS else [path]
        for parent in parents:
            if isinstance(target, list) and parent.isdigit() and int(parent) < len(target):
                target = target[int(parent)]
            elif isinstance(target, dict) and isinstance(target.get(parent), dict | list):
                target = target[parent]
            else:
                break
        else:
            if isinstance(target, list) and field.isdigit() and int(field) < len(target):
                target[int(field)] = None if value is REMOVED else copy.deepcopy(value)
            elif isinstance(target, dict):
                if value is REMOVED:
                    target.pop(field, None)
                else:
                    target[field] = copy.deepcopy(value)
    return activity


@settings(max_examples=400, deadline=None, database=None)
@given(base=BASES, changes=CHANGES)
@example(base=_emulator_message(), changes={"from": "someone"})
@example(base=_emulator_message(), changes={"entities": [1]})
@example(base=_emulator_message(), changes={"membersAdded": "x"})
@example(base=_emulator_message(), changes={"timestamp": "2024-02-30T00:00:00Z"})
@example(base=_emulator_message(), changes={"semanticAction": {"entities": [{"key": "k", "value": {}}]}})
@example(base=_emulator_message(), changes={"historyDisclosed": "true"})
@example(base=_emulator_message(), changes={"textHighlights": [{"occurrence": "2"}]})
def test_any_activity_shaped_input_gives_msrests_result_or_msrests_error(
    base: dict[str, Any], changes: dict[str, Any]
) -> None:
    body = _changed(base, changes)
    as_sent = json.dumps(body)
    try:
        expected = Activity().deserialize(copy.deepcopy(body))
    except Exception as error:  # noqa: BLE001 - whatever msrest raises, the same must come out
        event(f"msrest refuses it: {type(error).__name__}")
        with pytest.raises(_Unsure):
            _read_activity(body)  # the fast path never accepts what msrest refuses
        with pytest.raises(type(error)) as raised:
            activity_from_json(body)
        assert type(raised.value) is type(error) and str(raised.value) == str(error)
    else:
        try:
            fast = _read_activity(body)
        except _Unsure:
            event("msrest reads it, the fast path leaves it to msrest")
        else:
            event("the fast path reads it")
            assert_same(fast, expected)
            assert shared_with(fast, body) == shared_with(Activity().deserialize(body), body)
        assert_same(activity_from_json(body), expected)
    assert json.dumps(body) == as_sent


# --------------------------------------------------------------------------
# timestamps
# --------------------------------------------------------------------------

_2 = st.integers(0, 99).map("{:02d}".format)
FRACTIONS = st.just("") | st.text("0123456789", max_size=12).map(".{}".format)
ZONES = st.sampled_from(["", "Z", "z", "+00:00", "-00:00", "+0200", "+02", "-24:00", "+00:60"]) | st.builds(
    "{}{}:{}".format, st.sampled_from("+-"), _2, _2
)
#: Real dates and times in the shapes Teams and the Emulator send, with any fraction.
TIMESTAMPS = st.builds(
    lambda moment, fraction, zone: f"{moment:%m-%dT%H:%M:%S}".join([f"{moment.year:04d}-", fraction + zone]),
    st.datetimes(),
    FRACTIONS,
    st.sampled_from(["", "Z"])
    | st.builds("{}{:02d}:{:02d}".format, st.sampled_from("+-"), st.integers(0, 23), st.integers(0, 59)),
)
#: Near misses: every part at and past its limits, other separators, trailing text.
TIMESTAMP_LIKE = st.builds(
    "{}-{}-{}{}{}:{}:{}{}{}{}".format,
    st.sampled_from(["0000", "0001", "0002", "1970", "2024", "9998", "9999"])
    | st.integers(0, 9999).map("{:04d}".format),
    st.integers(0, 13).map("{:02d}".format),
    st.integers(0, 32).map("{:02d}".format),
    st.sampled_from(["T", "T", "T", "t", " "]),
    st.integers(0, 25).map("{:02d}".format),
    st.integers(0, 61).map("{:02d}".format),
    st.integers(0, 61).map("{:02d}".format),
    FRACTIONS | st.sampled_from([",5", ".", ".٣"]),
    ZONES,
    st.sampled_from(["", "", "", "x", " ", "Z", "0"]),
)


@settings(max_examples=1500, deadline=None, database=None)
@given(text=TIMESTAMPS | TIMESTAMP_LIKE | st.text(max_size=40))
@example(text="2024-05-01T10:20:30.1234567Z")
@example(text="٢٠٢٤-05-01T10:20:30Z")  # Unicode digits: msrest's pattern takes them
@example(text="0001-01-01T00:30:00+01:00")
@example(text="9999-12-31T23:59:59.9999999-00:01")
def test_a_timestamp_is_read_as_msrest_reads_it_or_left_to_msrest(text: str) -> None:
    try:
        expected = Deserializer.deserialize_iso(text)
    except DeserializationError:
        event("msrest refuses it")
        with pytest.raises(_Unsure):
            _iso_8601(text)
    else:
        try:
            fast = _iso_8601(text)
        except _Unsure:
            event("msrest reads it, the fast path leaves it to msrest")
            return
        event("the fast path reads it")
        assert_same(fast, expected, text)


@pytest.mark.parametrize(
    "text",
    [
        "2024-05-01T10:20:30.1234567Z", "2024-05-01T12:20:30.1234567+02:00", "2024-05-01T05:20:30.1-05:30",
        "2024-05-01T10:20:30.574Z", "2024-05-01T10:20:30Z", "2024-05-01T10:20:30",
        "2024-05-01T10:20:30.999999999-00:00",
    ],
)
def test_the_timestamps_teams_and_the_emulator_send_are_read_by_the_fast_path(text: str) -> None:
    assert_same(_iso_8601(text), Deserializer.deserialize_iso(text), text)
