"""CSMS URLs as CSMSs in the field want them: `{station_id}` where the id goes, or appended.

Each form is checked twice: the URL a station builds, and a real connection to the embedded
CSMS, which finds the station id in each of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
import trio

from fleetsim.simulator.csms import Csms, CsmsConfig
from fleetsim.simulator.link import Answer
from fleetsim.simulator.stats import RunStats
from fleetsim.simulator.transport import ConnectionSettings, open_station_link, station_url

BOOT = {"reason": "PowerUp", "chargingStation": {"model": "FS-22", "vendorName": "fleetsim"}}


def _no_calls(action: str, payload: Mapping[str, Any]) -> Answer:
    raise AssertionError("no CALL expected")


@pytest.mark.parametrize(
    ("template", "url"),
    [
        ("ws://h/ocpp", "ws://h/ocpp/CP%201%2Fa"),
        ("ws://h/ocpp/", "ws://h/ocpp/CP%201%2Fa"),
        ("wss://h/ocpp/{station_id}/", "wss://h/ocpp/CP%201%2Fa/"),
        ("wss://h/ocpp?id={station_id}", "wss://h/ocpp?id=CP%201%2Fa"),
        ("ws://h/cs/{station_id}/ocpp", "ws://h/cs/CP%201%2Fa/ocpp"),
    ],
)
def test_the_station_id_goes_where_the_template_says(template: str, url: str) -> None:
    assert station_url(template, "CP 1/a") == url


@pytest.mark.parametrize(
    "path",
    ["/ocpp", "/ocpp/{station_id}/", "/ocpp?id={station_id}", "/ocpp/{station_id}"],
)
async def test_the_embedded_csms_finds_the_id_in_every_form(
    nursery: trio.Nursery, path: str
) -> None:
    csms = Csms(CsmsConfig(record_messages=True))
    port = await nursery.start(csms.serve, "127.0.0.1", 0)
    settings = ConnectionSettings(csms_url=f"ws://127.0.0.1:{port}{path}", connect_timeout_s=5)
    with trio.fail_after(10):
        async with open_station_link(
            "CP 7/b", settings, _no_calls, spawn=nursery.start_soon, observer=RunStats()
        ) as link:
            answer = await link.call("BootNotification", BOOT)
    assert answer is not None and answer["status"] == "Accepted"
    assert csms.station("CP 7/b").boots == 1
