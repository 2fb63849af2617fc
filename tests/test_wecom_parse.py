"""Golden WeCom callback payloads (tests/fixtures/wecom/), each parsed into a neutral event."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from bot.events import Event, EventKind
from bot.platforms.wecom import parse

FIXTURES = Path(__file__).parent / "fixtures" / "wecom"


def load(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


# fixture → the event fields it must produce
GOLDEN: dict[str, dict] = {
    "text.xml": {
        "kind": EventKind.TEXT,
        "platform_msg_id": "7285410237001",
        "sender": "LiMing",
        "conversation": "LiMing",
        "text": "华东建材 张总 电话20分钟 聊了报价细节，下周三上门拜访",
        "occurred_at": dt.datetime.fromtimestamp(1790000000, dt.UTC),
    },
    "image.xml": {
        "kind": EventKind.IMAGE,
        "platform_msg_id": "7285410237002",
        "media.platform_media_id": "1YsrEmS5SSpqHoQqRNYxDxJc-3Hl5ZE0rhP7Q_mDEh0y3vMr6Fgp28bK4gmXlK8Av",
        "media.mime": "image/jpeg",
    },
    "voice.xml": {"kind": EventKind.VOICE, "media.platform_media_id": "voice-media-0001", "media.mime": "audio/amr"},
    "video.xml": {"kind": EventKind.VIDEO, "media.platform_media_id": "video-media-0001", "media.mime": "video/mp4"},
    "file.xml": {
        "kind": EventKind.FILE,
        "media.platform_media_id": "file-media-0001",
        "media.filename": "华东建材-报价单.pdf",
        "media.size": 48213,
    },
    "location.xml": {
        "kind": EventKind.LOCATION,
        "location": (31.2304, 121.4737),
        "text": "上海市黄浦区人民广场",
        "platform_msg_id": "7285410237006",
    },
    "template_card_event_button.xml": {
        "kind": EventKind.ACTION,
        "action": "undo:42",
        "task_id": "undo-1f3a9c0d2b4e6f70",
        "action_values": (),
        "response_code": "rc-button-0001",
        "platform_msg_id": "LiMing:1790000060:template_card_event:undo:42:undo-1f3a9c0d2b4e6f70",
    },
    "template_card_event_vote.xml": {
        "kind": EventKind.ACTION,
        "action": "obstacle:7",
        # a card re-sent after a failed in-place update carries "@u<n>"; the event names the card
        "task_id": "obstacle-a1b2c3d4e5f60718",
        "action_values": ("budget", "timing"),
        "response_code": "rc-vote-0001",
    },
    "template_card_event_multiple.xml": {
        "kind": EventKind.ACTION,
        "sender": "WangJing",
        "action": "review:3",
        "action_values": ("stage_2", "owner_li"),
    },
    "enter_agent.xml": {
        "kind": EventKind.ENTER,
        "sender": "LiMing",
        "platform_msg_id": "LiMing:1790000090:enter_agent::",
    },
}

IGNORED = ["link.xml", "change_contact.xml"]
HOSTILE = ["hostile_xxe.xml", "hostile_billion_laughs.xml", "hostile_external_dtd.xml"]
MALFORMED = ["malformed_unclosed.xml", "malformed_no_sender.xml"]


def _field(event: Event, path: str):
    value = event
    for part in path.split("."):
        value = getattr(value, part)
    return value


def test_every_fixture_is_covered_by_a_table():
    names = {p.name for p in FIXTURES.glob("*.xml")}
    assert names == set(GOLDEN) | set(IGNORED) | set(HOSTILE) | set(MALFORMED)


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_payload_parses_to_the_expected_event(name):
    event = parse.parse_message(load(name))
    assert event is not None
    assert event.platform == "wecom"
    assert event.sender and event.conversation == event.sender
    for path, expected in GOLDEN[name].items():
        assert _field(event, path) == expected, path


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_parsed_events_survive_the_inbox_json_round_trip(name):
    event = parse.parse_message(load(name))
    assert Event.from_json(event.to_json()) == event


@pytest.mark.parametrize("name", IGNORED)
def test_types_pacebot_does_not_use_parse_to_nothing(name):
    assert parse.parse_message(load(name)) is None


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_xml_is_rejected_before_entities_are_resolved(name):
    with pytest.raises(parse.MalformedPayload, match="forbidden XML construct"):
        parse.parse_message(load(name))


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_xml_is_rejected_in_the_outer_envelope_too(name):
    with pytest.raises(parse.MalformedPayload):
        parse.envelope(load(name))


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_payloads_are_refused(name):
    with pytest.raises(parse.MalformedPayload):
        parse.parse_message(load(name))


def test_envelope_needs_an_encrypt_element():
    with pytest.raises(parse.MalformedPayload, match="Encrypt"):
        parse.envelope(b"<xml><ToUserName>x</ToUserName></xml>")


def test_event_dedupe_key_stays_within_the_inbox_column_for_long_event_keys():
    xml = load("template_card_event_button.xml").replace(b"undo:42", b"k" * 1000)
    event = parse.parse_message(xml)
    assert len(event.platform_msg_id) <= 128
    again = parse.parse_message(xml)
    assert again.platform_msg_id == event.platform_msg_id


def test_two_clicks_in_the_same_second_on_different_cards_are_different_events():
    first = parse.parse_message(load("template_card_event_button.xml"))
    other = load("template_card_event_button.xml").replace(b"undo-1f3a9c0d2b4e6f70", b"undo-99aa88bb77cc66dd")
    assert parse.parse_message(other).platform_msg_id != first.platform_msg_id


def test_location_out_of_range_is_malformed():
    xml = load("location.xml").replace(b"31.2304", b"310.2304")
    with pytest.raises(parse.MalformedPayload):
        parse.parse_message(xml)


@pytest.mark.parametrize("created", [b"99999999999999999999", b"-1", b"253402300800"])
def test_a_create_time_no_date_can_hold_is_malformed(created):
    xml = load("location.xml")
    start, end = xml.index(b"<CreateTime>") + len(b"<CreateTime>"), xml.index(b"</CreateTime>")
    with pytest.raises(parse.MalformedPayload, match="CreateTime"):
        parse.parse_message(xml[:start] + created + xml[end:])
