"""The CSMS over real loopback WebSockets: handshake, subprotocol, Basic auth, serving on.

These use the real clock (sockets do not run on MockClock) with every wait bounded.  The
stations are bare clients -- trio-websocket and an `RpcLink` -- except where the test is about
what the fleet's own transport reports (`open_station_link` and its `ConnectError`).
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import pytest
import trio
from trio_websocket import ConnectionClosed, ConnectionRejected, open_websocket_url

from fleetsim.simulator.csms import Csms, CsmsConfig
from fleetsim.simulator.link import Answer, CallHandler
from fleetsim.simulator.ocpp import (
    CSMS_INITIATED,
    OcppVersion,
    RpcSession,
    schema_set,
    subprotocol_for,
)
from fleetsim.simulator.stats import NullObserver
from fleetsim.simulator.transport import (
    ConnectError,
    ConnectionSettings,
    RpcLink,
    WebSocketChannel,
    open_station_link,
)

BOOT = {"reason": "PowerUp", "chargingStation": {"model": "FS-22", "vendorName": "fleetsim"}}
WAIT_S = 10


def refuse(action: str, payload: Mapping[str, Any]) -> Answer:
    raise NotImplementedError(action)


async def start_csms(nursery: trio.Nursery, config: CsmsConfig | None = None) -> tuple[Csms, str]:
    csms = Csms(config)
    port = await nursery.start(csms.serve, "127.0.0.1", 0)
    return csms, f"ws://127.0.0.1:{port}/ocpp"


@asynccontextmanager
async def websocket_station(
    url: str,
    path: str,
    *,
    version: OcppVersion = "2.1",
    password: str | None = None,
    handler: CallHandler = refuse,
) -> AsyncIterator[RpcLink]:
    """A bare station client: trio-websocket and an `RpcLink`, and nothing of the fleet."""
    headers = []
    if password is not None:
        token = base64.b64encode(f"{path}:{password}".encode())
        headers.append((b"Authorization", b"Basic " + token))
    protocol = subprotocol_for(version)
    async with open_websocket_url(
        f"{url}/{path}", subprotocols=[protocol], extra_headers=headers
    ) as connection:
        assert connection.subprotocol == protocol
        async with trio.open_nursery() as nursery:
            session = RpcSession(schema_set(version), CSMS_INITIATED)
            link = RpcLink(WebSocketChannel(connection), session, handler, spawn=nursery.start_soon)
            nursery.start_soon(link.run)
            yield link
            nursery.cancel_scope.cancel()


def settings(
    url: str, *, version: OcppVersion = "2.1", password: str | None = None
) -> ConnectionSettings:
    return ConnectionSettings(
        csms_url=url, ocpp_version=version, basic_auth_password=password, connect_timeout_s=5
    )


async def test_a_station_boots_and_heartbeats_over_a_websocket(nursery: trio.Nursery) -> None:
    csms, url = await start_csms(nursery, CsmsConfig(heartbeat_interval_s=45))
    with trio.fail_after(WAIT_S):
        async with websocket_station(url, "CP%200001") as link:
            boot = await link.call("BootNotification", BOOT)
            beat = await link.call("Heartbeat", {})
            station = csms.station("CP 0001")  # sent percent-encoded, recorded decoded
            assert (station.connected, station.subprotocol) == (True, "ocpp2.1")
        await csms.wait_disconnected("CP 0001")
    assert (boot["status"], boot["interval"]) == ("Accepted", 45)
    assert beat["currentTime"].endswith("Z")
    assert station.actions() == ["BootNotification", "Heartbeat"]
    assert (station.boots, station.connected, station.disconnections) == (1, False, 1)


async def test_ocpp_2_0_1_is_negotiated_when_the_station_offers_only_that(
    nursery: trio.Nursery,
) -> None:
    csms, url = await start_csms(nursery)
    with trio.fail_after(WAIT_S):
        async with websocket_station(url, "CP1", version="2.0.1") as link:
            await link.call("BootNotification", BOOT)
            assert csms.station("CP1").subprotocol == "ocpp2.0.1"
            assert csms.station("CP1").version == "2.0.1"


async def test_a_station_offering_no_ocpp_2_subprotocol_is_accepted_without_one_then_closed(
    nursery: trio.Nursery,
) -> None:
    csms, url = await start_csms(nursery)
    with trio.fail_after(WAIT_S):
        async with open_websocket_url(f"{url}/CP1", subprotocols=["ocpp1.6"]) as connection:
            assert connection.subprotocol is None
            with pytest.raises(ConnectionClosed) as closed:
                await connection.get_message()
    reason = closed.value.reason
    assert reason is not None and reason.code == 1002
    assert csms.statistics().handshakes_rejected == {"no_subprotocol": 1}
    assert "CP1" not in csms.stations


async def test_a_path_without_station_id_is_answered_404(nursery: trio.Nursery) -> None:
    csms, url = await start_csms(nursery)
    with trio.fail_after(WAIT_S), pytest.raises(ConnectionRejected) as rejected:
        async with open_websocket_url(f"{url}/", subprotocols=["ocpp2.1"]):
            pass
    assert rejected.value.status_code == 404
    assert csms.statistics().handshakes_rejected == {"no_station_id": 1}


@pytest.mark.parametrize("password", ["wrong-password-123", None])
async def test_a_wrong_or_missing_password_is_rejected_with_401(
    password: str | None, nursery: trio.Nursery
) -> None:
    csms, url = await start_csms(nursery, CsmsConfig(basic_auth_passwords="right-password-123"))
    with trio.fail_after(WAIT_S), pytest.raises(ConnectError) as refused:
        async with open_station_link(
            "CP1",
            settings(url, password=password),
            refuse,
            spawn=nursery.start_soon,
            observer=NullObserver(),
        ):
            pass
    assert refused.value.outcome == "rejected"
    assert "401" in str(refused.value)
    assert csms.statistics().handshakes_rejected == {"unauthorized": 1}


async def test_the_right_password_per_station_is_let_in(nursery: trio.Nursery) -> None:
    passwords = {"CP1": "password-of-cp1", "CP2": "password-of-cp2"}
    csms, url = await start_csms(nursery, CsmsConfig(basic_auth_passwords=passwords))
    with trio.fail_after(WAIT_S):
        async with websocket_station(url, "CP2", password="password-of-cp2") as link:
            assert await link.call("Heartbeat", {})
        with pytest.raises(ConnectError, match="401"):
            async with open_station_link(
                "CP2",
                settings(url, password="password-of-cp1"),
                refuse,
                spawn=nursery.start_soon,
                observer=NullObserver(),
            ):
                pass
    assert csms.statistics().handshakes_rejected == {"unauthorized": 1}


async def test_csms_call_reaches_the_station_over_the_websocket(nursery: trio.Nursery) -> None:
    def station_handler(action: str, payload: Mapping[str, Any]) -> Answer:
        assert action == "GetVariables"
        return Answer(
            {
                "getVariableResult": [
                    {
                        "attributeStatus": "Accepted",
                        "attributeValue": "FS-22",
                        "component": {"name": "ChargingStation"},
                        "variable": {"name": "Model"},
                    }
                ]
            }
        )

    csms, url = await start_csms(nursery)
    request = {
        "getVariableData": [
            {"component": {"name": "ChargingStation"}, "variable": {"name": "Model"}}
        ]
    }
    with trio.fail_after(WAIT_S):
        async with websocket_station(url, "CP1", handler=station_handler):
            await csms.wait_connected("CP1")
            answer = await csms.call("CP1", "GetVariables", request)
    assert answer["getVariableResult"][0]["attributeValue"] == "FS-22"


async def test_the_server_keeps_serving_after_a_connection_goes_wrong(
    nursery: trio.Nursery,
) -> None:
    csms, url = await start_csms(nursery)
    port = urlsplit(url).port
    assert port is not None
    with trio.fail_after(WAIT_S):
        garbage = await trio.open_tcp_stream("127.0.0.1", port)
        await garbage.send_all(b"NOT HTTP AT ALL\r\n\r\n")
        await garbage.aclose()
        async with open_websocket_url(f"{url}/CP1", subprotocols=["ocpp2.1"]) as connection:
            await connection.send_message("[2, 1, 2]")  # broken frame, no usable id
            unreadable = await connection.get_message()
            await connection.send_message('[2, "1", "Heartbeat", {}]')
            answer = await connection.get_message()
        async with websocket_station(url, "CP2") as link:
            assert await link.call("Heartbeat", {})
    assert isinstance(unreadable, str) and unreadable.startswith('[4,"-1","RpcFrameworkError"')
    assert isinstance(answer, str) and answer.startswith('[3,"1",{"currentTime":')
    assert csms.station("CP1").frames_dropped == 1
    assert csms.statistics().connections_accepted == 2
