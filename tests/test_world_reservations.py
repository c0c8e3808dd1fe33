"""Drivers who reserve ahead (H01 through the embedded CSMS): the world books an EVSE some
minutes before the driver comes, the CSMS sends ReserveNow, other EVs pass the EVSE by, and the
driver's transaction carries the reservationId; a refused reservation changes nothing.  Also
the scenario fields that ask for it, and the warning when the CSMS is not the embedded one."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
from trio.testing import MockClock
from typer.testing import CliRunner

from fleetsim.cli.exit_codes import ExitCode
from fleetsim.cli.main import app
from fleetsim.ev_models import EvArrival, load_catalogue
from fleetsim.simulator import api
from fleetsim.simulator.clock import SimClock
from fleetsim.simulator.csms import Csms, CsmsConfig, DriverReservations
from fleetsim.simulator.des import EventPump
from fleetsim.simulator.link import Link
from fleetsim.simulator.ocpp import OcppVersion
from fleetsim.simulator.run import station_config
from fleetsim.simulator.station import Station
from fleetsim.simulator.station.blocks import reservation
from fleetsim.simulator.station.ev_driver import ev_arrives
from fleetsim.simulator.stats import RunStats
from fleetsim.simulator.transport import open_memory_link
from fleetsim.simulator.world import Site, World
from tests.helpers import STATION_ID, T0, TEST_EV, busy_site, one_station_scenario

VERSIONS = pytest.mark.parametrize("version", ["2.1", "2.0.1"])
TEST_MODEL = load_catalogue({"test-ev": TEST_EV})["test-ev"]
#: Drivers who all reserve, ten minutes ahead; the site's own arrivals are too rare to matter.
ALL_RESERVE: dict[str, Any] = {
    "embedded_csms": {"reserve_share": 1.0, "reserve_ahead_s": {"min": 600, "max": 600}},
    **busy_site(dwell_s=1200, soc_start=0.2, target_soc=0.8, arrivals_per_evse_per_day=0.001),
}


@asynccontextmanager
async def world_on_memory_link(
    overrides: Mapping[str, Any], *, ocpp_version: OcppVersion = "2.1"
) -> AsyncIterator[tuple[Station, Csms, World, DriverReservations]]:
    """A running station in a world whose drivers reserve through the embedded CSMS."""
    built = one_station_scenario(overrides, ocpp_version=ocpp_version)
    clock = SimClock(T0, 1.0)
    clock.start()
    csms = Csms(CsmsConfig(), clock=clock.epoch_s)
    desk = DriverReservations(csms)
    stats = RunStats()
    station = Station(STATION_ID, 1, station_config(built), clock, stats)
    pump = EventPump(clock)
    world = World(
        built,
        clock,
        pump,
        {1: station},
        load_catalogue(built.ev_fleet.extra_models),
        reservation_desk=desk,
    )

    def connect(s: Station) -> AbstractAsyncContextManager[Link]:
        return open_memory_link(
            s.id, csms.attach, s.handle, spawn=s.spawn, observer=stats, ocpp_version=ocpp_version
        )

    async with trio.open_nursery() as nursery:
        nursery.start_soon(pump.run)
        await nursery.start(station.run, connect)
        world.start()
        with trio.fail_after(3600):
            await station.wait_synced()
        yield station, csms, world, desk
        nursery.cancel_scope.cancel()


def driver(station: Station, token: str, *, in_s: float) -> EvArrival:
    """A driver with `token` who will arrive `in_s` from now, cable first."""
    arrival_s = station.clock.sim_now() + in_s
    return EvArrival(
        arrival_s=arrival_s,
        model=TEST_MODEL,
        soc_start=0.2,
        target_soc=0.3,
        min_soc=0.1,
        departure_s=arrival_s + 1800,
        id_token=token,
        id_token_type="ISO14443",
        id_token_first=False,
        uses_iso15118_20=False,
    )


def messages_now(csms: Csms) -> int:
    return csms.station(STATION_ID).messages_received


def reserved(evse_id: int) -> Callable[[Mapping[str, Any]], bool]:
    return lambda p: p["evseId"] == evse_id and p["connectorStatus"] == "Reserved"


def with_reservation(payload: Mapping[str, Any]) -> bool:
    return "reservationId" in payload


async def come(site: Site, station: Station, booking: Any, arrival: EvArrival) -> None:
    """The driver arrives, as the world's arrival process sends them: to the EVSE reserved for
    them if it takes them, else to a free one."""
    await station.clock.sleep_until(arrival.arrival_s)
    target = site.booked_evse(booking) or site.free_evse(arrival.model, arrival.id_token)
    assert target is not None, "no EVSE for the driver"
    ev_arrives(target[0], target[1], arrival)


@VERSIONS
async def test_a_driver_who_reserves_finds_the_evse_kept_and_claims_it(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with world_on_memory_link(ALL_RESERVE, ocpp_version=version) as (
        station,
        csms,
        world,
        desk,
    ):
        site = world.sites[0]
        start_s = station.clock.sim_now()
        since = messages_now(csms)
        arrival = driver(station, "DRIVER-1", in_s=900)
        booking = site.book_ahead(arrival, start_s)
        assert booking is not None
        with trio.fail_after(3600):
            # Ten minutes before the driver comes, the CSMS reserves the EVSE.
            await csms.wait_for_message(STATION_ID, "StatusNotification", reserved(1), since=since)
            assert station.clock.sim_now() == pytest.approx(start_s + 300, abs=1)
            assert desk.answers == {"Accepted": 1}
            # Another driver, arriving meanwhile, finds no free EVSE; the booked one is kept.
            assert site.free_evse(TEST_MODEL, "DRIVER-2") is None
            await come(site, station, booking, arrival)
            started = await csms.wait_for_message(
                STATION_ID, "TransactionEvent", with_reservation, since=since
            )
        assert started["idToken"]["idToken"] == "DRIVER-1"
        assert station.clock.sim_now() >= start_s + 900
        assert (world.reservations.asked, world.reservations.accepted) == (1, 1)
        assert world.reservations.arrived == 1
        state = station.peek_block_state(reservation.BLOCK)
        assert state is not None and not state.book  # claimed: the reservation is over


async def test_a_refused_reservation_leaves_the_driver_to_come_anyway(
    autojump_clock: MockClock,
) -> None:
    async with world_on_memory_link(ALL_RESERVE) as (station, csms, world, desk):
        answer = await csms.call(
            STATION_ID,
            "SetVariables",
            {
                "setVariableData": [
                    {
                        "component": {"name": "ReservationCtrlr"},
                        "variable": {"name": "Enabled"},
                        "attributeValue": "false",
                    }
                ]
            },
        )
        assert answer["setVariableResult"][0]["attributeStatus"] == "Accepted"
        site = world.sites[0]
        since = messages_now(csms)
        arrival = driver(station, "DRIVER-1", in_s=900)
        booking = site.book_ahead(arrival, station.clock.sim_now())
        assert booking is not None
        with trio.fail_after(3600):
            await come(site, station, booking, arrival)
            authorized = await csms.wait_for_message(
                STATION_ID,
                "TransactionEvent",
                lambda p: p["triggerReason"] == "Authorized",
                since=since,
            )
        assert "reservationId" not in authorized
        assert desk.answers == {"Rejected": 1}
        assert (world.reservations.accepted, world.reservations.arrived) == (0, 0)


async def test_a_reservation_for_a_connector_type_names_the_type_and_no_evse(
    autojump_clock: MockClock,
) -> None:
    overrides = {
        **ALL_RESERVE,
        "embedded_csms": {**ALL_RESERVE["embedded_csms"], "reserve_for": "connector_type"},
        "stations": {"count": 1, "evses": [{}, {"connectors": ["cCCS2"]}]},
    }
    async with world_on_memory_link(overrides) as (station, csms, world, desk):
        site = world.sites[0]
        since = messages_now(csms)
        arrival = driver(station, "DRIVER-1", in_s=900)
        booking = site.book_ahead(arrival, station.clock.sim_now())
        assert booking is not None
        with trio.fail_after(3600):
            # The driver's app picked EVSE 1; the CSMS reserved its type, which only EVSE 1
            # has, so EVSE 1 is kept while the other stays free for anyone.
            await csms.wait_for_message(STATION_ID, "StatusNotification", reserved(1), since=since)
            assert station.evses[1].is_free("SOMEONE-ELSE")
            state = station.peek_block_state(reservation.BLOCK)
            assert state is not None
            (held,) = state.book.values()
            assert (held.evse_id, held.connector_type) == (None, "cType2")
            assert desk.answers == {"Accepted": 1}
            await come(site, station, booking, arrival)
            claimed = await csms.wait_for_message(
                STATION_ID, "TransactionEvent", with_reservation, since=since
            )
        assert claimed["evse"]["id"] == 1
        assert claimed["reservationId"] == held.id


@VERSIONS
async def test_the_sites_arrivals_reserve_ahead_and_use_their_reservations(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    overrides = {
        **busy_site(dwell_s=1200, soc_start=0.2, target_soc=0.8, arrivals_per_evse_per_day=24),
        "stations": {"count": 1, "evses": [{}, {}]},
        "embedded_csms": {"reserve_share": 0.5},
    }
    async with world_on_memory_link(overrides, ocpp_version=version) as (
        _station,
        csms,
        world,
        desk,
    ):
        with trio.fail_after(12 * 3600):
            while world.reservations.arrived < 3:
                await csms.wait_for_message(
                    STATION_ID, "TransactionEvent", with_reservation, since=messages_now(csms)
                )
        counts = world.reservations
        assert counts.asked >= counts.accepted >= counts.arrived >= 3
        assert desk.answers["Accepted"] == counts.accepted


def test_a_fast_run_reserves_ranks_and_reports_it(tmp_path: Path) -> None:
    scenario = tmp_path / "reserve.yaml"
    scenario.write_text(
        json.dumps(
            {
                "name": "reserve",
                "seed": 3,
                "start": "2026-01-15T08:00:00Z",
                "duration_s": 6 * 3600,
                "stations": {"count": 2, "evses": [{}, {}]},
                "sites": [{"name": "lot", "capacity_kw": 30, "arrivals_per_evse_per_day": 12}],
                "embedded_csms": {"reserve_share": 0.5, "priority_share": 0.3},
            }
        )
    )
    summary_path = tmp_path / "summary.json"
    result = CliRunner().invoke(
        app,
        ["run", str(scenario), "--fast", "--no-progress", "--summary-json", str(summary_path)],
    )
    assert result.exit_code == ExitCode.OK, result.output
    assert "warning" not in result.stderr
    summary = json.loads(summary_path.read_text())
    assert summary["evs_with_reservation"] > 0
    assert summary["station_failures"] == 0, summary["errors"]
    assert summary["csms_schema_violations"] == 0


# -- the scenario -----------------------------------------------------------------------------


def scenario_file(tmp_path: Path, embedded_csms: Mapping[str, Any], **more: Any) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(
        json.dumps(
            {"name": "s", "stations": {"count": 1}, "embedded_csms": embedded_csms, **more},
            indent=1,
        )
    )
    return path


def test_an_external_csms_gets_a_warning_that_nobody_reserves(tmp_path: Path) -> None:
    path = scenario_file(tmp_path, {"reserve_share": 0.2}, csms={"url": "ws://csms.test/ocpp"})
    plan = api.plan_run(api.RunRequest(scenario_path=path))
    (warning,) = plan.warnings
    assert "reserve_share is ignored" in warning and "ws://csms.test/ocpp" in warning
    fast = api.plan_run(api.RunRequest(scenario_path=path, in_memory=True))
    assert fast.warnings == ()
    embedded = scenario_file(tmp_path, {"reserve_share": 0.2})
    assert api.plan_run(api.RunRequest(scenario_path=embedded)).warnings == ()


def test_a_scenario_without_arriving_drivers_cannot_ask_for_reservations(
    tmp_path: Path,
) -> None:
    path = scenario_file(
        tmp_path, {"reserve_share": 0.2}, sites=[{"name": "s", "arrivals_per_evse_per_day": 0}]
    )
    with pytest.raises(api.ScenarioError) as caught:
        api.load_scenario(path)
    assert "embedded_csms.reserve_share: no site has arriving drivers to reserve" in str(
        caught.value
    )


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"charging_priority": 0}, "0 is every driver's default priority"),
        ({"charging_priority": 10}, "less than or equal to 9"),
        ({"reserve_share": 1.5}, "less than or equal to 1"),
        ({"reserve_for": "station"}, "'evse' or 'connector_type'"),
        ({"reserve_ahead_s": {"min": 900, "max": 60}}, "max (60) is below min (900)"),
    ],
)
def test_reservation_and_priority_settings_are_checked(
    tmp_path: Path, settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(api.ScenarioError) as caught:
        api.load_scenario(scenario_file(tmp_path, settings))
    assert message in str(caught.value)
