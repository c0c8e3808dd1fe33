"""Stations connecting from chosen local addresses (`--source-address`)."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
import trio
from trio_websocket import ConnectionClosed, WebSocketRequest, serve_websocket

from simulator.link import Answer
from simulator.stats import RunStats
from simulator.transport import ConnectionSettings, open_station_link, parse_source_addresses


def test_lists_and_ranges_become_addresses() -> None:
    assert parse_source_addresses("127.0.0.2,127.0.0.3") == ("127.0.0.2", "127.0.0.3")
    assert parse_source_addresses("127.0.0.254-127.0.1.1") == (
        "127.0.0.254",
        "127.0.0.255",
        "127.0.1.0",
        "127.0.1.1",
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("127.0.0.9-127.0.0.2", "'127.0.0.9-127.0.0.2' is not a range from low to high"),
        ("localhost", "'localhost' is not an IP address or a range like 127.0.0.2-127.0.0.9"),
        ("127.0.0.2,", "--source-address has an empty entry in '127.0.0.2,'"),
    ],
)
def test_bad_addresses_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError) as error:
        parse_source_addresses(text)
    assert message in str(error.value)


def _refuse(action: str, payload: Any) -> Answer:
    raise AssertionError("no CALL expected")


async def test_each_connection_leaves_from_its_source_address(nursery: trio.Nursery) -> None:
    seen: list[str] = []

    async def handler(request: WebSocketRequest) -> None:
        seen.append(str(request.remote.address))  # type: ignore[union-attr]
        connection = await request.accept(subprotocol="ocpp2.1")
        with contextlib.suppress(ConnectionClosed):
            await connection.get_message()

    server = await nursery.start(serve_websocket, handler, "127.0.0.1", 0, None)
    settings = ConnectionSettings(csms_url=f"ws://127.0.0.1:{server.port}/ocpp")
    with trio.fail_after(10):
        for source in ("127.0.0.2", "127.0.0.3"):
            async with open_station_link(
                "CP1",
                settings,
                _refuse,
                spawn=nursery.start_soon,
                observer=RunStats(),
                source_address=source,
            ) as link:
                assert not link.closed
    assert seen == ["127.0.0.2", "127.0.0.3"]
