"""What the CSMS records per station, how tests wait on it, and how it drives stations.

All over memory links on trio's MockClock: `attach` runs the same CSMS logic the WebSocket
server runs, without sockets.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
import pytest
import trio
from trio.testing import MockClock

from fleetsim.simulator.csms import (
    Csms,
    CsmsConfig,
    StationNotConnected,
    TransactionRecord,
    UnknownStation,
)
from fleetsim.simulator.link import Answer
from fleetsim.simulator.ocpp import CallErrorReceived, CallTimeout, LinkClosed
from fleetsim.simulator.transport import RpcLink, memory_channel_pair

ConnectStation = Callable[..., Awaitable[RpcLink]]

TS = "2025-06-01T08:00:00.000Z"
BOOT = {"reason": "PowerUp", "chargingStation": {"model": "FS-22", "vendorName": "fleetsim"}}


def status(evse_id: int, connector_id: int, connector_status: str) -> dict[str, Any]:
    return {
        "timestamp": TS,
        "connectorStatus": connector_status,
        "evseId": evse_id,
        "connectorId": connector_id,
    }


def transaction_event(
    transaction_id: str, seq_no: int, event_type: str = "Updated", **extra: Any
) -> dict[str, Any]:
    info: dict[str, Any] = {"transactionId": transaction_id}
    if event_type == "Ended":
        info["stoppedReason"] = "EVDisconnected"
    return {
        "eventType": event_type,
        "timestamp": TS,
        "triggerReason": {"Started": "CablePluggedIn", "Ended": "EVDeparted"}.get(
            event_type, "MeterValuePeriodic"
        ),
        "seqNo": seq_no,
        "transactionInfo": info,
        **extra,
    }


# -- connections --------------------------------------------------------------------------


async def test_a_connected_station_shows_its_version_and_a_disconnect_is_recorded(
    connect_station: ConnectStation, autojump_clock: MockClock
) -> None:
    csms = Csms()
    with trio.fail_after(5):
        link = await connect_station(csms, version="2.0.1")
        station = csms.station("CP1")
        assert (station.connected, station.version, station.subprotocol) == (
            True,
            "2.0.1",
            "ocpp2.0.1",
        )
        await link.aclose()
        await csms.wait_disconnected("CP1")
    assert (station.connected, station.connections, station.disconnections) == (False, 1, 1)
    assert not csms.is_connected("CP1")
    assert csms.statistics().stations_connected == 0


async def test_a_station_that_connects_again_replaces_its_old_connection(
    connect_station: ConnectStation, autojump_clock: MockClock
) -> None:
    csms = Csms()
    with trio.fail_after(5):
        old = await connect_station(csms)
        new = await connect_station(csms)
        await old.wait_closed()
        assert await new.call("Heartbeat", {})
    station = csms.station("CP1")
    assert (station.connected, station.connections, station.disconnections) == (True, 2, 1)
    assert csms.statistics().stations_connected == 1


async def test_wait_connected_returns_when_the_station_connects(
    connect_station: ConnectStation, nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    csms = Csms()
    connected_at: list[float] = []

    async def wait() -> None:
        await csms.wait_connected("CP1")
        connected_at.append(trio.current_time())

    nursery.start_soon(wait)
    with trio.fail_after(5):
        await trio.sleep(2)
        assert connected_at == []
        await connect_station(csms)
        await trio.sleep(0)
        await trio.sleep(0)
    assert connected_at == [pytest.approx(2)]


async def test_looking_up_a_station_that_never_connected_says_so() -> None:
    csms = Csms()
    with pytest.raises(UnknownStation, match="station CP9 has never connected") as caught:
        csms.station("CP9")
    assert isinstance(caught.value, KeyError)
    with pytest.raises(StationNotConnected, match=r"CP9 is not connected.*never connected"):
        await csms.call("CP9", "Reset", {"type": "Immediate"})


# -- messages and what follows from them ------------------------------------------------


async def test_messages_are_kept_in_order_and_connector_statuses_follow_them(
    connect_station: ConnectStation, autojump_clock: MockClock
) -> None:
    csms = Csms()
    connector_event = {
        "generatedAt": TS,
        "seqNo": 0,
        "eventData": [
            {
                "eventId": 1,
                "timestamp": TS,
                "trigger": "Delta",
                "actualValue": "Faulted",
                "eventNotificationType": "HardWiredNotification",
                "component": {"name": "Connector", "evse": {"id": 2, "connectorId": 1}},
                "variable": {"name": "AvailabilityState"},
            }
        ],
    }
    with trio.fail_after(5):
        link = await connect_station(csms)
        await link.call("BootNotification", BOOT)
        await link.call("StatusNotification", status(1, 1, "Available"))
        await link.call("StatusNotification", status(2, 1, "Available"))
        await link.call("StatusNotification", status(1, 1, "Occupied"))
        await link.call("NotifyEvent", connector_event)
    station = csms.station("CP1")
    assert station.actions() == [
        "BootNotification",
        "StatusNotification",
        "StatusNotification",
        "StatusNotification",
        "NotifyEvent",
    ]
    assert station.messages is not None
    assert station.messages[1].payload == status(1, 1, "Available")
    assert station.connectors == {(1, 1): "Occupied", (2, 1): "Faulted"}


async def test_the_message_record_is_bounded_but_the_count_goes_on(
    connect_station: ConnectStation, autojump_clock: MockClock
) -> None:
    csms = Csms(CsmsConfig(max_messages_per_station=3))
    with trio.fail_after(5):
        link = await connect_station(csms)
        await link.call("BootNotification", BOOT)
        for _ in range(4):
            await link.call("Heartbeat", {})
    station = csms.station("CP1")
    assert station.actions() == ["Heartbeat"] * 3
    assert (station.messages_received, station.boots) == (5, 1)


async def test_with_recording_off_state_is_kept_and_waits_see_new_messages(
    connect_station: ConnectStation, nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    csms = Csms(CsmsConfig(record_messages=False))
    with trio.fail_after(5):
        link = await connect_station(csms)
        await link.call("BootNotification", BOOT)
        nursery.start_soon(link.call, "StatusNotification", status(1, 1, "Available"))
        payload = await csms.wait_for_message("CP1", "StatusNotification")
    station = csms.station("CP1")
    assert payload["connectorStatus"] == "Available"
    assert (station.messages, station.actions(), station.messages_received) == (None, [], 2)
    assert station.boots == 1


async def test_transactions_record_seq_nos_event_types_and_their_end(
    connect_station: ConnectStation, autojump_clock: MockClock
) -> None:
    csms = Csms()
    with trio.fail_after(5):
        link = await connect_station(csms)
        await link.call(
            "TransactionEvent",
            transaction_event(
                "tx-1",
                0,
                "Started",
                evse={"id": 1, "connectorId": 1},
                idToken={"idToken": "AB12", "type": "ISO14443"},
            ),
        )
        await link.call("TransactionEvent", transaction_event("tx-1", 1))
        await link.call("TransactionEvent", transaction_event("tx-2", 0, "Started"))
        await link.call("TransactionEvent", transaction_event("tx-1", 2, offline=True))
        await link.call("TransactionEvent", transaction_event("tx-1", 3, "Ended"))
    transactions = csms.station("CP1").transactions
    tx = transactions["tx-1"]
    assert tx.seq_nos == [0, 1, 2, 3]
    assert tx.event_types == ["Started", "Updated", "Updated", "Ended"]
    assert (tx.ended, tx.stopped_reason, tx.evse_id, tx.id_token) == (
        True,
        "EVDisconnected",
        1,
        "AB12",
    )
    assert tx.offline_events == 1
    assert tx.seq_nos_complete
    assert not transactions["tx-2"].ended


def test_the_gap_check_names_the_seq_nos_that_never_arrived() -> None:
    tx = TransactionRecord("tx-1", seq_nos=[0, 1, 3, 3, 6])
    assert tx.missing_seq_nos() == [2, 4, 5]
    assert tx.duplicate_seq_nos() == [3]
    assert not tx.seq_nos_complete
    assert TransactionRecord("tx-2", seq_nos=[1, 0, 2, 2]).seq_nos_complete
    assert TransactionRecord("tx-3", seq_nos=[1, 2]).missing_seq_nos() == [0]
    assert not TransactionRecord("tx-4").seq_nos_complete


async def test_the_oldest_ended_transaction_is_forgotten_first(
    connect_station: ConnectStation, autojump_clock: MockClock
) -> None:
    csms = Csms(CsmsConfig(max_transactions_per_station=2))
    with trio.fail_after(5):
        link = await connect_station(csms)
        await link.call("TransactionEvent", transaction_event("open", 0, "Started"))
        await link.call("TransactionEvent", transaction_event("done", 0, "Started"))
        await link.call("TransactionEvent", transaction_event("done", 1, "Ended"))
        await link.call("TransactionEvent", transaction_event("new", 0, "Started"))
    assert list(csms.station("CP1").transactions) == ["open", "new"]


# -- waiting for messages -----------------------------------------------------------------


async def test_wait_for_message_finds_a_message_that_already_arrived(
    connect_station: ConnectStation, autojump_clock: MockClock
) -> None:
    csms = Csms()
    with trio.fail_after(5):
        link = await connect_station(csms)
        await link.call("BootNotification", BOOT)
        payload = await csms.wait_for_message("CP1", "BootNotification")
    assert payload == BOOT


async def test_wait_for_message_with_since_waits_for_a_new_one(
    connect_station: ConnectStation, nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    csms = Csms()

    async def heartbeat_later(link: RpcLink) -> None:
        await trio.sleep(30)
        await link.call("Heartbeat", {})

    with trio.fail_after(60):
        link = await connect_station(csms)
        await link.call("Heartbeat", {})
        seen = csms.station("CP1").messages_received
        nursery.start_soon(heartbeat_later, link)
        await csms.wait_for_message("CP1", "Heartbeat", since=seen)
    assert trio.current_time() == pytest.approx(30)
    assert csms.station("CP1").messages_received == 2


async def test_wait_for_message_applies_the_predicate_to_past_and_new_messages(
    connect_station: ConnectStation, nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    csms = Csms()

    async def send_statuses(link: RpcLink) -> None:
        for connector_status in ("Occupied", "Faulted"):
            await trio.sleep(1)
            await link.call("StatusNotification", status(1, 1, connector_status))

    def is_faulted(payload: Mapping[str, Any]) -> bool:
        return bool(payload["connectorStatus"] == "Faulted")

    with trio.fail_after(5):
        link = await connect_station(csms)
        await link.call("StatusNotification", status(1, 1, "Available"))
        nursery.start_soon(send_statuses, link)
        payload = await csms.wait_for_message("CP1", "StatusNotification", is_faulted)
    assert payload == status(1, 1, "Faulted")
    assert trio.current_time() == pytest.approx(2)


async def test_a_predicate_that_fails_raises_in_the_waiting_test_not_in_the_link(
    connect_station: ConnectStation, nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    csms = Csms()

    def broken(payload: Mapping[str, Any]) -> bool:
        return bool(payload["no such field"])

    async def heartbeat_later(link: RpcLink) -> None:
        await trio.sleep(1)
        await link.call("Heartbeat", {})

    with trio.fail_after(5):
        link = await connect_station(csms)
        nursery.start_soon(heartbeat_later, link)
        with pytest.raises(KeyError, match="no such field"):
            await csms.wait_for_message("CP1", "Heartbeat", broken)
        assert await link.call("Heartbeat", {})
    assert csms.station("CP1").internal_errors == 0


async def test_a_cancelled_wait_leaves_no_waiter_behind(
    connect_station: ConnectStation, autojump_clock: MockClock
) -> None:
    csms = Csms()
    with trio.fail_after(5):
        link = await connect_station(csms)
        with trio.move_on_after(1):
            await csms.wait_for_message("CP1", "Heartbeat")
        assert not csms._message_waiters
        await link.call("Heartbeat", {})


# -- driving stations ---------------------------------------------------------------------


async def test_csms_call_returns_the_station_answer(
    connect_station: ConnectStation, autojump_clock: MockClock
) -> None:
    received: list[tuple[str, Mapping[str, Any]]] = []

    def station_handler(action: str, payload: Mapping[str, Any]) -> Answer:
        received.append((action, payload))
        return Answer({"status": "Scheduled"})

    csms = Csms()
    with trio.fail_after(5):
        await connect_station(csms, handler=station_handler)
        answer = await csms.call("CP1", "Reset", {"type": "OnIdle"})
    assert answer == {"status": "Scheduled"}
    assert received == [("Reset", {"type": "OnIdle"})]


async def test_csms_call_raises_the_station_callerror(
    connect_station: ConnectStation, autojump_clock: MockClock
) -> None:
    csms = Csms()
    with trio.fail_after(5):
        await connect_station(csms)  # refuses everything with NotImplemented
        with pytest.raises(CallErrorReceived) as caught:
            await csms.call("CP1", "ClearCache", {})
    assert caught.value.code == "NotImplemented"


async def test_csms_call_times_out_when_the_station_never_answers(
    autojump_clock: MockClock, nursery: trio.Nursery
) -> None:
    csms = Csms()
    station_end, csms_end = memory_channel_pair()
    nursery.start_soon(csms.attach, "CP1", csms_end, "2.1")
    with trio.fail_after(100):
        await csms.wait_connected("CP1")
        with pytest.raises(CallTimeout):
            await csms.call("CP1", "ClearCache", {}, timeout_s=10)
    assert trio.current_time() == pytest.approx(10)
    assert orjson.loads(await station_end.receive_text())[2] == "ClearCache"


async def test_csms_call_to_a_station_that_left_says_it_is_not_connected(
    connect_station: ConnectStation, autojump_clock: MockClock
) -> None:
    csms = Csms()
    with trio.fail_after(5):
        link = await connect_station(csms)
        await link.aclose()
        await csms.wait_disconnected("CP1")
    with pytest.raises(StationNotConnected, match="its connection is closed"):
        await csms.call("CP1", "ClearCache", {})


async def test_csms_disconnect_closes_the_station_link(
    connect_station: ConnectStation, autojump_clock: MockClock
) -> None:
    csms = Csms()
    with trio.fail_after(5):
        link = await connect_station(csms)
        await csms.disconnect("CP1")
        await link.wait_closed()
        await csms.wait_disconnected("CP1")
        with pytest.raises(LinkClosed):
            await link.call("Heartbeat", {})


# -- broken stations ----------------------------------------------------------------------


async def test_a_schema_invalid_request_gets_its_callerror_is_counted_and_the_link_goes_on(
    connect_station: ConnectStation, autojump_clock: MockClock
) -> None:
    csms = Csms()
    with trio.fail_after(5):
        link = await connect_station(csms, validate_outgoing=False)
        with pytest.raises(CallErrorReceived) as missing:
            await link.call("BootNotification", {"reason": "PowerUp"})
        with pytest.raises(CallErrorReceived) as wrong_type:
            await link.call("StatusNotification", {**status(1, 1, "Available"), "evseId": "1"})
        with pytest.raises(CallErrorReceived) as out_of_enum:
            await link.call("StatusNotification", status(1, 1, "Sleepy"))
        assert await link.call("Heartbeat", {})
    assert missing.value.code == "OccurrenceConstraintViolation"
    assert wrong_type.value.code == "TypeConstraintViolation"
    assert out_of_enum.value.code == "PropertyConstraintViolation"
    station = csms.station("CP1")
    assert station.violations == {
        ("BootNotification", "OccurrenceConstraintViolation"): 1,
        ("StatusNotification", "TypeConstraintViolation"): 1,
        ("StatusNotification", "PropertyConstraintViolation"): 1,
    }
    assert station.violation_count == 3
    assert station.actions() == ["Heartbeat"]
    assert (station.boots, station.connectors) == (0, {})


async def test_a_2_0_1_station_sending_a_2_1_only_action_gets_not_implemented(
    connect_station: ConnectStation, autojump_clock: MockClock
) -> None:
    csms = Csms()
    with trio.fail_after(5):
        link = await connect_station(csms, version="2.0.1", validate_outgoing=False)
        with pytest.raises(CallErrorReceived) as caught:
            await link.call("VatNumberValidation", {"vatNumber": "NL123456789B01"})
    assert caught.value.code == "NotImplemented"


async def test_garbage_frames_are_answered_or_dropped_and_counted(
    nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    csms = Csms()
    station_end, csms_end = memory_channel_pair()
    nursery.start_soon(csms.attach, "CP1", csms_end, "2.1")
    with trio.fail_after(5):
        await station_end.send_text("this is not JSON")
        unreadable = orjson.loads(await station_end.receive_text())
        await station_end.send_text('[2, "7", "Heartbeat"]')
        reply = orjson.loads(await station_end.receive_text())
        await station_end.send_text('[2, "8", "Heartbeat", {}]')
        answer = orjson.loads(await station_end.receive_text())
    assert unreadable[:3] == [4, "-1", "RpcFrameworkError"]
    assert reply[:3] == [4, "7", "RpcFrameworkError"]
    assert answer[:2] == [3, "8"]
    station = csms.station("CP1")
    assert (station.frames_dropped, station.violation_count) == (1, 2)
    assert station.malformed_frames == {"not_json": 1, "bad_structure": 1}
    assert station.connected


async def test_one_station_breaking_the_rules_does_not_disturb_another(
    connect_station: ConnectStation, nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    csms = Csms()
    bad_end, csms_end = memory_channel_pair()
    nursery.start_soon(csms.attach, "BAD", csms_end, "2.1")
    with trio.fail_after(5):
        good = await connect_station(csms, "GOOD")
        for _ in range(3):
            await bad_end.send_text("\x00\xff{[")
        await bad_end.aclose()
        await csms.wait_disconnected("BAD")
        assert await good.call("BootNotification", BOOT)
    assert csms.station("BAD").frames_dropped == 3
    assert csms.station("GOOD").violation_count == 0
    assert csms.statistics().stations_connected == 1
