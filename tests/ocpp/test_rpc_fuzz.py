"""Property-based: at least 100,000 generated frames thrown at both ends of the RPC layer.

25,000 frames are drawn (`fuzz_frames.FRAMES`) and each is thrown as drawn, cut short twice and
doubled (`fuzz_frames.variants`).

Each frame goes to a station's session and to a CSMS's session, each with a CALL of its own
outstanding (so that a generated answer may match it).  Nothing may escape as an exception;
every reply must be a valid OCPP-J frame (`fuzz_frames.check_answer`); a frame left without a
reply must be one that OCPP-J never answers; and the session must still take the next valid
request and the answer to its own CALL.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fleetsim.simulator.ocpp import (
    CSMS_INITIATED,
    STATION_INITIATED,
    BadFrame,
    Call,
    CallAnswered,
    CallRejected,
    CallResult,
    Event,
    FrameError,
    IncomingCall,
    IncomingSend,
    InvalidAnswer,
    LateAnswer,
    OcppVersion,
    ResultRejected,
    RpcSession,
    dump,
    schema_set,
)
from tests.ocpp.fuzz_frames import (
    FRAMES,
    GET_VARIABLES,
    T0,
    check_answer,
    fuzz_settings,
    variants,
)

DRAWN_PER_EXAMPLE = 25
EXAMPLES = 1_000  # x 25 drawn frames x 4 variants = 100,000 frames

_STATUS = {"timestamp": T0, "connectorStatus": "Available", "evseId": 1, "connectorId": 1}


def _station(version: OcppVersion) -> RpcSession:
    session = RpcSession(schema_set(version), CSMS_INITIATED)
    session.start_call("Heartbeat", {}, now=0.0)  # message id "1"
    return session


def _csms(version: OcppVersion) -> RpcSession:
    session = RpcSession(schema_set(version), STATION_INITIATED)
    session.start_call("GetVariables", GET_VARIABLES, now=0.0)  # message id "1"
    return session


def _check(text: str | bytes, event: Event) -> None:
    if isinstance(event, BadFrame):
        if event.reply is not None:
            check_answer(text, event.reply)
        else:
            error = event.error
            message_type = error.message_type if isinstance(error, FrameError) else 6
            assert message_type in (3, 4, 5, 6), (text, event)
    elif isinstance(event, InvalidAnswer):
        assert event.message_id == "1", (text, event)
        if event.reply is not None:
            assert event.reply.startswith('[5,"1",'), event.reply
    else:
        assert isinstance(
            event,
            IncomingCall | IncomingSend | CallAnswered | CallRejected | LateAnswer | ResultRejected,
        ), event


def _still_works(session: RpcSession, incoming: str, answer_payload: dict[str, object]) -> None:
    """The session takes a valid request, and the answer to its own CALL if still open."""
    event = session.receive_text(incoming, now=2.0)
    assert isinstance(event, IncomingCall), event
    if session.call_outstanding is not None:
        answered = session.receive_text(dump(CallResult("1", answer_payload)), now=3.0)
        assert isinstance(answered, CallAnswered), answered


def test_no_generated_frame_breaks_the_rpc_layer() -> None:
    thrown = 0

    @fuzz_settings(EXAMPLES)
    @given(
        version=st.sampled_from(["2.1", "2.0.1"]),
        drawn=st.lists(FRAMES, min_size=DRAWN_PER_EXAMPLE, max_size=DRAWN_PER_EXAMPLE),
    )
    def throw(version: OcppVersion, drawn: list[str | bytes]) -> None:
        nonlocal thrown
        for text in (variant for frame in drawn for variant in variants(frame)):
            station = _station(version)
            _check(text, station.receive_text(text, now=1.0))
            _still_works(
                station, dump(Call("next", "GetVariables", GET_VARIABLES)), {"currentTime": T0}
            )
            csms = _csms(version)
            _check(text, csms.receive_text(text, now=1.0))
            _still_works(
                csms,
                dump(Call("next", "StatusNotification", _STATUS)),
                {
                    "getVariableResult": [
                        {
                            "attributeStatus": "Rejected",
                            "component": {"name": "OCPPCommCtrlr"},
                            "variable": {"name": "HeartbeatInterval"},
                        }
                    ]
                },
            )
            thrown += 1

    throw()
    assert thrown >= 100_000
