"""`open_station_link` against real loopback servers that misbehave in the ways CSMSs do."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
from trio_websocket import WebSocketRequest, serve_websocket

from fleetsim.simulator.link import Answer, ConnectError
from fleetsim.simulator.stats import RunStats
from fleetsim.simulator.transport import ConnectionSettings, open_station_link, station_url


def _refuse_calls(action: str, payload: Any) -> Answer:
    raise AssertionError("no CALL expected")


async def _serve(
    nursery: trio.Nursery, handler: Callable[[WebSocketRequest], Awaitable[None]]
) -> str:
    server = await nursery.start(serve_websocket, handler, "127.0.0.1", 0, None)
    return f"ws://127.0.0.1:{server.port}/ocpp"


async def _connect(url: str, nursery: trio.Nursery, version: Any = "2.1") -> None:
    settings = ConnectionSettings(csms_url=url, ocpp_version=version, connect_timeout_s=5)
    with trio.fail_after(10):
        async with open_station_link(
            "CP1", settings, _refuse_calls, spawn=nursery.start_soon, observer=RunStats()
        ):
            pass


async def test_a_csms_that_picks_no_subprotocol_is_explained(nursery: trio.Nursery) -> None:
    async def accept_without_subprotocol(request: WebSocketRequest) -> None:
        connection = await request.accept()
        await trio.sleep(5)
        await connection.aclose()

    url = await _serve(nursery, accept_without_subprotocol)
    with pytest.raises(ConnectError) as error:
        await _connect(url, nursery)
    assert error.value.outcome == "rejected"
    assert str(error.value) == (
        f"station CP1: {url}/CP1 chose no subprotocol (we offered ocpp2.1); "
        "try --ocpp-version 2.0.1"
    )


async def test_a_csms_that_rejects_the_handshake_is_explained(nursery: trio.Nursery) -> None:
    async def reject(request: WebSocketRequest) -> None:
        await request.reject(404)

    url = await _serve(nursery, reject)
    with pytest.raises(ConnectError) as error:
        await _connect(url, nursery)
    assert error.value.outcome == "rejected"
    assert "HTTP 404" in str(error.value)
    assert "does the CSMS know this station id?" in str(error.value)


async def test_nothing_listening_is_explained(nursery: trio.Nursery) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"ws://127.0.0.1:{port}/ocpp"
    with pytest.raises(ConnectError) as error:
        await _connect(url, nursery)
    assert error.value.outcome == "refused"
    assert str(error.value).startswith(f"station CP1: cannot connect to {url}/CP1")
    assert str(error.value).endswith("is the CSMS running and the URL right?")


def test_station_ids_are_one_percent_encoded_path_segment() -> None:
    assert station_url("ws://h:1/ocpp/", "CP 1/a") == "ws://h:1/ocpp/CP%201%2Fa"
