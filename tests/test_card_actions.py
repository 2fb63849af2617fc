"""Typed card action payloads: packed and unpacked in one place, compatible with cards already sent."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import pytest

from cards.model import (
    MAX_PAYLOAD_BYTES,
    Button,
    ButtonStyle,
    Card,
    CardAction,
    CardField,
    ChoiceMode,
    InvalidPayload,
    payload_prefix,
)
from handlers.catalogue import all_routers
from handlers.escalation import TransferTo
from handlers.obstacles import AnswerObstacle
from handlers.touches import CancelDraft, UndoTouch


@dataclass(frozen=True)
class _Note(CardAction, prefix="note"):
    text: str


def test_a_payload_packs_as_prefix_and_fields_like_cards_already_stored():
    assert UndoTouch(42).pack() == "undo:42"
    assert AnswerObstacle(7, 2).pack() == "ob:7:2"
    assert CancelDraft().pack() == "tx"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("undo:42", UndoTouch(42)),
        ("ob:7:2", AnswerObstacle(7, 2)),
        ("tx", CancelDraft()),
        ("esc_to:5", TransferTo(5)),  # the submit button of a choice card: the member is the chosen option
        ("esc_to:5:9", TransferTo(5, 9)),
    ],
)
def test_stored_payloads_unpack_into_their_typed_class(text: str, expected: CardAction):
    assert type(expected).unpack(text) == expected
    assert expected.pack() == text


def test_a_trailing_none_field_is_left_out_when_packing():
    assert TransferTo(5, None).pack() == "esc_to:5"


@pytest.mark.parametrize("text", ["undo", "undo:", "undo:abc", "undo:-1", "undo:1:2", "tx:1", "ob:7", "", "undo:1 "])
def test_malformed_payloads_are_refused(text: str):
    cls = {"undo": UndoTouch, "tx": CancelDraft, "ob": AnswerObstacle}.get(text.split(":")[0], UndoTouch)
    with pytest.raises(InvalidPayload):
        cls.unpack(text)


def test_a_payload_of_another_class_is_refused():
    with pytest.raises(InvalidPayload):
        UndoTouch.unpack("tc:1")


def test_a_payload_over_the_length_limit_is_refused_both_ways():
    with pytest.raises(InvalidPayload):
        _Note("x" * MAX_PAYLOAD_BYTES).pack()
    with pytest.raises(InvalidPayload):
        payload_prefix("note:" + "x" * MAX_PAYLOAD_BYTES)


def test_a_string_field_with_a_separator_cannot_be_packed():
    with pytest.raises(InvalidPayload):
        _Note("a:b").pack()


def test_a_bad_prefix_is_refused_when_the_class_is_defined():
    with pytest.raises(ValueError, match="prefix"):

        class _Bad(CardAction, prefix="Bad Prefix"):
            pass


def test_every_registered_action_has_its_own_prefix_and_round_trips():
    routes = [route for router in all_routers() for route in router.actions]
    prefixes = [route.prefix for route in routes]
    assert len(prefixes) == len(set(prefixes))
    for route in routes:
        fields = route.payload._fields()
        sample = route.payload(*[1 if base is int else "x" for _f, base in fields])
        assert route.payload.unpack(sample.pack()) == sample


def test_each_action_class_reads_its_own_fields():
    # The field table is kept per class: a subclass never sees its parent's or a sibling's fields.
    assert [f.name for f, _ in UndoTouch._fields()] != [f.name for f, _ in _Note._fields()]
    assert [(f.name, base) for f, base in _Note._fields()] == [("text", str)]
    assert _Note("a").pack() == "note:a" and _Note.unpack("note:b") == _Note("b")


def test_a_card_as_json_is_what_asdict_gives():
    card = Card(
        task_id="t-1",
        title="标题",
        body="正文",
        fields=(CardField("客户", "华东建材"), CardField("阶段", "报价")),
        buttons=(Button("确认", "undo:1", ButtonStyle.PRIMARY), Button("取消", "cancel:2")),
        choice_mode=ChoiceMode.MULTIPLE,
        options=(Button("价格", "price"),),
        submit=Button("提交", "answer:3", ButtonStyle.DANGER),
        closed_note="",
    )
    assert card.to_json() == asdict(card)
    assert Card.from_json(card.to_json()) == card
    plain = Card(task_id="t-2", title="只有标题")
    assert plain.to_json() == asdict(plain)
    assert json.dumps(plain.closed("已处理").to_json(), ensure_ascii=False) == json.dumps(
        asdict(plain.closed("已处理")), ensure_ascii=False
    )
