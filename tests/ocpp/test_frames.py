"""OCPP-J frames: what `dump` writes reads back the same, and what `parse` refuses, and how."""

from __future__ import annotations

import pytest

from fleetsim.simulator.ocpp import (
    MALFORMED_FRAME_KINDS,
    Call,
    CallError,
    CallResult,
    CallResultError,
    ErrorCode,
    Frame,
    FrameError,
    Send,
    dump,
    parse,
)
from fleetsim.simulator.ocpp.frames import MAX_MESSAGE_ID_LENGTH

ONE_OF_EACH_FRAME_TYPE: list[Frame] = [
    Call("19223201", "BootNotification", {"reason": "PowerUp", "chargingStation": {"model": "x"}}),
    CallResult("19223201", {"currentTime": "2026-01-15T06:00:00Z", "interval": 300}),
    CallError("19223201", "NotImplemented", "no such action", {"hint": "check the spelling"}),
    CallResultError("19223201", "FormatViolation", "unknown field colour", {}),
    Send("5", "NotifyPeriodicEventStream", {"id": 1, "pending": 0, "basetime": "x", "data": []}),
]


@pytest.mark.parametrize("frame", ONE_OF_EACH_FRAME_TYPE, ids=lambda frame: type(frame).__name__)
def test_every_frame_type_reads_back_as_the_frame_that_was_dumped(frame: Frame) -> None:
    assert parse(dump(frame)) == frame


@pytest.mark.parametrize("frame", ONE_OF_EACH_FRAME_TYPE, ids=lambda frame: type(frame).__name__)
def test_dump_writes_text_for_a_websocket_text_frame(frame: Frame) -> None:
    assert isinstance(dump(frame), str)


@pytest.mark.parametrize(
    ("frame", "type_number"),
    list(zip(ONE_OF_EACH_FRAME_TYPE, [2, 3, 4, 5, 6], strict=True)),
    ids=[type(frame).__name__ for frame in ONE_OF_EACH_FRAME_TYPE],
)
def test_dump_writes_the_message_type_number_first(frame: Frame, type_number: int) -> None:
    assert dump(frame).startswith(f"[{type_number},")


def test_parse_reads_bytes_as_well_as_text() -> None:
    assert parse(b'[2,"1","Heartbeat",{}]') == Call("1", "Heartbeat", {})


def test_a_message_id_of_exactly_36_characters_is_accepted() -> None:
    guid = "0f8fad5b-d9cb-469f-a165-70867728950e"
    assert len(guid) == MAX_MESSAGE_ID_LENGTH
    assert parse(f'[2,"{guid}","Heartbeat",{{}}]') == Call(guid, "Heartbeat", {})


#: (what is wrong, the text received, the code it must raise, the message id that can be read)
MALFORMED = [
    ("not JSON", "[2, '1', 'Heartbeat', {}]", ErrorCode.RPC_FRAMEWORK_ERROR, None),
    ("truncated JSON", '[2,"1","Heartbeat",{', ErrorCode.FORMAT_VIOLATION, "1"),
    (
        "truncated JSON, id escaped",
        '[2,"\\u0031","Heartbeat",{',
        ErrorCode.RPC_FRAMEWORK_ERROR,
        None,
    ),
    ("not UTF-8", b'[2,"1","Heartbeat",{"x":"\xff"}]', ErrorCode.FORMAT_VIOLATION, "1"),
    ("not UTF-8 at the start", b"\xff[2]", ErrorCode.RPC_FRAMEWORK_ERROR, None),
    ("a JSON object", '{"messageId":"1"}', ErrorCode.RPC_FRAMEWORK_ERROR, None),
    ("a JSON string", '"Heartbeat"', ErrorCode.RPC_FRAMEWORK_ERROR, None),
    ("an empty array", "[]", ErrorCode.RPC_FRAMEWORK_ERROR, None),
    ("only a type", "[2]", ErrorCode.RPC_FRAMEWORK_ERROR, None),
    ("id is a number", '[2,1,"Heartbeat",{}]', ErrorCode.RPC_FRAMEWORK_ERROR, None),
    ("id is null", '[2,null,"Heartbeat",{}]', ErrorCode.RPC_FRAMEWORK_ERROR, None),
    ("id is empty", '[2,"","Heartbeat",{}]', ErrorCode.FORMAT_VIOLATION, ""),
    ("id of 37 chars", f'[2,"{"a" * 37}","Heartbeat",{{}}]', ErrorCode.FORMAT_VIOLATION, "a" * 37),
    ("type is a string", '["2","1","Heartbeat",{}]', ErrorCode.RPC_FRAMEWORK_ERROR, "1"),
    ("type is a float", '[2.0,"1","Heartbeat",{}]', ErrorCode.RPC_FRAMEWORK_ERROR, "1"),
    ("type is a boolean", '[true,"1","Heartbeat",{}]', ErrorCode.RPC_FRAMEWORK_ERROR, "1"),
    ("unknown type 7", '[7,"1","Heartbeat",{}]', ErrorCode.MESSAGE_TYPE_NOT_SUPPORTED, "1"),
    ("unknown type 1", '[1,"1"]', ErrorCode.MESSAGE_TYPE_NOT_SUPPORTED, "1"),
    ("CALL of 2 elements", '[2,"1"]', ErrorCode.RPC_FRAMEWORK_ERROR, "1"),
    ("CALL of 3 elements", '[2,"1","Heartbeat"]', ErrorCode.RPC_FRAMEWORK_ERROR, "1"),
    ("CALL of 5 elements", '[2,"1","Heartbeat",{},{}]', ErrorCode.RPC_FRAMEWORK_ERROR, "1"),
    ("CALL action a number", '[2,"1",7,{}]', ErrorCode.RPC_FRAMEWORK_ERROR, "1"),
    ("CALL action empty", '[2,"1","",{}]', ErrorCode.RPC_FRAMEWORK_ERROR, "1"),
    ("CALL payload an array", '[2,"1","Heartbeat",[]]', ErrorCode.FORMAT_VIOLATION, "1"),
    ("CALL payload null", '[2,"1","Heartbeat",null]', ErrorCode.FORMAT_VIOLATION, "1"),
    (
        "SEND of 3 elements",
        '[6,"1","NotifyPeriodicEventStream"]',
        ErrorCode.RPC_FRAMEWORK_ERROR,
        "1",
    ),
    (
        "SEND payload a string",
        '[6,"1","NotifyPeriodicEventStream","x"]',
        ErrorCode.FORMAT_VIOLATION,
        "1",
    ),
    ("CALLRESULT of 2 elements", '[3,"1"]', ErrorCode.RPC_FRAMEWORK_ERROR, "1"),
    ("CALLRESULT of 4 elements", '[3,"1",{},{}]', ErrorCode.RPC_FRAMEWORK_ERROR, "1"),
    ("CALLRESULT payload a number", '[3,"1",42]', ErrorCode.FORMAT_VIOLATION, "1"),
    (
        "CALLERROR of 4 elements",
        '[4,"1","GenericError","oops"]',
        ErrorCode.RPC_FRAMEWORK_ERROR,
        "1",
    ),
    (
        "CALLERROR of 6 elements",
        '[4,"1","GenericError","oops",{},{}]',
        ErrorCode.RPC_FRAMEWORK_ERROR,
        "1",
    ),
    ("CALLERROR code a number", '[4,"1",500,"oops",{}]', ErrorCode.FORMAT_VIOLATION, "1"),
    (
        "CALLERROR description null",
        '[4,"1","GenericError",null,{}]',
        ErrorCode.FORMAT_VIOLATION,
        "1",
    ),
    (
        "CALLERROR details a list",
        '[4,"1","GenericError","oops",[]]',
        ErrorCode.FORMAT_VIOLATION,
        "1",
    ),
    (
        "CALLRESULTERROR of 3 elements",
        '[5,"1","FormatViolation"]',
        ErrorCode.RPC_FRAMEWORK_ERROR,
        "1",
    ),
    (
        "CALLRESULTERROR details a string",
        '[5,"1","FormatViolation","bad","x"]',
        ErrorCode.FORMAT_VIOLATION,
        "1",
    ),
]


@pytest.mark.parametrize(
    ("text", "code", "readable_id"),
    [case[1:] for case in MALFORMED],
    ids=[case[0] for case in MALFORMED],
)
def test_a_malformed_frame_raises_the_code_it_is_answered_with(
    text: str | bytes, code: ErrorCode, readable_id: str | None
) -> None:
    with pytest.raises(FrameError) as caught:
        parse(text)
    assert caught.value.code == code
    assert caught.value.message_id == readable_id


def test_a_call_with_a_readable_action_keeps_it_in_the_error() -> None:
    with pytest.raises(FrameError) as caught:
        parse('[2,"1","Reset","Immediate"]')
    assert (caught.value.action, caught.value.message_type) == ("Reset", 2)


def test_an_error_in_an_answer_frame_records_its_message_type() -> None:
    with pytest.raises(FrameError) as caught:
        parse('[3,"1",[]]')
    assert caught.value.message_type == 3


def test_the_error_description_says_what_was_wrong() -> None:
    with pytest.raises(FrameError) as caught:
        parse(f'[2,"{"a" * 40}","Heartbeat",{{}}]')
    assert "40" in caught.value.description


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("[2, 'n1', 'Heartbeat', {}]", "not_json"),
        ('[2, "n1", "Heartbeat", {', "not_json"),
        ('{"a": 1}', "not_array"),
        ("[2]", "bad_message_id"),
        ('[2, 17, "Heartbeat", {}]', "bad_message_id"),
        ('[2, "", "Heartbeat", {}]', "bad_message_id"),
        (f'[2, "{"x" * 37}", "Heartbeat", {{}}]', "message_id_too_long"),
        ('["2", "n1", "Heartbeat", {}]', "bad_message_type"),
        ('[9, "n1", "Heartbeat", {}]', "unknown_message_type"),
        ('[2, "n1", "Heartbeat"]', "bad_structure"),
        ('[2, "n1", "Heartbeat", []]', "bad_payload"),
    ],
)
def test_each_malformed_frame_names_its_kind(text: str, kind: str) -> None:
    with pytest.raises(FrameError) as caught:
        parse(text)
    assert caught.value.kind == kind
    assert kind in MALFORMED_FRAME_KINDS


def test_an_unreadable_id_keeps_the_message_type_that_could_be_read() -> None:
    with pytest.raises(FrameError) as caught:
        parse("[3, 17, {}]")
    assert (caught.value.message_id, caught.value.message_type) == (None, 3)


def test_truncated_json_keeps_the_message_type_and_id_its_head_shows() -> None:
    with pytest.raises(FrameError) as caught:
        parse('[3 , "abc-1" ,{"currentTime": "2026')
    assert (caught.value.message_id, caught.value.message_type) == ("abc-1", 3)
