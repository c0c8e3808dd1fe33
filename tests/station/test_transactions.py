"""Transactions as the CSMS sees them: starts, meter values, stops, seqNo (E, J)."""

from __future__ import annotations

import datetime as dt
from itertools import pairwise

import pytest
import trio
from trio.testing import MockClock

from fleetsim.simulator.ocpp import schema_set
from fleetsim.simulator.station import StationConfig
from tests.helpers import STATION_ID, busy_site, station_on_memory_link

# Test EVs that each want 4 kWh (20 % to 30 % of 40 kWh) and stay 30 minutes.
CABLE_FIRST = busy_site(dwell_s=1800, soc_start=0.2, target_soc=0.3)
TOKEN_FIRST = busy_site(dwell_s=1800, soc_start=0.2, target_soc=0.3, id_token_first_share=1.0)
REMOTE_ONLY = busy_site(dwell_s=1800, soc_start=0.2, target_soc=0.3, arrivals_per_evse_per_day=0)


def _events(messages: list[tuple[str, dict]], transaction_id: str) -> list[dict]:
    return [
        payload
        for action, payload in messages
        if action == "TransactionEvent"
        and payload["transactionInfo"]["transactionId"] == transaction_id
    ]


async def _first_ended_transaction(csms, within_s: float) -> str:  # type: ignore[no-untyped-def]
    with trio.fail_after(within_s):
        ended = await csms.wait_for_message(
            STATION_ID, "TransactionEvent", lambda p: p["eventType"] == "Ended"
        )
    return str(ended["transactionInfo"]["transactionId"])


async def test_cable_first_session_starts_on_plug_in_and_ends_on_unplug(
    autojump_clock: MockClock,
) -> None:
    config = StationConfig(meter_interval_s=300)
    async with station_on_memory_link(config, scenario=CABLE_FIRST) as (_station, csms):
        transaction_id = await _first_ended_transaction(csms, 4 * 3600)
        messages = list(csms.station(STATION_ID).messages)
        events = _events(messages, transaction_id)
        assert [e["seqNo"] for e in events] == list(range(len(events)))
        assert (events[0]["eventType"], events[0]["triggerReason"]) == ("Started", "CablePluggedIn")
        assert events[1]["triggerReason"] == "Authorized"
        assert events[1]["transactionInfo"]["chargingState"] == "Charging"
        assert "idToken" in events[1]
        assert events[-1]["triggerReason"] == "EVCommunicationLost"
        assert events[-1]["transactionInfo"]["stoppedReason"] == "EVDisconnected"
        # E02 order on the wire: Occupied, Started, Authorize, Updated(Authorized).
        actions = [action for action, _ in messages]
        started_at = messages.index(("TransactionEvent", events[0]))
        assert actions[started_at - 1] == "StatusNotification"
        assert actions[started_at + 1] == "Authorize"
        schemas = schema_set("2.1")
        for event in events:
            schemas.validate("TransactionEvent", "Request", event)


async def test_meter_values_come_every_tx_updated_interval_and_add_up(
    autojump_clock: MockClock,
) -> None:
    config = StationConfig(meter_interval_s=60)
    async with station_on_memory_link(config, scenario=CABLE_FIRST) as (_station, csms):
        transaction_id = await _first_ended_transaction(csms, 4 * 3600)
        events = _events(list(csms.station(STATION_ID).messages), transaction_id)
    periodic = [e for e in events if e["triggerReason"] == "MeterValuePeriodic"]
    # 4 kWh at 11 kW takes 1309 s, then the EV is full: 21 samples of 60 s while charging, and
    # the station keeps sampling (SuspendedEV) until the 1800 s dwell ends.
    assert len(periodic) == 29
    registers = [
        sample["value"]
        for e in periodic
        for sample in e["meterValue"][0]["sampledValue"]
        if sample["measurand"] == "Energy.Active.Import.Register"
    ]
    assert registers == sorted(registers)
    ended = events[-1]["meterValue"][0]["sampledValue"]
    assert ended[0]["measurand"] == "Energy.Active.Import.Register"
    assert ended[0]["value"] == pytest.approx(4_000, abs=0.1)
    assert ended[0]["context"] == "Transaction.End"
    suspended = [e for e in events if e["transactionInfo"].get("chargingState") == "SuspendedEV"]
    assert suspended[0]["triggerReason"] == "ChargingStateChanged"


async def test_id_token_first_session_starts_on_authorization(autojump_clock: MockClock) -> None:
    async with station_on_memory_link(scenario=TOKEN_FIRST) as (_station, csms):
        transaction_id = await _first_ended_transaction(csms, 4 * 3600)
        messages = list(csms.station(STATION_ID).messages)
        events = _events(messages, transaction_id)
    started = events[0]
    assert (started["eventType"], started["triggerReason"]) == ("Started", "Authorized")
    assert started["idToken"]["type"] == "ISO14443"
    assert events[1]["triggerReason"] == "CablePluggedIn"
    actions = [action for action, _ in messages]
    assert actions.index("Authorize") < messages.index(("TransactionEvent", started))
    assert [e["seqNo"] for e in events] == list(range(len(events)))


async def test_remote_start_then_remote_stop(autojump_clock: MockClock) -> None:
    async with station_on_memory_link(scenario=REMOTE_ONLY) as (_station, csms):
        answer = await csms.call(
            STATION_ID,
            "RequestStartTransaction",
            {"idToken": {"idToken": "REMOTE1", "type": "Central"}, "remoteStartId": 42},
        )
        assert answer["status"] == "Accepted"
        with trio.fail_after(120):
            started = await csms.wait_for_message(
                STATION_ID, "TransactionEvent", lambda p: p["eventType"] == "Started"
            )
            await csms.wait_for_message(
                STATION_ID,
                "TransactionEvent",
                lambda p: p["transactionInfo"].get("chargingState") == "Charging",
            )
        assert started["triggerReason"] == "RemoteStart"
        assert started["transactionInfo"]["remoteStartId"] == 42
        transaction_id = started["transactionInfo"]["transactionId"]
        stop = await csms.call(
            STATION_ID, "RequestStopTransaction", {"transactionId": transaction_id}
        )
        assert stop["status"] == "Accepted"
        with trio.fail_after(10):
            ended = await csms.wait_for_message(
                STATION_ID, "TransactionEvent", lambda p: p["eventType"] == "Ended"
            )
        assert ended["triggerReason"] == "RemoteStop"
        assert ended["transactionInfo"]["stoppedReason"] == "Remote"
        record = csms.station(STATION_ID).transactions[transaction_id]
        assert record.seq_nos_complete and record.ended


async def test_remote_start_without_ev_times_out(autojump_clock: MockClock) -> None:
    scenario = {**REMOTE_ONLY, "ev_fleet": {"remote_start_plugin_delay_s": None}}
    config = StationConfig(ev_connection_timeout_s=90)
    async with station_on_memory_link(config, scenario=scenario) as (_station, csms):
        await csms.call(
            STATION_ID,
            "RequestStartTransaction",
            {"idToken": {"idToken": "REMOTE1", "type": "Central"}, "remoteStartId": 1},
        )
        with trio.fail_after(200):
            ended = await csms.wait_for_message(
                STATION_ID, "TransactionEvent", lambda p: p["eventType"] == "Ended"
            )
        assert ended["triggerReason"] == "EVConnectTimeout"
        assert ended["transactionInfo"]["stoppedReason"] == "Timeout"


async def test_remote_stop_of_an_unknown_transaction_is_rejected(
    autojump_clock: MockClock,
) -> None:
    async with station_on_memory_link() as (_station, csms):
        answer = await csms.call(STATION_ID, "RequestStopTransaction", {"transactionId": "nope"})
        assert answer["status"] == "Rejected"


async def test_events_made_offline_are_delivered_in_order_after_reconnect(
    autojump_clock: MockClock,
) -> None:
    config = StationConfig(
        meter_interval_s=60, retry_backoff_wait_minimum_s=200, retry_backoff_random_range_s=0
    )
    async with station_on_memory_link(config, scenario=CABLE_FIRST) as (station, csms):
        with trio.fail_after(4 * 3600):
            started = await csms.wait_for_message(
                STATION_ID, "TransactionEvent", lambda p: p["eventType"] == "Started"
            )
        transaction_id = started["transactionInfo"]["transactionId"]
        await csms.disconnect(STATION_ID)
        with trio.fail_after(10):
            await csms.wait_disconnected(STATION_ID)
        # The connection comes back 200 s later; meanwhile the station kept metering.
        with trio.fail_after(4 * 3600):
            await csms.wait_for_message(
                STATION_ID,
                "TransactionEvent",
                lambda p: (
                    p["eventType"] == "Ended"
                    and p["transactionInfo"]["transactionId"] == transaction_id
                ),
            )
        record = csms.station(STATION_ID).transactions[transaction_id]
        assert record.seq_nos_complete
        assert record.seq_nos == sorted(record.seq_nos)
        assert record.offline_events >= 1
        assert csms.station(STATION_ID).boots == 1  # a reconnect is not a reboot
        await trio.sleep(1)
        assert not station.tx_queue


LONG_STAY = busy_site(dwell_s=4 * 3600, soc_start=0.2, target_soc=0.9, arrivals_per_evse_per_day=6)


def _epoch(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def _set_interval(csms, interval_s: int) -> None:  # type: ignore[no-untyped-def]
    answer = await csms.call(
        STATION_ID,
        "SetVariables",
        {
            "setVariableData": [
                {
                    "component": {"name": "SampledDataCtrlr"},
                    "variable": {"name": "TxUpdatedInterval"},
                    "attributeValue": str(interval_s),
                }
            ]
        },
    )
    assert answer["setVariableResult"][0]["attributeStatus"] == "Accepted"


async def test_a_new_tx_updated_interval_applies_from_the_next_sample_without_a_burst(
    autojump_clock: MockClock,
) -> None:
    config = StationConfig(meter_interval_s=300)
    periodic = lambda p: p["triggerReason"] == "MeterValuePeriodic"  # noqa: E731
    async with station_on_memory_link(config, scenario=LONG_STAY) as (station, csms):
        with trio.fail_after(24 * 3600):
            first = await csms.wait_for_message(STATION_ID, "TransactionEvent", periodic)
            await trio.sleep(100)  # 100 s into a 300 s period
            changed_at = station.clock.epoch_s()
            since = csms.station(STATION_ID).messages_received
            await _set_interval(csms, 30)
            await trio.sleep(125)
            shorter = [
                payload
                for action, payload in csms.station(STATION_ID).messages_since(since)
                if action == "TransactionEvent" and periodic(payload)
            ]
            # The old deadline was 200 s away: the first sample comes at once (the period it
            # missed is not replayed), then one every 30 s.
            times = [_epoch(p["timestamp"]) for p in shorter]
            assert times[0] - changed_at < 1.0
            assert [round(b - a) for a, b in pairwise(times)] == [30] * 4
            assert _epoch(first["timestamp"]) < changed_at

            since = csms.station(STATION_ID).messages_received
            raised_at = station.clock.epoch_s()
            await _set_interval(csms, 600)
            longer = await csms.wait_for_message(
                STATION_ID, "TransactionEvent", periodic, since=since
            )
            # Raised: the next sample is one new interval after the last one, not sooner.
            assert _epoch(longer["timestamp"]) - times[-1] == pytest.approx(600, abs=1)
            assert _epoch(longer["timestamp"]) > raised_at
