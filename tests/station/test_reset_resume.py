"""Transactions across a reboot and a lost connection: Reset ImmediateAndResume (B13, E17),
Reset Immediate (B12) and GetTransactionStatus (E14).

What is checked is what the CSMS sees: every TransactionEvent of a transaction, in the order it
arrived, with seqNos 0..n and an energy register that never goes back; no energy and no event
while the station is down; and GetTransactionStatus answered from the station's real offline
queue, filled by dropping the connection.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from fleetsim.simulator.csms import Csms, CsmsConfig
from fleetsim.simulator.ocpp import CallErrorReceived, ErrorCode, OcppVersion, RpcError
from fleetsim.simulator.station import Station, StationConfig
from tests.helpers import STATION_ID, busy_site, station_on_memory_link
from tests.station.steps import set_variable

VERSIONS = pytest.mark.parametrize("version", ["2.1", "2.0.1"])
#: EVs that charge for the whole of a two-hour stay (40 kWh from 10 % at 11 kW).
CHARGING = busy_site(dwell_s=2 * 3600, soc_start=0.1, target_soc=0.9)
REGISTER = "Energy.Active.Import.Register"

Payload = Mapping[str, Any]


def messages_now(csms: Csms) -> int:
    return csms.station(STATION_ID).messages_received


def epoch_s(timestamp: str) -> float:
    return dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def register_wh(event: Payload) -> float | None:
    """The Energy.Active.Import.Register an event carries, if it carries one."""
    for meter_value in event.get("meterValue", ()):
        for sample in meter_value["sampledValue"]:
            if sample.get("measurand", REGISTER) == REGISTER:
                return float(sample["value"])
    return None


def of_transaction(transaction_id: str, **fields: str) -> Callable[[Payload], bool]:
    """A TransactionEvent of `transaction_id` whose top-level fields equal `fields`."""

    def matches(event: Payload) -> bool:
        return event["transactionInfo"]["transactionId"] == transaction_id and all(
            event.get(name) == value for name, value in fields.items()
        )

    return matches


def events_of(csms: Csms, transaction_id: str, since: int = 0) -> list[Payload]:
    """The TransactionEvents of one transaction the CSMS received, in arrival order."""
    return [
        message.payload
        for message in csms.station(STATION_ID).messages_since(since)
        if message.action == "TransactionEvent"
        and message.payload["transactionInfo"]["transactionId"] == transaction_id
    ]


async def charging_transaction(csms: Csms) -> str:
    """The id of the first transaction, once energy flows and one meter value has come."""
    with trio.fail_after(4 * 3600):
        charging = await csms.wait_for_message(
            STATION_ID,
            "TransactionEvent",
            lambda p: p["transactionInfo"].get("chargingState") == "Charging",
        )
        transaction_id = str(charging["transactionInfo"]["transactionId"])
        await csms.wait_for_message(
            STATION_ID,
            "TransactionEvent",
            of_transaction(transaction_id, triggerReason="MeterValuePeriodic"),
        )
    return transaction_id


def assert_gap_free_and_monotonic(events: list[Payload]) -> list[float]:
    """seqNo 0..n in arrival order, each once; the register never goes back.  The registers."""
    assert [event["seqNo"] for event in events] == list(range(len(events)))
    registers = [wh for wh in map(register_wh, events) if wh is not None]
    assert registers == sorted(registers)
    return registers


# -- B13/E17: Reset ImmediateAndResume --------------------------------------------------------


@pytest.mark.parametrize(
    "reboot_s",
    # A quick reboot, and one longer than the metering interval: the EV would have been
    # sampled meanwhile, were the station not down.
    [5.0, 90.0],
)
async def test_immediate_and_resume_resumes_the_transaction_with_its_id_and_next_seq_no(
    autojump_clock: MockClock, reboot_s: float
) -> None:
    config = StationConfig(reboot_s=reboot_s, meter_interval_s=60)
    async with station_on_memory_link(config, scenario=CHARGING) as (station, csms):
        await set_variable(csms, "TxCtrlr", "ResumptionTimeout", "120")
        transaction_id = await charging_transaction(csms)
        since = messages_now(csms)
        answer = await csms.call(STATION_ID, "Reset", {"type": "ImmediateAndResume"})
        assert answer == {"status": "Accepted"}
        with trio.fail_after(reboot_s + 60):
            resumed = await csms.wait_for_message(
                STATION_ID,
                "TransactionEvent",
                of_transaction(transaction_id, triggerReason="TxResumed"),
                since=since,
            )
        assert station.evses[0].transaction is not None
        assert station.evses[0].transaction.id == transaction_id

        after = list(csms.station(STATION_ID).messages_since(since))
        actions = [message.action for message in after]
        paused_at = next(
            i
            for i, message in enumerate(after)
            if message.action == "TransactionEvent"
            and message.payload["triggerReason"] == "ResetCommand"
        )
        booted_at = actions.index("BootNotification")
        resumed_at = next(i for i, message in enumerate(after) if message.payload is resumed)
        assert paused_at < booted_at < resumed_at
        assert after[booted_at].payload["reason"] == "RemoteReset"
        # The CSMS heard of every connector again after the boot, before the resumption.
        assert "StatusNotification" in actions[booted_at:resumed_at]

        paused = after[paused_at].payload
        assert paused["eventType"] == "Updated"
        assert resumed["eventType"] == "Updated"
        assert resumed["transactionInfo"]["chargingState"] == "Charging"
        assert resumed["offline"] is True  # made on restart, before the station reconnected
        # Down for the reboot: no energy flowed and no event was made.
        down_s = epoch_s(resumed["timestamp"]) - epoch_s(paused["timestamp"])
        assert down_s == pytest.approx(reboot_s, abs=0.01)
        assert register_wh(resumed) == register_wh(paused)
        assert actions[paused_at + 1 : resumed_at].count("TransactionEvent") == 0

        with trio.fail_after(3 * 3600):
            ended = await csms.wait_for_message(
                STATION_ID, "TransactionEvent", of_transaction(transaction_id, eventType="Ended")
            )
        assert ended["transactionInfo"]["stoppedReason"] == "EVDisconnected"
        events = events_of(csms, transaction_id)
        registers = assert_gap_free_and_monotonic(events)
        # Energy flowed again after the reboot, at the EV's full rate (11 kW).
        resumed_wh = register_wh(resumed)
        assert resumed_wh is not None
        charged_after_s = epoch_s(ended["timestamp"]) - epoch_s(resumed["timestamp"])
        assert registers[-1] - resumed_wh == pytest.approx(11_000 * charged_after_s / 3600, 0.01)
        record = csms.station(STATION_ID).transactions[transaction_id]
        assert not record.duplicate_seq_nos()
        assert csms.station(STATION_ID).boots == 2


async def test_without_energy_transfer_resumption_the_transaction_resumes_suspended(
    autojump_clock: MockClock,
) -> None:
    async with station_on_memory_link(scenario=CHARGING) as (station, csms):
        await set_variable(csms, "TxCtrlr", "AllowEnergyTransferResumption", "false")
        transaction_id = await charging_transaction(csms)
        since = messages_now(csms)
        assert (await csms.call(STATION_ID, "Reset", {"type": "ImmediateAndResume"}))[
            "status"
        ] == "Accepted"
        with trio.fail_after(60):
            resumed = await csms.wait_for_message(
                STATION_ID,
                "TransactionEvent",
                of_transaction(transaction_id, triggerReason="TxResumed"),
                since=since,
            )
        assert resumed["transactionInfo"]["chargingState"] == "SuspendedEVSE"
        with trio.fail_after(3 * 3600):
            ended = await csms.wait_for_message(
                STATION_ID, "TransactionEvent", of_transaction(transaction_id, eventType="Ended")
            )
        events = events_of(csms, transaction_id)
        registers = assert_gap_free_and_monotonic(events)
        # Not a watt after the reboot, and the state said so all along.
        assert registers[-1] == register_wh(resumed)
        after = events[events.index(resumed) :]
        assert {event["transactionInfo"].get("chargingState") for event in after[:-1]} == {
            "SuspendedEVSE"
        }
        assert ended["transactionInfo"]["stoppedReason"] == "EVDisconnected"
        assert station.evses[0].power_w == 0.0


@pytest.mark.parametrize(
    ("config", "variable_value", "reason_code"),
    [
        (StationConfig(), "0", "NoResumption"),
        (StationConfig(reboot_s=120.0), None, "RebootTooLong"),
    ],
    ids=["resumption-timeout-0", "reboot-longer-than-resumption-timeout"],
)
async def test_immediate_and_resume_is_rejected_when_it_cannot_resume(
    autojump_clock: MockClock,
    config: StationConfig,
    variable_value: str | None,
    reason_code: str,
) -> None:
    async with station_on_memory_link(config, scenario=CHARGING) as (station, csms):
        if variable_value is not None:
            await set_variable(csms, "TxCtrlr", "ResumptionTimeout", variable_value)
        transaction_id = await charging_transaction(csms)
        answer = await csms.call(STATION_ID, "Reset", {"type": "ImmediateAndResume"})
        assert answer["status"] == "Rejected"
        assert answer["statusInfo"]["reasonCode"] == reason_code
        since = messages_now(csms)
        with trio.fail_after(600):
            await csms.wait_for_message(
                STATION_ID,
                "TransactionEvent",
                of_transaction(transaction_id, triggerReason="MeterValuePeriodic"),
                since=since,
            )
        assert csms.station(STATION_ID).boots == 1
        assert station.evses[0].power_w > 0


async def test_immediate_and_resume_without_a_transaction_reboots(
    autojump_clock: MockClock,
) -> None:
    async with station_on_memory_link() as (_station, csms):
        answer = await csms.call(STATION_ID, "Reset", {"type": "ImmediateAndResume"})
        assert answer == {"status": "Accepted"}
        with trio.fail_after(60):
            await csms.wait_for_message(
                STATION_ID, "BootNotification", lambda p: p["reason"] == "RemoteReset"
            )
        assert csms.station(STATION_ID).boots == 2


async def test_a_201_station_refuses_immediate_and_resume_as_its_schema_does(
    autojump_clock: MockClock,
) -> None:
    config = StationConfig(ocpp_version="2.0.1")
    # The CSMS sends what the 2.0.1 schema forbids; the station's link refuses it.
    csms_config = CsmsConfig(validate_outgoing=False)
    async with station_on_memory_link(
        config, csms_config, scenario=CHARGING, ocpp_version="2.0.1"
    ) as (station, csms):
        transaction_id = await charging_transaction(csms)
        with pytest.raises(CallErrorReceived):
            await csms.call(STATION_ID, "Reset", {"type": "ImmediateAndResume"})
        # Nor does it offer E17's variables.
        spec = station.device_model.spec
        assert spec.find(spec.lookup({"name": "TxCtrlr"}, {"name": "ResumptionTimeout"})) is None
        since = messages_now(csms)
        with trio.fail_after(600):
            await csms.wait_for_message(
                STATION_ID,
                "TransactionEvent",
                of_transaction(transaction_id, triggerReason="MeterValuePeriodic"),
                since=since,
            )
        assert csms.station(STATION_ID).boots == 1


async def test_an_ev_that_leaves_during_the_reboot_ends_its_transaction_after_it(
    autojump_clock: MockClock,
) -> None:
    config = StationConfig(reboot_s=50.0)
    async with station_on_memory_link(config, scenario=CHARGING) as (station, csms):
        transaction_id = await charging_transaction(csms)
        plugged = csms.station(STATION_ID).messages_since(0)
        started = next(
            m.payload
            for m in plugged
            if m.action == "TransactionEvent" and m.payload["eventType"] == "Started"
        )
        departure_s = epoch_s(started["timestamp"]) + CHARGING["sites"][0]["dwell_s"]["min"]
        await trio.sleep(departure_s - 20 - station.clock.epoch_s())
        since = messages_now(csms)
        assert (await csms.call(STATION_ID, "Reset", {"type": "ImmediateAndResume"}))[
            "status"
        ] == "Accepted"
        with trio.fail_after(120):
            ended = await csms.wait_for_message(
                STATION_ID,
                "TransactionEvent",
                of_transaction(transaction_id, eventType="Ended"),
                since=since,
            )
        events = events_of(csms, transaction_id, since)
        assert [event["triggerReason"] for event in events] == [
            "ResetCommand",
            "TxResumed",
            "EVCommunicationLost",
        ]
        # The station saw the EV gone once it was up again; nothing flowed meanwhile.
        assert epoch_s(ended["timestamp"]) == pytest.approx(epoch_s(events[0]["timestamp"]) + 50)
        assert register_wh(ended) == register_wh(events[0])
        assert_gap_free_and_monotonic(events_of(csms, transaction_id))
        assert station.evses[0].visit is None


# -- B12: Reset Immediate ends the transactions; nothing resumes ---------------------------------


@VERSIONS
async def test_an_immediate_reset_ends_the_transaction_and_the_ev_gets_nothing_more(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    config = StationConfig(ocpp_version=version)
    async with station_on_memory_link(config, scenario=CHARGING, ocpp_version=version) as (
        station,
        csms,
    ):
        transaction_id = await charging_transaction(csms)
        assert (await csms.call(STATION_ID, "Reset", {"type": "Immediate"}))["status"] == (
            "Accepted"
        )
        with trio.fail_after(60):
            await csms.wait_for_message(
                STATION_ID, "BootNotification", lambda p: p["reason"] == "RemoteReset"
            )
        events = events_of(csms, transaction_id)
        assert events[-1]["eventType"] == "Ended"
        assert events[-1]["triggerReason"] == "ResetCommand"
        assert events[-1]["transactionInfo"]["stoppedReason"] == "ImmediateReset"
        assert_gap_free_and_monotonic(events)
        # The EV is still plugged in after the reboot, without a transaction and without power.
        evse = station.evses[0]
        assert evse.plugged_connector is not None
        assert evse.transaction is None
        assert evse.power_w == 0.0
        assert csms.station(STATION_ID).connectors[(1, 1)] == "Occupied"


@VERSIONS
async def test_a_reboot_does_an_on_idle_reset_that_was_waiting(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    config = StationConfig(ocpp_version=version)
    stay = busy_site(dwell_s=1800, soc_start=0.1, target_soc=0.9, arrivals_per_evse_per_day=96)
    async with station_on_memory_link(config, scenario=stay, ocpp_version=version) as (
        _station,
        csms,
    ):
        await charging_transaction(csms)
        assert (await csms.call(STATION_ID, "Reset", {"type": "OnIdle"}))["status"] == "Scheduled"
        since = messages_now(csms)
        assert (await csms.call(STATION_ID, "Reset", {"type": "Immediate"}))["status"] == (
            "Accepted"
        )
        with trio.fail_after(60):
            await csms.wait_for_message(STATION_ID, "BootNotification", since=since)
        # Later transactions end without another reboot: the OnIdle reset is done.
        with trio.fail_after(12 * 3600):
            for _ in range(2):
                since = messages_now(csms)
                await csms.wait_for_message(
                    STATION_ID, "TransactionEvent", lambda p: p["eventType"] == "Ended", since=since
                )
        await trio.sleep(60)  # a reboot would have sent its BootNotification by now
        assert csms.station(STATION_ID).boots == 2


@VERSIONS
async def test_an_on_idle_reset_that_comes_due_offline_reboots_without_waiting_for_the_back_off(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    config = offline_for(version, 4 * 3600)
    async with station_on_memory_link(config, scenario=CHARGING, ocpp_version=version) as (
        station,
        csms,
    ):
        transaction_id = await charging_transaction(csms)
        assert (await csms.call(STATION_ID, "Reset", {"type": "OnIdle"}))["status"] == "Scheduled"
        await csms.disconnect(STATION_ID)
        # The EV leaves while the station is offline; its last transaction over, it reboots.
        with trio.fail_after(3 * 3600):
            boot = await csms.wait_for_message(
                STATION_ID, "BootNotification", lambda p: p["reason"] == "RemoteReset"
            )
            await trio.sleep(1)
        ended = next(
            event for event in events_of(csms, transaction_id) if event["eventType"] == "Ended"
        )
        assert ended["offline"] is True
        assert ended["transactionInfo"]["stoppedReason"] == "EVDisconnected"
        assert station.clock.epoch_s() - epoch_s(ended["timestamp"]) < station.config.reboot_s + 2
        assert boot["reason"] == "RemoteReset"
        assert not station.tx_queue


# -- E14: GetTransactionStatus ------------------------------------------------------------------


def refusing_the_first_offline_event() -> CsmsConfig:
    """A CSMS that answers the first event a station queued offline with a CALLERROR, so the
    station keeps it (and those behind it) queued for MessageAttemptInterval (E13)."""
    refused: list[int] = []

    def answer(station_id: str, payload: Mapping[str, Any]) -> Mapping[str, Any]:
        if payload.get("offline") and not refused:
            refused.append(payload["seqNo"])
            raise RpcError(ErrorCode.INTERNAL_ERROR, "the database is busy")
        return {}

    return CsmsConfig(response_overrides={"TransactionEvent": answer})


def offline_for(version: OcppVersion, offline_s: float) -> StationConfig:
    """A station that reconnects `offline_s` after the CSMS drops it."""
    return StationConfig(
        ocpp_version=version,
        retry_backoff_wait_minimum_s=offline_s,
        retry_backoff_random_range_s=0,
    )


async def status_of(csms: Csms, transaction_id: str | None) -> Mapping[str, Any]:
    payload = {} if transaction_id is None else {"transactionId": transaction_id}
    return await csms.call(STATION_ID, "GetTransactionStatus", payload)


async def drop_and_wait_for_the_refused_event(csms: Csms, station: Station) -> None:
    await csms.disconnect(STATION_ID)
    with trio.fail_after(3600):
        await csms.wait_for_message(
            STATION_ID, "TransactionEvent", lambda p: bool(p.get("offline"))
        )
    assert station.tx_queue  # held for the retry


@VERSIONS
async def test_transaction_status_of_a_running_transaction_with_queued_events(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(
        offline_for(version, 600),
        refusing_the_first_offline_event(),
        scenario=CHARGING,
        ocpp_version=version,
    ) as (station, csms):
        transaction_id = await charging_transaction(csms)
        await trio.sleep(1)  # the last event's answer reaches the station: nothing waits
        assert await status_of(csms, transaction_id) == {
            "ongoingIndicator": True,
            "messagesInQueue": False,
        }
        await drop_and_wait_for_the_refused_event(csms, station)
        assert await status_of(csms, transaction_id) == {
            "ongoingIndicator": True,
            "messagesInQueue": True,
        }
        assert await status_of(csms, None) == {"messagesInQueue": True}
        assert await status_of(csms, "not-a-transaction-here") == {
            "ongoingIndicator": False,
            "messagesInQueue": False,
        }
        since = messages_now(csms)
        with trio.fail_after(3600):
            # The retry, and the rest of the queue behind it, then a new sample made online.
            await csms.wait_for_message(
                STATION_ID,
                "TransactionEvent",
                lambda p: p["triggerReason"] == "MeterValuePeriodic" and "offline" not in p,
                since=since,
            )
            await trio.sleep(1)
        assert not station.tx_queue
        assert await status_of(csms, transaction_id) == {
            "ongoingIndicator": True,
            "messagesInQueue": False,
        }
        assert await status_of(csms, None) == {"messagesInQueue": False}
        assert csms.station(STATION_ID).transactions[transaction_id].seq_nos_complete


@VERSIONS
async def test_transaction_status_of_a_transaction_that_ended_offline(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    short_stay = busy_site(dwell_s=300, soc_start=0.1, target_soc=0.9, arrivals_per_evse_per_day=24)
    async with station_on_memory_link(
        offline_for(version, 900),
        refusing_the_first_offline_event(),
        scenario=short_stay,
        ocpp_version=version,
    ) as (station, csms):
        with trio.fail_after(24 * 3600):
            started = await csms.wait_for_message(
                STATION_ID, "TransactionEvent", lambda p: p["eventType"] == "Started"
            )
        transaction_id = str(started["transactionInfo"]["transactionId"])
        await drop_and_wait_for_the_refused_event(csms, station)
        # The EV left while the station was offline: over, but its Ended event still waits.
        assert station.evses[0].transaction is None or (
            station.evses[0].transaction.id != transaction_id
        )
        assert any(
            event["transactionInfo"]["transactionId"] == transaction_id
            and event["eventType"] == "Ended"
            for event in station.tx_queue
        )
        assert await status_of(csms, transaction_id) == {
            "ongoingIndicator": False,
            "messagesInQueue": True,
        }
        since = messages_now(csms)
        with trio.fail_after(3600):
            await csms.wait_for_message(
                STATION_ID,
                "TransactionEvent",
                of_transaction(transaction_id, eventType="Ended"),
                since=since,
            )
            await trio.sleep(1)  # its answer reaches the station
        assert all(
            event["transactionInfo"]["transactionId"] != transaction_id
            for event in station.tx_queue
        )
        assert await status_of(csms, transaction_id) == {
            "ongoingIndicator": False,
            "messagesInQueue": False,
        }
