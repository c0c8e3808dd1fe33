"""`RpcSession`: two endpoints joined by plain strings, with the time passed in by hand.

The station's session accepts the CSMS-initiated actions and the CSMS's session the
station-initiated ones, exactly as the link and the embedded CSMS build them.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from fleetsim.simulator.ocpp import (
    CSMS_INITIATED,
    STATION_INITIATED,
    BadFrame,
    Call,
    CallAnswered,
    CallError,
    CallRejected,
    CallResult,
    CallResultError,
    ErrorCode,
    IncomingCall,
    IncomingSend,
    InvalidAnswer,
    LateAnswer,
    LocalProtocolError,
    OcppVersion,
    ResultRejected,
    RpcSession,
    Send,
    dump,
    parse,
    schema_set,
)

T0 = "2026-01-15T06:00:00Z"
HEARTBEAT_ANSWER = {"currentTime": T0}
STATUS_NOTIFICATION = {
    "timestamp": T0,
    "connectorStatus": "Available",
    "evseId": 1,
    "connectorId": 1,
}
STREAM_DATA = {"id": 1, "pending": 0, "basetime": T0, "data": [{"t": 0.5, "v": "230.1"}]}


def session_pair(
    version: OcppVersion = "2.1", *, validate_outgoing: bool = True
) -> tuple[RpcSession, RpcSession]:
    """(station, csms): the two ends of one OCPP-J connection."""
    schemas = schema_set(version)
    station = RpcSession(schemas, CSMS_INITIATED, validate_outgoing=validate_outgoing)
    csms = RpcSession(schemas, STATION_INITIATED, validate_outgoing=validate_outgoing)
    return station, csms


def incoming_call(receiver: RpcSession, text: str, now: float = 0.0) -> IncomingCall:
    event = receiver.receive_text(text, now)
    assert isinstance(event, IncomingCall), event
    return event


# -- matching answers to CALLs -----------------------------------------------------------------


def test_callresult_is_matched_to_its_call_by_id_with_the_round_trip_time() -> None:
    station, csms = session_pair()
    call = incoming_call(csms, station.start_call("Heartbeat", {}, now=100.0), now=100.125)
    answered = station.receive_text(csms.answer(call, HEARTBEAT_ANSWER), now=100.25)
    assert answered == CallAnswered(call.message_id, "Heartbeat", HEARTBEAT_ANSWER, 0.25)
    assert station.call_outstanding is None


def test_each_call_gets_a_new_message_id() -> None:
    station, csms = session_pair()
    first = incoming_call(csms, station.start_call("Heartbeat", {}, now=0.0))
    station.receive_text(csms.answer(first, HEARTBEAT_ANSWER), now=1.0)
    second = incoming_call(csms, station.start_call("Heartbeat", {}, now=2.0))
    assert first.message_id != second.message_id


def test_callerror_ends_the_call_as_rejected_with_its_code() -> None:
    station, csms = session_pair()
    call = incoming_call(csms, station.start_call("Heartbeat", {}, now=10.0))
    error_text = dump(CallError(call.message_id, "GenericError", "database down", {}))
    rejected = station.receive_text(error_text, now=10.5)
    assert rejected == CallRejected(
        call.message_id, "Heartbeat", "GenericError", "database down", 0.5
    )
    assert station.call_outstanding is None


def test_a_second_call_while_one_is_outstanding_is_refused() -> None:
    station, _ = session_pair()
    station.start_call("Heartbeat", {}, now=0.0)
    with pytest.raises(LocalProtocolError, match="Heartbeat"):
        station.start_call("StatusNotification", STATUS_NOTIFICATION, now=1.0)
    assert station.call_outstanding == "Heartbeat"


def test_the_next_call_may_start_once_the_outstanding_one_is_answered() -> None:
    station, csms = session_pair()
    call = incoming_call(csms, station.start_call("Heartbeat", {}, now=0.0))
    station.receive_text(csms.answer(call, HEARTBEAT_ANSWER), now=1.0)
    station.start_call("StatusNotification", STATUS_NOTIFICATION, now=2.0)
    assert station.call_outstanding == "StatusNotification"


def test_each_direction_has_its_own_outstanding_call() -> None:
    station, csms = session_pair()
    from_station = incoming_call(csms, station.start_call("Heartbeat", {}, now=0.0))
    from_csms = incoming_call(station, csms.start_call("ClearCache", {}, now=0.0))
    station_answer = station.receive_text(csms.answer(from_station, HEARTBEAT_ANSWER), now=1.0)
    csms_answer = csms.receive_text(station.answer(from_csms, {"status": "Accepted"}), now=2.0)
    assert isinstance(station_answer, CallAnswered)
    assert station_answer.action == "Heartbeat"
    assert isinstance(csms_answer, CallAnswered)
    assert (csms_answer.action, csms_answer.round_trip_s) == ("ClearCache", 2.0)


def test_an_answer_after_abandon_call_is_late_and_the_next_call_still_matches() -> None:
    station, csms = session_pair()
    slow = incoming_call(csms, station.start_call("Heartbeat", {}, now=0.0))
    assert station.abandon_call() == "Heartbeat"
    assert station.call_outstanding is None
    nxt = incoming_call(csms, station.start_call("StatusNotification", STATUS_NOTIFICATION, 30.0))

    late = station.receive_text(csms.answer(slow, HEARTBEAT_ANSWER), now=31.0)
    answered = station.receive_text(csms.answer(nxt, {}), now=32.0)

    assert late == LateAnswer(slow.message_id, abandoned=True)
    assert answered == CallAnswered(nxt.message_id, "StatusNotification", {}, 2.0)


def test_a_late_callerror_after_abandon_call_is_late_too() -> None:
    station, csms = session_pair()
    slow = incoming_call(csms, station.start_call("Heartbeat", {}, now=0.0))
    station.abandon_call()
    late = station.receive_text(dump(CallError(slow.message_id, "GenericError", "", {})), 40.0)
    assert late == LateAnswer(slow.message_id, abandoned=True)


def test_abandon_call_with_nothing_outstanding_returns_none() -> None:
    station, _ = session_pair()
    assert station.abandon_call() is None


def test_an_answer_with_an_unknown_id_is_late_and_leaves_the_outstanding_call_open() -> None:
    station, csms = session_pair()
    call = incoming_call(csms, station.start_call("Heartbeat", {}, now=0.0))
    stray = station.receive_text(dump(CallResult("no-such-call", HEARTBEAT_ANSWER)), now=0.5)
    assert stray == LateAnswer("no-such-call", abandoned=False)
    assert station.call_outstanding == "Heartbeat"
    answered = station.receive_text(csms.answer(call, HEARTBEAT_ANSWER), now=1.0)
    assert isinstance(answered, CallAnswered)


# -- incoming CALLs that break the rules -------------------------------------------------------

#: (case, receiving side, action, payload, the code of the CALLERROR it is answered with)
INVALID_CALLS: list[tuple[str, str, str, dict[str, Any], ErrorCode]] = [
    ("required field missing", "station", "Reset", {}, ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION),
    (
        "nested required field missing",
        "station",
        "GetVariables",
        {"getVariableData": [{"component": {"name": "OCPPCommCtrlr"}, "variable": {}}]},
        ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
    ),
    (
        "array below minItems",
        "station",
        "ClearVariableMonitoring",
        {"id": []},
        ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
    ),
    (
        "string where an integer belongs",
        "station",
        "Reset",
        {"type": "Immediate", "evseId": "1"},
        ErrorCode.TYPE_CONSTRAINT_VIOLATION,
    ),
    (
        "string where an object belongs",
        "csms",
        "Heartbeat",
        {"customData": "fleetsim"},
        ErrorCode.TYPE_CONSTRAINT_VIOLATION,
    ),
    (
        "enum value not allowed",
        "station",
        "Reset",
        {"type": "Sometime"},
        ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    ),
    (
        "string too long",
        "station",
        "DataTransfer",
        {"vendorId": "v" * 256},
        ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    ),
    (
        "integer below minimum",
        "station",
        "Reset",
        {"type": "Immediate", "evseId": -1},
        ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    ),
    (
        "not a date-time",
        "csms",
        "StatusNotification",
        {**STATUS_NOTIFICATION, "timestamp": "yesterday"},
        ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    ),
    (
        "unknown property",
        "station",
        "Reset",
        {"type": "Immediate", "colour": "red"},
        ErrorCode.FORMAT_VIOLATION,
    ),
    (
        "station-only action sent to the station",
        "station",
        "BootNotification",
        {"reason": "PowerUp", "chargingStation": {"model": "m", "vendorName": "v"}},
        ErrorCode.NOT_SUPPORTED,
    ),
    (
        "CSMS-only action sent to the CSMS",
        "csms",
        "Reset",
        {"type": "Immediate"},
        ErrorCode.NOT_SUPPORTED,
    ),
    ("unknown action", "station", "Teleport", {}, ErrorCode.NOT_IMPLEMENTED),
    ("misspelt action", "csms", "HeartBeat", {}, ErrorCode.NOT_IMPLEMENTED),
]


@pytest.mark.parametrize(
    ("receiver", "action", "payload", "code"),
    [case[1:] for case in INVALID_CALLS],
    ids=[case[0] for case in INVALID_CALLS],
)
def test_an_invalid_incoming_call_is_answered_with_the_callerror_of_its_fault(
    receiver: str, action: str, payload: dict[str, Any], code: ErrorCode
) -> None:
    station, csms = session_pair()
    session = station if receiver == "station" else csms
    event = session.receive_text(dump(Call("4711", action, payload)), now=0.0)
    assert isinstance(event, BadFrame), event
    assert (event.error.code, event.action) == (code, action)
    assert event.reply is not None
    reply = parse(event.reply)
    assert isinstance(reply, CallError)
    assert (reply.message_id, reply.code) == ("4711", code.value)


def test_a_21_only_action_is_not_implemented_in_201() -> None:
    station, _ = session_pair("2.0.1")
    text = dump(Call("8", "ClearTariffs", {}))
    event = station.receive_text(text, now=0.0)
    assert isinstance(event, BadFrame)
    assert event.error.code == ErrorCode.NOT_IMPLEMENTED


def test_a_valid_incoming_call_is_handed_over_unchanged() -> None:
    station, _ = session_pair()
    event = station.receive_text(dump(Call("9", "Reset", {"type": "OnIdle"})), now=0.0)
    assert event == IncomingCall("9", "Reset", {"type": "OnIdle"})


# -- answers that break the schema -------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "answered_with_callresulterror"), [("2.1", True), ("2.0.1", False)]
)
def test_an_invalid_callresult_ends_the_call_as_an_invalid_answer(
    version: OcppVersion, answered_with_callresulterror: bool
) -> None:
    station, csms = session_pair(version)
    call = incoming_call(csms, station.start_call("Heartbeat", {}, now=5.0))
    event = station.receive_text(dump(CallResult(call.message_id, {})), now=5.5)
    assert isinstance(event, InvalidAnswer), event
    assert (event.message_id, event.action) == (call.message_id, "Heartbeat")
    assert event.round_trip_s == 0.5
    assert event.error.code == ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION
    assert station.call_outstanding is None
    if answered_with_callresulterror:
        assert event.reply is not None
        reply = parse(event.reply)
        assert isinstance(reply, CallResultError)
        assert (reply.message_id, reply.code) == (call.message_id, "OccurrenceConstraintViolation")
    else:
        assert event.reply is None


def test_a_callresult_that_breaks_the_frame_structure_ends_the_call_without_a_reply() -> None:
    station, csms = session_pair()
    call = incoming_call(csms, station.start_call("Heartbeat", {}, now=0.0))
    event = station.receive_text(f'[3,"{call.message_id}",[]]', now=2.0)
    assert isinstance(event, InvalidAnswer), event
    assert (event.action, event.error.code, event.reply) == (
        "Heartbeat",
        ErrorCode.FORMAT_VIOLATION,
        None,
    )
    assert station.call_outstanding is None


# -- SEND and CALLRESULTERROR, new in OCPP 2.1 -------------------------------------------------


def test_send_is_delivered_without_an_answer_in_21() -> None:
    station, csms = session_pair()
    event = csms.receive_text(station.start_send("NotifyPeriodicEventStream", STREAM_DATA), 0.0)
    assert isinstance(event, IncomingSend)
    assert (event.action, event.payload) == ("NotifyPeriodicEventStream", STREAM_DATA)


def test_an_invalid_send_is_reported_but_never_answered() -> None:
    _, csms = session_pair()
    text = dump(Send("3", "NotifyPeriodicEventStream", {"id": 1}))
    event = csms.receive_text(text, now=0.0)
    assert isinstance(event, BadFrame)
    assert (event.error.code, event.reply) == (ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION, None)


def test_callresulterror_reports_that_our_answer_was_rejected_in_21() -> None:
    station, _ = session_pair()
    text = dump(CallResultError("12", "FormatViolation", "unknown field", {}))
    assert station.receive_text(text, now=0.0) == ResultRejected(
        "12", "FormatViolation", "unknown field"
    )


@pytest.mark.parametrize(
    "frame",
    [
        Send("3", "NotifyPeriodicEventStream", STREAM_DATA),
        CallResultError("3", "FormatViolation", "unknown field", {}),
    ],
    ids=["SEND", "CALLRESULTERROR"],
)
def test_21_frame_types_are_not_supported_in_201(frame: Send | CallResultError) -> None:
    _, csms = session_pair("2.0.1")
    event = csms.receive_text(dump(frame), now=0.0)
    assert isinstance(event, BadFrame), event
    assert event.error.code == ErrorCode.MESSAGE_TYPE_NOT_SUPPORTED
    assert event.reply is not None
    reply = parse(event.reply)
    assert isinstance(reply, CallError)
    assert (reply.message_id, reply.code) == ("3", "MessageTypeNotSupported")


def test_a_201_session_refuses_to_start_a_send() -> None:
    station, _ = session_pair("2.0.1")
    with pytest.raises(LocalProtocolError):
        station.start_send("NotifyPeriodicEventStream", STREAM_DATA)


# -- frames that cannot be read ----------------------------------------------------------------


LONG_ID = "x" * 37


@pytest.mark.parametrize(
    ("text", "kind", "reply_id", "code"),
    [
        ("not json at all", "not_json", "-1", "RpcFrameworkError"),
        ('[2, "n1", "Heartbeat", {', "not_json", "n1", "FormatViolation"),
        ("[]", "bad_message_id", "-1", "RpcFrameworkError"),
        ('{"id": "1"}', "not_array", "-1", "RpcFrameworkError"),
        ('[2, 17, "Heartbeat", {}]', "bad_message_id", "-1", "RpcFrameworkError"),
        ('[2, null, "Heartbeat", {}]', "bad_message_id", "-1", "RpcFrameworkError"),
        ('[2, "", "Heartbeat", {}]', "bad_message_id", "", "FormatViolation"),
        (f'[2,"{LONG_ID}","Reset",{{}}]', "message_id_too_long", LONG_ID, "FormatViolation"),
        ('["two", ["n1"], "Heartbeat", {}]', "bad_message_id", "-1", "RpcFrameworkError"),
    ],
    ids=[
        "not JSON",
        "truncated JSON",
        "empty array",
        "object",
        "id a number",
        "id null",
        "id empty",
        "id too long",
        "nothing readable",
    ],
)
def test_every_frame_that_could_be_a_call_is_answered_with_a_callerror(
    text: str, kind: str, reply_id: str, code: str
) -> None:
    """OCPP-J: a CALLERROR answers a corrupt message, to its id when that can be read (even
    one that breaks the rules, so the sender can match it) and to "-1" when it cannot."""
    station, _ = session_pair()
    event = station.receive_text(text, now=0.0)
    assert isinstance(event, BadFrame), event
    assert event.kind == kind
    assert event.reply is not None
    reply = orjson.loads(event.reply)
    assert reply[:3] == [4, reply_id, code]
    assert 0 < len(reply[3]) <= 255
    assert reply[4] == {}
    assert event.id_readable == (reply_id != "-1")


@pytest.mark.parametrize(
    "text",
    ['[3, 17, {"currentTime": "x"}]', '[4, null, "GenericError", "", {}]', "[5, 1]", "[6]"],
)
def test_a_broken_answer_or_send_without_a_readable_id_gets_no_reply(text: str) -> None:
    """Answers and SENDs are never answered: a CALLERROR to a broken CALLERROR could ping-pong."""
    station, _ = session_pair()
    event = station.receive_text(text, now=0.0)
    assert isinstance(event, BadFrame), event
    assert event.reply is None


def test_a_truncated_answer_still_ends_the_call_it_answers() -> None:
    station, csms = session_pair()
    call = incoming_call(csms, station.start_call("Heartbeat", {}, now=0.0))
    event = station.receive_text(f'[3,"{call.message_id}",{{"currentTime": "2026', now=1.0)
    assert isinstance(event, InvalidAnswer), event
    assert (event.action, event.error.code, event.reply) == (
        "Heartbeat",
        ErrorCode.FORMAT_VIOLATION,
        None,
    )
    assert station.call_outstanding is None


@pytest.mark.parametrize(
    ("payload", "kind", "code"),
    [
        ({"type": "Sometime"}, "schema", "PropertyConstraintViolation"),
        ({"type": "Immediate", "colour": "red"}, "schema", "FormatViolation"),
        ({"type": 1}, "schema", "TypeConstraintViolation"),
        ({}, "schema", "OccurrenceConstraintViolation"),
    ],
)
def test_a_call_that_breaks_the_schema_is_counted_as_schema(
    payload: dict[str, Any], kind: str, code: str
) -> None:
    station, _ = session_pair()
    event = station.receive_text(dump(Call("9", "Reset", payload)), now=0.0)
    assert isinstance(event, BadFrame)
    assert event.kind == kind
    assert event.reply is not None
    reply = parse(event.reply)
    assert isinstance(reply, CallError)
    assert (reply.message_id, reply.code) == ("9", code)


@pytest.mark.parametrize(
    ("action", "kind", "code"),
    [
        ("Frobnicate", "unknown_action", "NotImplemented"),
        ("Heartbeat", "wrong_direction", "NotSupported"),
    ],
)
def test_unknown_and_wrong_way_actions_have_their_own_kind(
    action: str, kind: str, code: str
) -> None:
    station, _ = session_pair()
    event = station.receive_text(dump(Call("9", action, {})), now=0.0)
    assert isinstance(event, BadFrame)
    assert event.kind == kind
    assert event.reply is not None
    reply = parse(event.reply)
    assert isinstance(reply, CallError)
    assert reply.code == code


def test_a_broken_call_with_a_readable_id_is_answered_with_a_callerror() -> None:
    station, _ = session_pair()
    event = station.receive_text('[2,"77","Reset"]', now=0.0)
    assert isinstance(event, BadFrame)
    assert event.reply is not None
    reply = parse(event.reply)
    assert isinstance(reply, CallError)
    assert (reply.message_id, reply.code) == ("77", "RpcFrameworkError")


def test_an_unknown_message_type_is_answered_with_message_type_not_supported() -> None:
    station, _ = session_pair()
    event = station.receive_text('[7,"78","Reset",{}]', now=0.0)
    assert isinstance(event, BadFrame)
    assert event.reply is not None
    reply = parse(event.reply)
    assert isinstance(reply, CallError)
    assert (reply.message_id, reply.code) == ("78", "MessageTypeNotSupported")


# -- validating what we send -------------------------------------------------------------------


def test_validate_outgoing_refuses_to_build_an_invalid_call() -> None:
    station, _ = session_pair(validate_outgoing=True)
    with pytest.raises(LocalProtocolError, match="HeartbeatRequest"):
        station.start_call("Heartbeat", {"colour": "red"}, now=0.0)
    assert station.call_outstanding is None
    station.start_call("Heartbeat", {}, now=1.0)


def test_validate_outgoing_refuses_to_build_an_invalid_callresult() -> None:
    station, csms = session_pair(validate_outgoing=True)
    call = incoming_call(csms, station.start_call("Heartbeat", {}, now=0.0))
    with pytest.raises(LocalProtocolError):
        csms.answer(call, {"currentTime": "soon"})


def test_without_validate_outgoing_an_invalid_call_goes_out_and_the_peer_refuses_it() -> None:
    station, csms = session_pair(validate_outgoing=False)
    text = station.start_call("Heartbeat", {"colour": "red"}, now=0.0)
    assert parse(text) == Call("1", "Heartbeat", {"colour": "red"})
    event = csms.receive_text(text, now=0.0)
    assert isinstance(event, BadFrame)
    assert event.error.code == ErrorCode.FORMAT_VIOLATION
