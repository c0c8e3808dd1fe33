"""Reservations as the CSMS sees them (H01-H04): what a reserved EVSE reports, whom it takes,
how a reservation ends, and why one is refused."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import pytest
import trio
import trio.testing
from trio.testing import MockClock

from fleetsim.ev_models import EvArrival, load_catalogue
from fleetsim.simulator.csms import Csms, CsmsConfig
from fleetsim.simulator.ocpp import OcppVersion
from fleetsim.simulator.station import Station
from fleetsim.simulator.station.ev_driver import ev_arrives
from tests.helpers import STATION_ID, TEST_EV, busy_site, station_on_memory_link
from tests.station.steps import set_variable

VERSIONS = pytest.mark.parametrize("version", ["2.1", "2.0.1"])
DRIVER = {"idToken": "DRIVER-1", "type": "ISO14443"}
OTHER = {"idToken": "DRIVER-2", "type": "ISO14443"}
#: Simulated time starts at 12:00 UTC.
IN_AN_HOUR = "2026-01-15T13:00:00Z"
TONIGHT = "2026-01-15T23:00:00Z"
#: Two EVSEs of one type, and two of different types.
TWO_EVSES: dict[str, Any] = {"stations": {"count": 1, "evses": [{}, {}]}}
TYPE2_AND_CCS: dict[str, Any] = {"stations": {"count": 1, "evses": [{}, {"connectors": ["cCCS2"]}]}}
TEST_MODEL = load_catalogue({"test-ev": TEST_EV})["test-ev"]


def messages_now(csms: Csms) -> int:
    return csms.station(STATION_ID).messages_received


def is_status(evse_id: int, status: str) -> Callable[[Mapping[str, Any]], bool]:
    return lambda p: p["evseId"] == evse_id and p["connectorStatus"] == status


def is_started(payload: Mapping[str, Any]) -> bool:
    return bool(payload["eventType"] == "Started")


async def reserve(csms: Csms, reservation_id: int, **fields: Any) -> str:
    """ReserveNow for DRIVER until IN_AN_HOUR unless `fields` say otherwise; the status."""
    request = {"id": reservation_id, "expiryDateTime": IN_AN_HOUR, "idToken": DRIVER, **fields}
    answer = await csms.call(STATION_ID, "ReserveNow", request)
    return str(answer["status"])


async def cancel(csms: Csms, reservation_id: int) -> str:
    answer = await csms.call(STATION_ID, "CancelReservation", {"reservationId": reservation_id})
    return str(answer["status"])


async def remote_start(csms: Csms, token: Mapping[str, str], **fields: Any) -> str:
    request = {"remoteStartId": 1, "idToken": token, **fields}
    answer = await csms.call(STATION_ID, "RequestStartTransaction", request)
    return str(answer["status"])


async def evse_state(csms: Csms, evse_id: int) -> str:
    """The EVSE's AvailabilityState, read over OCPP."""
    answer = await csms.call(
        STATION_ID,
        "GetVariables",
        {
            "getVariableData": [
                {
                    "component": {"name": "EVSE", "evse": {"id": evse_id}},
                    "variable": {"name": "AvailabilityState"},
                }
            ]
        },
    )
    return str(answer["getVariableResult"][0]["attributeValue"])


def driver_arrives(
    station: Station, evse_id: int, token: Mapping[str, str], *, token_first: bool
) -> None:
    """A driver with `token` comes to the EVSE, as the world sends one (not asking is_free)."""
    now_s = station.clock.sim_now()
    arrival = EvArrival(
        arrival_s=now_s,
        model=TEST_MODEL,
        soc_start=0.2,
        target_soc=0.3,
        min_soc=0.1,
        departure_s=now_s + 1800,
        id_token=token["idToken"],
        id_token_type=token["type"],
        id_token_first=token_first,
        uses_iso15118_20=False,
    )
    ev_arrives(station, station.evses[evse_id - 1], arrival)


# -- H01: reserving an EVSE ---------------------------------------------------------------------


@VERSIONS
async def test_a_reserved_evse_reports_reserved_and_takes_no_other_driver(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(ocpp_version=version) as (_station, csms):
        since = messages_now(csms)
        assert await reserve(csms, 1, evseId=1) == "Accepted"
        with trio.fail_after(30):
            await csms.wait_for_message(
                STATION_ID, "StatusNotification", is_status(1, "Reserved"), since=since
            )
        assert await evse_state(csms, 1) == "Reserved"
        assert await remote_start(csms, OTHER, evseId=1) == "Rejected"
        assert await remote_start(csms, OTHER) == "Rejected"  # no other EVSE
        assert await reserve(csms, 2, evseId=1, idToken=OTHER) == "Occupied"
        assert await evse_state(csms, 1) == "Reserved"


@VERSIONS
async def test_the_drivers_transaction_carries_the_reservation_which_then_ends(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(ocpp_version=version) as (_station, csms):
        assert await reserve(csms, 3, evseId=1) == "Accepted"
        since = messages_now(csms)
        assert await remote_start(csms, DRIVER, evseId=1) == "Accepted"
        with trio.fail_after(120):
            started = await csms.wait_for_message(
                STATION_ID, "TransactionEvent", is_started, since=since
            )
            # H03: claimed, the reservation is over; the connector shows what it really is.
            await csms.wait_for_message(
                STATION_ID, "StatusNotification", is_status(1, "Available"), since=since
            )
            await csms.wait_for_message(
                STATION_ID, "StatusNotification", is_status(1, "Occupied"), since=since
            )
        assert started["reservationId"] == 3
        assert started["idToken"]["idToken"] == DRIVER["idToken"]
        assert await cancel(csms, 3) == "Rejected"


@VERSIONS
async def test_a_reservation_with_the_same_id_replaces_the_old_one(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(scenario=TWO_EVSES, ocpp_version=version) as (
        station,
        csms,
    ):
        assert await reserve(csms, 4, evseId=1, expiryDateTime="2026-01-15T12:10:00Z") == (
            "Accepted"
        )
        # The same EVSE again, for longer: the reservation is not in its own way.
        assert await reserve(csms, 4, evseId=1, expiryDateTime="2026-01-15T12:15:00Z") == (
            "Accepted"
        )
        since = messages_now(csms)
        assert await reserve(csms, 4, evseId=2, expiryDateTime="2026-01-15T12:20:00Z") == (
            "Accepted"
        )
        with trio.fail_after(30):
            await csms.wait_for_message(
                STATION_ID, "StatusNotification", is_status(1, "Available"), since=since
            )
        assert (await evse_state(csms, 1), await evse_state(csms, 2)) == ("Available", "Reserved")
        # Refused, a replacement leaves the reservation it would replace as it was.
        assert await reserve(csms, 4, evseId=3) == "Rejected"
        assert await evse_state(csms, 2) == "Reserved"
        with trio.fail_after(3600):
            update = await csms.wait_for_message(STATION_ID, "ReservationStatusUpdate")
        assert update == {"reservationId": 4, "reservationUpdateStatus": "Expired"}
        assert station.clock.sim_now() == pytest.approx(1200)


# -- H04 and H02: how a reservation ends --------------------------------------------------------


@VERSIONS
async def test_an_unused_reservation_expires_at_its_expiry_date_time(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(ocpp_version=version) as (station, csms):
        assert await reserve(csms, 5, evseId=1, expiryDateTime="2026-01-15T12:10:00Z") == (
            "Accepted"
        )
        since = messages_now(csms)
        with trio.fail_after(3600):
            update = await csms.wait_for_message(STATION_ID, "ReservationStatusUpdate")
        assert station.clock.sim_now() == pytest.approx(600)
        assert update == {"reservationId": 5, "reservationUpdateStatus": "Expired"}
        with trio.fail_after(30):
            await csms.wait_for_message(
                STATION_ID, "StatusNotification", is_status(1, "Available"), since=since
            )
        assert await cancel(csms, 5) == "Rejected"
        assert await remote_start(csms, OTHER, evseId=1) == "Accepted"


@VERSIONS
async def test_a_cancelled_reservation_frees_the_evse(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(ocpp_version=version) as (_station, csms):
        assert await reserve(csms, 6, evseId=1) == "Accepted"
        assert await cancel(csms, 99) == "Rejected"
        since = messages_now(csms)
        assert await cancel(csms, 6) == "Accepted"
        with trio.fail_after(30):
            await csms.wait_for_message(
                STATION_ID, "StatusNotification", is_status(1, "Available"), since=since
            )
            trigger = {"requestedMessage": "Heartbeat"}
            assert (await csms.call(STATION_ID, "TriggerMessage", trigger))["status"] == "Accepted"
            await csms.wait_for_message(STATION_ID, "Heartbeat", since=since)
        # The CSMS cancelled it: the station has nothing to tell it about the reservation.
        sent = [m.action for m in csms.station(STATION_ID).messages_since(since)]
        assert "ReservationStatusUpdate" not in sent
        assert await cancel(csms, 6) == "Rejected"
        assert await remote_start(csms, OTHER, evseId=1) == "Accepted"


@VERSIONS
async def test_a_reservation_ends_removed_when_its_evse_goes_out_of_service(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(ocpp_version=version) as (_station, csms):
        assert await reserve(csms, 7, evseId=1) == "Accepted"
        since = messages_now(csms)
        change = {"operationalStatus": "Inoperative", "evse": {"id": 1}}
        assert (await csms.call(STATION_ID, "ChangeAvailability", change))["status"] == "Accepted"
        with trio.fail_after(30):
            await csms.wait_for_message(
                STATION_ID, "StatusNotification", is_status(1, "Unavailable"), since=since
            )
            update = await csms.wait_for_message(STATION_ID, "ReservationStatusUpdate")
        assert update == {"reservationId": 7, "reservationUpdateStatus": "Removed"}
        assert await cancel(csms, 7) == "Rejected"
        change = {"operationalStatus": "Operative", "evse": {"id": 1}}
        assert (await csms.call(STATION_ID, "ChangeAvailability", change))["status"] == "Accepted"
        assert await evse_state(csms, 1) == "Available"


# -- H01: each refusal from its cause -----------------------------------------------------------

Setup = Callable[[Csms], Awaitable[None]]


async def nothing(csms: Csms) -> None:
    return None


def variable(name: str, value: str) -> Setup:
    async def setup(csms: Csms) -> None:
        await set_variable(csms, "ReservationCtrlr", name, value)

    return setup


def out_of_service(evse_id: int) -> Setup:
    async def setup(csms: Csms) -> None:
        change: dict[str, Any] = {"operationalStatus": "Inoperative"}
        if evse_id:
            change["evse"] = {"id": evse_id}
        answer = await csms.call(STATION_ID, "ChangeAvailability", change)
        assert answer["status"] == "Accepted"

    return setup


async def in_use(csms: Csms) -> None:
    assert await remote_start(csms, OTHER, evseId=1) == "Accepted"


async def reserved_already(csms: Csms) -> None:
    assert await reserve(csms, 90, evseId=1, idToken=OTHER) == "Accepted"


REFUSALS = [
    ("unknown-evse", nothing, {"evseId": 3}, "Rejected"),
    ("evse-lacks-the-connector-type", nothing, {"evseId": 1, "connectorType": "cCCS2"}, "Rejected"),
    ("no-evse-has-the-connector-type", nothing, {"connectorType": "cCCS2"}, "Rejected"),
    ("expiry-passed", nothing, {"evseId": 1, "expiryDateTime": "2026-01-15T11:00:00Z"}, "Rejected"),
    (
        "expiry-a-leap-second",
        nothing,
        {"evseId": 1, "expiryDateTime": "2026-06-30T23:59:60Z"},
        "Rejected",
    ),
    ("reservations-disabled", variable("Enabled", "false"), {"evseId": 1}, "Rejected"),
    ("any-evse-not-offered", variable("NonEvseSpecific", "false"), {}, "Rejected"),
    ("evse-inoperative", out_of_service(1), {"evseId": 1}, "Unavailable"),
    ("station-inoperative", out_of_service(0), {}, "Unavailable"),
    ("evse-in-use", in_use, {"evseId": 1}, "Occupied"),
    ("evse-reserved", reserved_already, {"evseId": 1}, "Occupied"),
    ("no-evse-free", in_use, {}, "Occupied"),
]


@pytest.mark.parametrize(
    ("version", "setup", "fields", "status"),
    [
        pytest.param(version, setup, fields, status, id=f"{version}-{case}")
        for version in ("2.1", "2.0.1")
        for case, setup, fields, status in REFUSALS
    ],
)
async def test_a_reservation_is_refused_for_its_cause(
    autojump_clock: MockClock,
    version: OcppVersion,
    setup: Setup,
    fields: dict[str, Any],
    status: str,
) -> None:
    async with station_on_memory_link(ocpp_version=version) as (_station, csms):
        await setup(csms)
        assert await reserve(csms, 8, **fields) == status
        assert await cancel(csms, 8) == "Rejected"  # nothing was reserved


async def test_the_reservation_controller_variables_act(autojump_clock: MockClock) -> None:
    async with station_on_memory_link(scenario=TWO_EVSES) as (_station, csms):
        await set_variable(csms, "ReservationCtrlr", "Enabled", "false")
        assert await reserve(csms, 1, evseId=1) == "Rejected"
        await set_variable(csms, "ReservationCtrlr", "Enabled", "true")
        assert await reserve(csms, 1, evseId=1) == "Accepted"
        await set_variable(csms, "ReservationCtrlr", "NonEvseSpecific", "false")
        assert await reserve(csms, 2) == "Rejected"
        await set_variable(csms, "ReservationCtrlr", "NonEvseSpecific", "true")
        assert await reserve(csms, 2) == "Accepted"


# -- reservations for any EVSE, or any EVSE of a connector type ----------------------------------


@VERSIONS
async def test_reservations_for_any_evse_keep_enough_evses_free(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(scenario=TWO_EVSES, ocpp_version=version) as (_, csms):
        assert await reserve(csms, 1) == "Accepted"
        # One of two EVSEs is enough: neither is kept yet, and another driver may start.
        assert (await evse_state(csms, 1), await evse_state(csms, 2)) == ("Available", "Available")
        since = messages_now(csms)
        assert await reserve(csms, 2, idToken=OTHER) == "Accepted"
        with trio.fail_after(30):
            for evse_id in (1, 2):
                await csms.wait_for_message(
                    STATION_ID, "StatusNotification", is_status(evse_id, "Reserved"), since=since
                )
        assert await reserve(csms, 3, idToken={"idToken": "DRIVER-3", "type": "ISO14443"}) == (
            "Occupied"
        )
        assert await reserve(csms, 4, evseId=2) == "Occupied"
        assert await remote_start(csms, {"idToken": "DRIVER-3", "type": "ISO14443"}) == "Rejected"
        since = messages_now(csms)
        assert await cancel(csms, 2) == "Accepted"
        with trio.fail_after(30):
            for evse_id in (1, 2):
                await csms.wait_for_message(
                    STATION_ID, "StatusNotification", is_status(evse_id, "Available"), since=since
                )
        # One reservation left: one EVSE may go to someone else; then the other is kept.
        since = messages_now(csms)
        assert await remote_start(csms, OTHER, evseId=1) == "Accepted"
        with trio.fail_after(120):
            await csms.wait_for_message(
                STATION_ID, "StatusNotification", is_status(2, "Reserved"), since=since
            )
        assert await remote_start(csms, {"idToken": "DRIVER-3", "type": "ISO14443"}) == "Rejected"
        since = messages_now(csms)
        assert await remote_start(csms, DRIVER) == "Accepted"
        with trio.fail_after(120):
            started = await csms.wait_for_message(
                STATION_ID, "TransactionEvent", is_started, since=since
            )
        assert (started["evse"]["id"], started["reservationId"]) == (2, 1)


@VERSIONS
async def test_a_reservation_of_a_connector_type_keeps_an_evse_with_one(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(scenario=TYPE2_AND_CCS, ocpp_version=version) as (_, csms):
        since = messages_now(csms)
        assert await reserve(csms, 1, connectorType="cCCS2") == "Accepted"
        with trio.fail_after(30):
            await csms.wait_for_message(
                STATION_ID, "StatusNotification", is_status(2, "Reserved"), since=since
            )
        assert (await evse_state(csms, 1), await evse_state(csms, 2)) == ("Available", "Reserved")
        assert await reserve(csms, 2, connectorType="cCCS2", idToken=OTHER) == "Occupied"
        assert await reserve(csms, 3, connectorType="cType2", idToken=OTHER) == "Accepted"
        since = messages_now(csms)
        assert await remote_start(csms, DRIVER) == "Accepted"
        with trio.fail_after(120):
            started = await csms.wait_for_message(
                STATION_ID, "TransactionEvent", is_started, since=since
            )
        assert (started["evse"]["id"], started["reservationId"]) == (2, 1)


# -- the driver at the EVSE ------------------------------------------------------------------


async def test_another_driver_at_a_reserved_evse_is_refused_without_a_transaction(
    autojump_clock: MockClock,
) -> None:
    async with station_on_memory_link() as (station, csms):
        assert await reserve(csms, 1, evseId=1) == "Accepted"
        since = messages_now(csms)
        driver_arrives(station, 1, OTHER, token_first=True)
        await trio.testing.wait_all_tasks_blocked()
        assert station.evses[0].visit is None  # refused, the driver left
        sent = [m.action for m in csms.station(STATION_ID).messages_since(since)]
        assert "TransactionEvent" not in sent
        assert "Authorize" not in sent
        assert await evse_state(csms, 1) == "Reserved"


@VERSIONS
async def test_the_drivers_cable_first_keeps_the_evse_reserved_until_the_token(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    """G01.FR.09: plugged in, a reserved connector stays Reserved until the reservation's
    IdToken comes; the Updated event that adds the token carries the reservation."""
    async with station_on_memory_link(ocpp_version=version) as (station, csms):
        since = messages_now(csms)
        assert await reserve(csms, 1, evseId=1) == "Accepted"
        with trio.fail_after(30):
            await csms.wait_for_message(
                STATION_ID, "StatusNotification", is_status(1, "Reserved"), since=since
            )
        since = messages_now(csms)
        driver_arrives(station, 1, DRIVER, token_first=False)
        with trio.fail_after(120):
            authorized = await csms.wait_for_message(
                STATION_ID,
                "TransactionEvent",
                lambda p: p["triggerReason"] == "Authorized",
                since=since,
            )
        messages = list(csms.station(STATION_ID).messages_since(since))
        started = next(m for m in messages if m.action == "TransactionEvent")
        assert started.payload["eventType"] == "Started"
        assert "reservationId" not in started.payload
        assert authorized["reservationId"] == 1
        statuses = [
            m.payload["connectorStatus"] for m in messages if m.action == "StatusNotification"
        ]
        assert statuses == ["Occupied"]
        assert messages.index(started) < next(
            i for i, m in enumerate(messages) if m.action == "StatusNotification"
        )


def group_of_members(station_id: str, payload: Mapping[str, Any]) -> Mapping[str, Any]:
    """Authorize: Accepted, and tokens named MEMBER-... belong to group FLEET-7."""
    info: dict[str, Any] = {"status": "Accepted"}
    if payload["idToken"]["idToken"].startswith("MEMBER-"):
        info["groupIdToken"] = {"idToken": "FLEET-7", "type": "Central"}
    return {"idTokenInfo": info}


GROUPS = CsmsConfig(response_overrides={"Authorize": group_of_members})
FLEET = {"idToken": "FLEET-7", "type": "Central"}


@VERSIONS
async def test_a_member_of_the_reservations_group_may_use_it(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(csms_config=GROUPS, ocpp_version=version) as (
        station,
        csms,
    ):
        assert await reserve(csms, 1, evseId=1, groupIdToken=FLEET) == "Accepted"
        # Another driver, of no group: refused after the station asks for the group.
        driver_arrives(station, 1, OTHER, token_first=True)
        await trio.testing.wait_all_tasks_blocked()
        assert station.evses[0].visit is None
        assert await evse_state(csms, 1) == "Reserved"
        since = messages_now(csms)
        driver_arrives(station, 1, {"idToken": "MEMBER-1", "type": "ISO14443"}, token_first=True)
        with trio.fail_after(120):
            started = await csms.wait_for_message(
                STATION_ID, "TransactionEvent", is_started, since=since
            )
        assert started["reservationId"] == 1


@VERSIONS
async def test_a_remote_start_for_the_reservations_group_may_use_it(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(ocpp_version=version) as (_station, csms):
        assert await reserve(csms, 1, evseId=1, groupIdToken=FLEET) == "Accepted"
        assert await remote_start(csms, OTHER, evseId=1) == "Rejected"
        since = messages_now(csms)
        assert await remote_start(csms, OTHER, evseId=1, groupIdToken=FLEET) == "Accepted"
        with trio.fail_after(120):
            started = await csms.wait_for_message(
                STATION_ID, "TransactionEvent", is_started, since=since
            )
        assert started["reservationId"] == 1


@VERSIONS
async def test_a_claimed_reservation_without_a_transaction_is_over(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    """The driver presents the reservation's token but the CSMS refuses it: no transaction
    follows, and an OCPP 2.1 station says so after EVConnectionTimeOut (NoTransaction)."""
    refusing = CsmsConfig(accepted_id_tokens=["SOMEONE-ELSE"])
    async with station_on_memory_link(csms_config=refusing, ocpp_version=version) as (
        station,
        csms,
    ):
        assert await reserve(csms, 1, evseId=1) == "Accepted"
        since = messages_now(csms)
        driver_arrives(station, 1, DRIVER, token_first=True)
        with trio.fail_after(30):
            await csms.wait_for_message(
                STATION_ID, "StatusNotification", is_status(1, "Available"), since=since
            )
        assert await cancel(csms, 1) == "Rejected"
        if version == "2.1":
            with trio.fail_after(600):
                update = await csms.wait_for_message(STATION_ID, "ReservationStatusUpdate")
            assert update == {"reservationId": 1, "reservationUpdateStatus": "NoTransaction"}
            assert station.clock.sim_now() == pytest.approx(120, abs=1)
        sent = [m.action for m in csms.station(STATION_ID).messages_since(since)]
        assert "TransactionEvent" not in sent


# -- the world's EVs ---------------------------------------------------------------------------

#: EVs every minute or so, each charging 4 kWh and staying half an hour.
ARRIVALS = busy_site(dwell_s=1800, soc_start=0.2, target_soc=0.3)


async def test_arriving_evs_pass_a_reserved_evse_by(autojump_clock: MockClock) -> None:
    async with station_on_memory_link(scenario={**ARRIVALS, **TWO_EVSES}) as (_station, csms):
        assert await reserve(csms, 1, evseId=1, expiryDateTime=TONIGHT) == "Accepted"
        since = messages_now(csms)
        with trio.fail_after(24 * 3600):
            for _ in range(4):
                await csms.wait_for_message(
                    STATION_ID,
                    "TransactionEvent",
                    lambda p: p["eventType"] == "Ended",
                    since=messages_now(csms),
                )
        events = [
            m.payload
            for m in csms.station(STATION_ID).messages_since(since)
            if m.action == "TransactionEvent"
        ]
        assert {event["evse"]["id"] for event in events} == {2}
        assert await evse_state(csms, 1) == "Reserved"


async def test_arriving_evs_leave_an_evse_free_for_a_reservation_for_any(
    autojump_clock: MockClock,
) -> None:
    async with station_on_memory_link(scenario={**ARRIVALS, **TWO_EVSES}) as (_station, csms):
        assert await reserve(csms, 1, expiryDateTime=TONIGHT) == "Accepted"
        since = messages_now(csms)
        with trio.fail_after(24 * 3600):
            for _ in range(4):
                await csms.wait_for_message(
                    STATION_ID,
                    "TransactionEvent",
                    lambda p: p["eventType"] == "Ended",
                    since=messages_now(csms),
                )
        running: set[str] = set()
        most = 0
        reserved = 0
        for message in csms.station(STATION_ID).messages_since(since):
            if message.action == "StatusNotification":
                reserved += message.payload["connectorStatus"] == "Reserved"
            if message.action != "TransactionEvent":
                continue
            transaction_id = message.payload["transactionInfo"]["transactionId"]
            if message.payload["eventType"] == "Started":
                running.add(transaction_id)
            elif message.payload["eventType"] == "Ended":
                running.discard(transaction_id)
            most = max(most, len(running))
        assert most == 1
        assert reserved >= 1
