"""What the embedded CSMS pushes to a station after its boot, as a scenario configures it: the
drivers' local authorization list (D01, D02) and a display message (O01)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trio
from trio.testing import MockClock
from typer.testing import CliRunner

from fleetsim.cli.exit_codes import ExitCode
from fleetsim.cli.main import app
from fleetsim.ev_models import SITE_PROFILES, ArrivalProcess, id_token_value, load_catalogue
from fleetsim.simulator.csms import (
    Csms,
    CsmsConfig,
    DisplayMessagePush,
    LocalListPush,
    boot_push_reactions,
    combine_reactions,
)
from fleetsim.simulator.csms.processes import csms_config_for, local_list_for
from fleetsim.simulator.ocpp import OcppVersion
from tests.helpers import STATION_ID, one_station_scenario, station_on_memory_link
from tests.station.test_authorization import (
    VERSIONS,
    get_variable,
    go_offline,
    long_backoff_config,
    set_variables,
)

OFFLINE_FROM_LIST = {
    ("AuthCtrlr", "LocalAuthorizeOffline"): "true",
    ("AuthCtrlr", "OfflineTxForUnknownIdEnabled"): "false",
}
#: 150 drivers, all listed: a Full update of 100 and a Differential one of 50, version 2.
PUSHING: dict[str, Any] = {
    "ev_fleet": {"id_tokens": {"pattern": "DRIVER{index:04d}", "count": 150}},
    "embedded_csms": {
        "local_list": {},
        "display_message": {"text": "Welcome! 0.39 EUR/kWh", "language": "en", "id": 7},
    },
}


def driver(index: int) -> dict[str, str]:
    return {"idToken": f"DRIVER{index:04d}", "type": "ISO14443"}


def signalling(config: CsmsConfig) -> tuple[CsmsConfig, trio.MemoryReceiveChannel[str]]:
    """`config`, recording messages, and a channel that names each booted station once the
    CSMS's pushes after its boot are over (a reaction combined after them)."""
    sender, receiver = trio.open_memory_channel[str](10)

    async def pushed(
        csms: Csms, station_id: str, request: Mapping[str, Any], response: Mapping[str, Any]
    ) -> None:
        await sender.send(station_id)

    reactions = combine_reactions(config.reactions, {"BootNotification": pushed})
    return dataclasses.replace(config, record_messages=True, reactions=reactions), receiver


async def reset_and_wait_pushed(csms: Csms, pushed: trio.MemoryReceiveChannel[str]) -> None:
    assert (await csms.call(STATION_ID, "Reset", {"type": "Immediate"}))["status"] == "Accepted"
    with trio.fail_after(600):
        assert await pushed.receive() == STATION_ID


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_booting_station_gets_the_drivers_list_once_and_authorizes_offline_with_it(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    scenario = one_station_scenario(PUSHING, ocpp_version=version)
    config, pushed = signalling(csms_config_for(scenario))
    async with station_on_memory_link(
        long_backoff_config(version), config, PUSHING, ocpp_version=version
    ) as (station, csms):
        with trio.fail_after(600):
            assert await pushed.receive() == STATION_ID
        assert csms.statistics().pushes == {"local_list_sent": 1, "display_message_set": 1}
        assert (await csms.call(STATION_ID, "GetLocalListVersion", {}))["versionNumber"] == 2
        assert await get_variable(csms, "LocalAuthListCtrlr", "Entries") == "150"
        # The welcome is on the display, as the CSMS set it.
        seen = csms.station(STATION_ID).messages_received
        answer = await csms.call(STATION_ID, "GetDisplayMessages", {"requestId": 1, "id": [7]})
        assert answer["status"] == "Accepted"
        with trio.fail_after(60):
            listed = await csms.wait_for_message(STATION_ID, "NotifyDisplayMessages", since=seen)
        [message] = listed["messageInfo"]
        assert message["priority"] == "NormalCycle"
        assert message["message"]["content"] == "Welcome! 0.39 EUR/kWh"
        # A Reset: the list survives it, so the CSMS only asks for its version.
        await reset_and_wait_pushed(csms, pushed)
        assert csms.station(STATION_ID).boots == 2
        assert csms.statistics().pushes == {
            "local_list_sent": 1,
            "local_list_current": 1,
            "display_message_set": 2,
        }
        # Offline, the list speaks for the drivers: the last one listed charges, a stranger not.
        await set_variables(csms, OFFLINE_FROM_LIST)
        await go_offline(station, csms)
        assert await station.authorize(driver(150)) is True
        assert await station.authorize(driver(1)) is True
        assert await station.authorize({"idToken": "STRANGER", "type": "ISO14443"}) is False


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_station_whose_list_is_disabled_is_counted_as_failed(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    scenario = one_station_scenario(PUSHING, ocpp_version=version)
    config, pushed = signalling(csms_config_for(scenario))
    async with station_on_memory_link(
        long_backoff_config(version), config, PUSHING, ocpp_version=version
    ) as (_station, csms):
        with trio.fail_after(600):
            assert await pushed.receive() == STATION_ID
        await set_variables(csms, {("LocalAuthListCtrlr", "Enabled"): "false"})
        # A disabled list reports version 0, so after the reboot the CSMS sends it again and
        # the station refuses it (NotEnabled): counted, and the station carries on.
        await reset_and_wait_pushed(csms, pushed)
        stats = csms.statistics()
        assert stats.pushes == {
            "local_list_sent": 1,
            "local_list_failed": 1,
            "display_message_set": 2,
        }
        assert stats.connection_errors == 0
        assert csms.is_connected(STATION_ID)
        assert (await csms.call(STATION_ID, "GetLocalListVersion", {}))["versionNumber"] == 0
        # Enabled again, the list it kept is there, at the version it had.
        await set_variables(csms, {("LocalAuthListCtrlr", "Enabled"): "true"})
        assert (await csms.call(STATION_ID, "GetLocalListVersion", {}))["versionNumber"] == 2


async def test_a_refused_display_message_is_counted_and_the_list_still_goes(
    autojump_clock: MockClock,
) -> None:
    """A station whose display offers no Klingon refuses the message; the list, pushed first
    in the same reaction, is installed all the same."""
    config, pushed = signalling(
        CsmsConfig(
            reactions=boot_push_reactions(
                local_list=LocalListPush([driver(1), driver(2)], items_per_message=1),
                display_message=DisplayMessagePush("nuqneH", language="tlh"),
            )
        )
    )
    async with station_on_memory_link(long_backoff_config("2.1"), config) as (_station, csms):
        with trio.fail_after(600):
            assert await pushed.receive() == STATION_ID
        assert csms.statistics().pushes == {"local_list_sent": 1, "display_message_failed": 1}
        # Two messages of one entry each: Full at version 1, Differential at 2.
        assert (await csms.call(STATION_ID, "GetLocalListVersion", {}))["versionNumber"] == 2
        assert await get_variable(csms, "LocalAuthListCtrlr", "Entries") == "2"


def test_without_pushes_a_boot_has_no_reaction() -> None:
    assert "BootNotification" not in csms_config_for(one_station_scenario()).reactions
    assert boot_push_reactions() == {}


# -- the list holds the tokens the drivers present ---------------------------------------------


def test_the_list_holds_exactly_the_tokens_the_drivers_present() -> None:
    types = {"ISO14443": 1.0, "eMAID": 1.0, "NoAuthorization": 1.0}
    scenario = one_station_scenario(
        {
            "ev_fleet": {"id_tokens": {"count": 40}, "id_token_types": types},
            "embedded_csms": {"local_list": {"entries": 256, "items_per_message": 30}},
        }
    )
    push = local_list_for(scenario)
    assert push is not None
    listed = {(token["idToken"], token["type"]) for token in push.id_tokens}
    # Every driver's token of every type they may carry, NoAuthorization aside: 40 x 2.
    assert len(listed) == len(push.id_tokens) == 80
    assert ("NLFLSC00000040", "eMAID") in listed
    assert (id_token_value("ISO14443", 40), "ISO14443") in listed
    assert push.version == 3  # 30 + 30 + 20
    # The drivers who come present one of them, or nothing.
    arrivals = ArrivalProcess(
        SITE_PROFILES["public"],
        [(next(iter(load_catalogue().values())), 1.0)],
        arrivals_per_day=500,
        rng=np.random.default_rng(3),
        start_epoch_s=0.0,
        id_tokens=("TOKEN{index:05d}", 40, "ISO14443"),
        id_token_types=list(types.items()),
    )
    after_s = 0.0
    for _ in range(100):
        arrival = arrivals.next_arrival(after_s)
        assert arrival is not None
        after_s = arrival.arrival_s
        if arrival.id_token_type != "NoAuthorization":
            assert (arrival.id_token, arrival.id_token_type) in listed


def test_the_list_takes_the_first_drivers_up_to_its_entries() -> None:
    scenario = one_station_scenario(
        {
            "ev_fleet": {"id_tokens": {"pattern": "D{index:04d}", "count": 1000}},
            "embedded_csms": {"local_list": {"entries": 256}},
        }
    )
    push = local_list_for(scenario)
    assert push is not None
    assert [token["idToken"] for token in push.id_tokens] == [
        f"D{index:04d}" for index in range(1, 257)
    ]
    assert push.version == 3


def test_the_scenario_bounds_the_list_by_the_stations_limits() -> None:
    for local_list in ({"entries": 257}, {"items_per_message": 101}, {"entries": 0}):
        with pytest.raises(ValueError, match="local_list"):
            one_station_scenario({"embedded_csms": {"local_list": local_list}})
    with pytest.raises(ValueError, match="display_message"):
        one_station_scenario({"embedded_csms": {"display_message": {"text": "x" * 513}}})


# -- a --fast run ------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("version", VERSIONS)
def test_a_fast_run_pushes_the_list_and_the_message_to_every_station(
    tmp_path: Path, version: OcppVersion
) -> None:
    scenario = tmp_path / "pushes.yaml"
    scenario.write_text(
        json.dumps(
            {
                "name": "pushes",
                "seed": 5,
                "start": "2026-01-15T08:00:00Z",
                "duration_s": 3600,
                "ocpp_version": version,
                "stations": {"count": 3},
                "sites": [{"name": "lot", "arrivals_per_evse_per_day": 24}],
                "ev_fleet": {"id_tokens": {"count": 120}},
                "embedded_csms": {
                    "local_list": {"entries": 120, "items_per_message": 50},
                    "display_message": {"text": "Welcome"},
                },
            }
        )
    )
    trace_path = tmp_path / "trace.jsonl"
    summary_path = tmp_path / "summary.json"
    result = CliRunner().invoke(
        app,
        [
            "run",
            str(scenario),
            "--fast",
            "--no-progress",
            "--trace",
            str(trace_path),
            "--summary-json",
            str(summary_path),
        ],
    )
    assert result.exit_code == ExitCode.OK, result.output
    summary = json.loads(summary_path.read_text())
    assert summary["station_failures"] == 0, summary["errors"]
    assert summary["csms_schema_violations"] == 0
    # Every station got the list in three messages (50 + 50 + 20) and took each one.
    calls: dict[str, list[tuple[str, str, Any]]] = {}
    answers: dict[tuple[str, str], Any] = {}
    for line in trace_path.read_text().splitlines():
        record = json.loads(line)
        frame = record.get("frame")
        if record["direction"] == "received" and frame and frame[0] == 2:
            calls.setdefault(record["station"], []).append((frame[1], frame[2], frame[3]))
        elif record["direction"] == "sent" and frame and frame[0] == 3:
            answers[record["station"], frame[1]] = frame[2]
    assert len(calls) == 3
    for station_id, received in calls.items():
        first = received[:5]
        assert [action for _, action, _ in first] == [
            "GetLocalListVersion",
            "SendLocalList",
            "SendLocalList",
            "SendLocalList",
            "SetDisplayMessage",
        ]
        assert [payload.get("versionNumber") for _, _, payload in first[1:4]] == [1, 2, 3]
        assert answers[station_id, first[0][0]] == {"versionNumber": 0}
        for message_id, _, _ in first[1:]:
            assert answers[station_id, message_id] == {"status": "Accepted"}
