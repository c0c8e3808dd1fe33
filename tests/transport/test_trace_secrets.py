"""The frame trace keeps passwords out: a trace is shared to debug a run."""

from __future__ import annotations

import io

import orjson

from fleetsim.simulator.trace import REDACTED, FrameTrace

SECRET = "Sup3r-Secret-Passw0rd-0815"


def _traced(frame: object) -> tuple[bytes, dict[str, object]]:
    stream = io.BytesIO()
    trace = FrameTrace(stream, lambda: "2026-01-15T12:00:00.000Z")
    text = orjson.dumps(frame).decode()
    trace.write("CP1", "received", text)
    line = stream.getvalue()
    return line, orjson.loads(line)


def test_a_new_basic_auth_password_is_redacted() -> None:
    frame = [
        2,
        "m1",
        "SetVariables",
        {
            "setVariableData": [
                {
                    "component": {"name": "SecurityCtrlr"},
                    "variable": {"name": "BasicAuthPassword"},
                    "attributeValue": SECRET,
                },
                {
                    "component": {"name": "OCPPCommCtrlr"},
                    "variable": {"name": "HeartbeatInterval"},
                    "attributeValue": "60",
                },
            ]
        },
    ]
    line, record = _traced(frame)
    assert SECRET.encode() not in line
    items = record["frame"][3]["setVariableData"]  # type: ignore[index]
    assert [item["attributeValue"] for item in items] == [REDACTED, "60"]


def test_a_network_profile_password_is_redacted() -> None:
    frame = [
        2,
        "m2",
        "SetNetworkProfile",
        {"configurationSlot": 2, "connectionData": {"basicAuthPassword": SECRET}},
    ]
    line, record = _traced(frame)
    assert SECRET.encode() not in line
    assert record["frame"][3]["connectionData"]["basicAuthPassword"] == REDACTED  # type: ignore[index]


def test_other_frames_are_written_as_they_came() -> None:
    text = '[2, "m3", "Heartbeat", {}]'
    stream = io.BytesIO()
    FrameTrace(stream, lambda: "t").write("CP1", "sent", text)
    assert b'"frame":[2, "m3", "Heartbeat", {}]' in stream.getvalue()


def test_no_repr_shows_a_password() -> None:
    from fleetsim.simulator.csms import CsmsConfig
    from fleetsim.simulator.station.blocks.security import SecurityState
    from fleetsim.simulator.transport import ConnectionSettings

    shown = [
        repr(ConnectionSettings(csms_url="ws://h/ocpp", basic_auth_password=SECRET)),
        repr(CsmsConfig(basic_auth_passwords=SECRET)),
        repr(CsmsConfig(basic_auth_passwords={"CP1": SECRET})),
        repr(SecurityState(working_password=SECRET)),
    ]
    assert not [text for text in shown if SECRET in text]
