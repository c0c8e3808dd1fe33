"""Clock-aligned meter values and the Ended event's samples (J01, J02), on simulated time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from itertools import pairwise
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from fleetsim.simulator.clock import SimClock
from fleetsim.simulator.csms import Csms
from fleetsim.simulator.ocpp import OcppVersion
from fleetsim.simulator.station import Station
from fleetsim.simulator.station.blocks import transactions
from fleetsim.simulator.station.evse import EndedMeterValues
from tests.helpers import STATION_ID, T0, busy_site, station_on_memory_link

VERSIONS = pytest.mark.parametrize("version", ["2.1", "2.0.1"])
#: No EV arrives by itself; a remote start's EV plugs in after a minute, charges 4 kWh at
#: 11 kW (1309 s) and leaves 1800 s after plugging in.
REMOTE_ONLY = busy_site(dwell_s=1800, soc_start=0.2, target_soc=0.3, arrivals_per_evse_per_day=0)
DRIVER = {"idToken": "DRIVER-1", "type": "ISO14443"}
Payload = Mapping[str, Any]


def epoch_s(timestamp: str) -> float:
    return dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def seconds_into_day(timestamp: str) -> float:
    return epoch_s(timestamp) % 86_400


async def set_variables(csms: Csms, *values: tuple[str, str, str]) -> None:
    answer = await csms.call(
        STATION_ID,
        "SetVariables",
        {
            "setVariableData": [
                {
                    "component": {"name": component},
                    "variable": {"name": variable},
                    "attributeValue": value,
                }
                for component, variable, value in values
            ]
        },
    )
    assert [r["attributeStatus"] for r in answer["setVariableResult"]] == ["Accepted"] * len(values)


def clock_aligned(payload: Payload) -> bool:
    return all(
        sample["context"] == "Sample.Clock"
        for value in payload["meterValue"]
        for sample in value["sampledValue"]
    )


async def next_aligned(csms: Csms, within_s: float) -> Payload:
    """The next clock-aligned MeterValues, waited for on simulated time."""
    seen = csms.station(STATION_ID).messages_received
    with trio.fail_after(within_s):
        return await csms.wait_for_message(STATION_ID, "MeterValues", clock_aligned, since=seen)


def received(csms: Csms, action: str, since: int = 0) -> list[Payload]:
    return [
        message.payload
        for message in csms.station(STATION_ID).messages_since(since)
        if message.action == action
    ]


def meter_clock(station: Station) -> Any:
    return station.peek_block_state(transactions.BLOCK)


async def remote_session(csms: Csms) -> tuple[Payload, list[Payload]]:
    """Start a remote session and wait for it to end: its Started event and all its events."""
    answer = await csms.call(
        STATION_ID, "RequestStartTransaction", {"idToken": DRIVER, "remoteStartId": 1}
    )
    assert answer["status"] == "Accepted"
    with trio.fail_after(3 * 3600):
        ended = await csms.wait_for_message(
            STATION_ID, "TransactionEvent", lambda p: p["eventType"] == "Ended"
        )
    transaction_id = ended["transactionInfo"]["transactionId"]
    events = [
        e
        for e in received(csms, "TransactionEvent")
        if e["transactionInfo"]["transactionId"] == transaction_id
    ]
    return events[0], events


# -- J01: clock-aligned values ---------------------------------------------------------------


@VERSIONS
async def test_clock_aligned_values_land_on_interval_boundaries_of_simulated_time(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(ocpp_version=version) as (_station, csms):
        await set_variables(csms, ("AlignedDataCtrlr", "Interval", "900"))
        values = [await next_aligned(csms, 901) for _ in range(3)]
    stamps = [value["meterValue"][0]["timestamp"] for value in values]
    # Test time starts at 12:00:00 UTC; the first boundary after the change is 12:15.
    assert [seconds_into_day(stamp) for stamp in stamps] == [
        12 * 3600 + 900,
        12 * 3600 + 1800,
        12 * 3600 + 2700,
    ]
    assert all(stamp.endswith(":00.000Z") for stamp in stamps)
    for value in values:
        assert value["evseId"] == 1
        samples = value["meterValue"][0]["sampledValue"]
        assert [s["measurand"] for s in samples] == [
            "Energy.Active.Import.Register",
            "Power.Active.Import",
        ]
        assert {s["context"] for s in samples} == {"Sample.Clock"}


async def test_intervals_that_do_not_divide_a_day_restart_at_midnight() -> None:
    clock = SimClock(T0)  # 12:00 UTC
    seven_hours_s = 7 * 3600
    # Boundaries of a day: 00:00, 07:00, 14:00, 21:00, then midnight again.
    assert transactions.aligned_boundary_s(clock, seven_hours_s, 0.0) == 2 * 3600
    assert transactions.aligned_boundary_s(clock, seven_hours_s, 9 * 3600) == 12 * 3600
    assert transactions.aligned_boundary_s(clock, seven_hours_s, 12 * 3600) == 19 * 3600
    # On a boundary, the next one is the one after.
    assert transactions.aligned_boundary_s(clock, 900, 0.0) == 900


async def test_a_new_interval_takes_effect_at_its_next_boundary(autojump_clock: MockClock) -> None:
    async with station_on_memory_link() as (station, csms):
        await set_variables(csms, ("AlignedDataCtrlr", "Interval", "900"))
        first = await next_aligned(csms, 901)  # 12:15
        await trio.sleep(60)
        await set_variables(csms, ("AlignedDataCtrlr", "Interval", "600"))
        then = [await next_aligned(csms, 601) for _ in range(2)]
        assert [seconds_into_day(v["meterValue"][0]["timestamp"]) for v in [first, *then]] == [
            12 * 3600 + 900,
            12 * 3600 + 1200,  # 12:20, the first multiple of 600 s after the change
            12 * 3600 + 1800,
        ]

        await set_variables(csms, ("AlignedDataCtrlr", "Interval", "0"))
        seen = csms.station(STATION_ID).messages_received
        await trio.sleep(2 * 3600)
        assert not received(csms, "MeterValues", seen)
        assert not meter_clock(station).running  # Interval 0: the timer is gone


@VERSIONS
async def test_enabled_false_stops_clock_aligned_values_and_true_resumes_them(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(ocpp_version=version) as (station, csms):
        await set_variables(csms, ("AlignedDataCtrlr", "Interval", "300"))
        await next_aligned(csms, 301)
        await set_variables(csms, ("AlignedDataCtrlr", "Enabled", "false"))
        seen = csms.station(STATION_ID).messages_received
        await trio.sleep(3600)
        assert not received(csms, "MeterValues", seen)
        assert not meter_clock(station).running

        await set_variables(csms, ("AlignedDataCtrlr", "Enabled", "true"))
        resumed = await next_aligned(csms, 301)
        assert seconds_into_day(resumed["meterValue"][0]["timestamp"]) % 300 == 0


async def test_a_station_without_clock_aligned_data_holds_no_timer(
    autojump_clock: MockClock,
) -> None:
    async with station_on_memory_link(scenario=REMOTE_ONLY) as (station, csms):
        await remote_session(csms)
        assert meter_clock(station) is None
        assert not [m for m in received(csms, "MeterValues") if clock_aligned(m)]


@VERSIONS
async def test_during_a_transaction_clock_aligned_values_are_meter_value_clock_events(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(scenario=REMOTE_ONLY, ocpp_version=version) as (_, csms):
        await set_variables(csms, ("AlignedDataCtrlr", "Interval", "300"))
        started, events = await remote_session(csms)
        await next_aligned(csms, 301)  # the EVSE is idle again
        meter_values = received(csms, "MeterValues")
        record = csms.station(STATION_ID).transactions[started["transactionInfo"]["transactionId"]]
        assert record.seq_nos_complete
    start_s, end_s = epoch_s(started["timestamp"]), epoch_s(events[-1]["timestamp"])
    clock_events = [e for e in events if e["triggerReason"] == "MeterValueClock"]
    stamps = [epoch_s(e["timestamp"]) for e in clock_events]
    boundaries = [s for s in range(int(start_s) + 1, int(end_s) + 1) if s % 300 == 0]
    assert stamps == boundaries and len(boundaries) >= 5
    for event in clock_events:
        assert event["eventType"] == "Updated"
        [value] = event["meterValue"]
        assert value["timestamp"] == event["timestamp"]
        assert {s["context"] for s in value["sampledValue"]} == {"Sample.Clock"}
    registers = [e["meterValue"][0]["sampledValue"][0]["value"] for e in clock_events]
    assert registers == sorted(registers) and registers[-1] == pytest.approx(4000, abs=0.1)
    # Outside the transaction the EVSE sends MeterValues instead, and none while it runs.
    idle_stamps = [epoch_s(m["meterValue"][0]["timestamp"]) for m in meter_values]
    assert idle_stamps and not [s for s in idle_stamps if start_s < s < end_s]
    assert all(s % 300 == 0 for s in idle_stamps)


# -- J02: the Ended event's samples ----------------------------------------------------------


def samples(value: Payload, measurand: str) -> list[float]:
    return [s["value"] for s in value["sampledValue"] if s["measurand"] == measurand]


@VERSIONS
async def test_the_ended_event_carries_samples_at_the_tx_ended_intervals(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(scenario=REMOTE_ONLY, ocpp_version=version) as (_, csms):
        await set_variables(
            csms,
            ("SampledDataCtrlr", "TxEndedInterval", "300"),
            ("AlignedDataCtrlr", "TxEndedInterval", "600"),
            ("AlignedDataCtrlr", "TxEndedMeasurands", "Energy.Active.Import.Register,SoC"),
        )
        started, events = await remote_session(csms)
    start_s = epoch_s(started["timestamp"])
    ended = events[-1]
    end_s = epoch_s(ended["timestamp"])
    values = ended["meterValue"]
    by_context: dict[str, list[Payload]] = {}
    for value in values:
        (context,) = {s["context"] for s in value["sampledValue"]}
        by_context.setdefault(context, []).append(value)
    [begin] = by_context["Transaction.Begin"]
    [end] = by_context["Transaction.End"]
    assert values[0] is begin and values[-1] is end
    assert epoch_s(begin["timestamp"]) == start_s
    periodic = [epoch_s(v["timestamp"]) for v in by_context["Sample.Periodic"]]
    assert periodic == [start_s + 300 * k for k in range(1, int((end_s - start_s) // 300) + 1)]
    aligned = [epoch_s(v["timestamp"]) for v in by_context["Sample.Clock"]]
    assert aligned == [s for s in range(int(start_s) + 1, int(end_s) + 1) if s % 600 == 0]
    assert all(samples(v, "SoC") for v in by_context["Sample.Clock"])
    stamps = [epoch_s(v["timestamp"]) for v in values]
    assert stamps == sorted(stamps)
    registers = [samples(v, "Energy.Active.Import.Register")[0] for v in values]
    assert registers == sorted(registers)
    assert registers[0] == 0 and registers[-1] == pytest.approx(4000, abs=0.1)


async def test_sampled_data_disabled_leaves_the_ended_event_without_samples(
    autojump_clock: MockClock,
) -> None:
    async with station_on_memory_link(scenario=REMOTE_ONLY) as (_, csms):
        await set_variables(
            csms,
            ("SampledDataCtrlr", "TxEndedInterval", "300"),
            ("SampledDataCtrlr", "Enabled", "false"),
        )
        _, events = await remote_session(csms)
    assert "meterValue" not in events[-1]


def test_a_long_transaction_keeps_evenly_spaced_samples_within_the_limit() -> None:
    kept = EndedMeterValues()
    for number in range(1000):
        kept.add({"timestamp": f"{number:06d}", "sampledValue": [{"value": number}]}, number)
    numbers = [int(value["timestamp"]) for value in kept.meter_values()]
    assert len(numbers) <= EndedMeterValues.LIMIT
    assert numbers[0] == 0
    steps = {b - a for a, b in pairwise(numbers)}
    assert len(steps) == 1  # evenly spaced
    assert numbers[-1] + steps.pop() >= 1000 - 8  # ... over the whole transaction
