"""Stations connecting from chosen local addresses (`--source-address`), and the errors that
say so when the address is not this machine's: before the run, and at connect time."""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import socket
from typing import Any

import pytest
import trio
from trio_websocket import ConnectionClosed, WebSocketRequest, serve_websocket

import fleetsim.simulator.transport.connect as connect_module
from fleetsim.simulator.link import Answer, ConnectError
from fleetsim.simulator.stats import RunStats
from fleetsim.simulator.transport import (
    ConnectionSettings,
    SourceAddressError,
    check_source_addresses,
    open_station_link,
    parse_source_addresses,
    source_address_problem,
)


def test_lists_and_ranges_become_addresses() -> None:
    assert parse_source_addresses("127.0.0.2,127.0.0.3") == ("127.0.0.2", "127.0.0.3")
    assert parse_source_addresses("127.0.0.254-127.0.1.1") == (
        "127.0.0.254",
        "127.0.0.255",
        "127.0.1.0",
        "127.0.1.1",
    )
    assert parse_source_addresses("::1,fd00::9-fd00::a") == ("::1", "fd00::9", "fd00::a")


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


def _absent_address() -> str:
    """An IPv4 address this machine surely lacks (a test machine may own part of TEST-NET-1,
    so the first of a few candidates that a plain socket cannot bind)."""
    for candidate in ("10.99.99.99", "192.0.2.199", "198.51.100.99", "203.0.113.99"):
        with socket.socket() as probe:
            try:
                probe.bind((candidate, 0))
            except OSError as exc:
                if exc.errno == errno.EADDRNOTAVAIL:
                    return candidate
    pytest.skip("this machine has every candidate address")


def test_addresses_of_this_machine_pass_the_pre_flight_check() -> None:
    check_source_addresses(parse_source_addresses("127.0.0.1-127.0.0.20,::1"))
    assert source_address_problem("127.0.0.2") is None


def test_an_address_this_machine_lacks_is_named_before_the_run_with_the_fix() -> None:
    absent = _absent_address()
    with pytest.raises(SourceAddressError) as error:
        check_source_addresses(("127.0.0.2", absent))
    assert str(error.value) == (
        f"--source-address: {absent} is not an address of this machine (bind failed: "
        "EADDRNOTAVAIL); list them with `ip -brief address`, or add it to the interface "
        f"towards the CSMS (as root: `ip address add {absent}/32 dev IFACE`; `lo` for a CSMS "
        "on this machine), or leave it out of --source-address"
    )
    assert isinstance(error.value, ValueError)  # what plan_run turns into a refusal


def test_many_absent_addresses_are_named_in_one_message() -> None:
    absent = ipaddress.ip_address(_absent_address())
    addresses = tuple(str(absent + offset) for offset in range(8))
    if any(source_address_problem(address) is None for address in addresses):
        pytest.skip("this machine has an address next to the absent one")
    with pytest.raises(SourceAddressError) as error:
        check_source_addresses(("127.0.0.2", *addresses))
    message = str(error.value)
    assert message.startswith(
        f"--source-address: 8 of the 9 addresses cannot be used: {addresses[0]} is not an "
        "address of this machine"
    )
    assert message.endswith(f"the same holds for {', '.join(addresses[1:6])} and 2 more")


async def test_a_connection_from_an_absent_address_blames_this_machine(
    nursery: trio.Nursery,
) -> None:
    absent = _absent_address()

    async def handler(request: WebSocketRequest) -> None:
        raise AssertionError("no connection should arrive")

    server = await nursery.start(serve_websocket, handler, "127.0.0.1", 0, None)
    url = f"ws://127.0.0.1:{server.port}/ocpp"
    settings = ConnectionSettings(csms_url=url, connect_timeout_s=5)
    with trio.fail_after(10), pytest.raises(ConnectError) as error:
        async with open_station_link(
            "CP1",
            settings,
            _refuse,
            spawn=nursery.start_soon,
            observer=RunStats(),
            source_address=absent,
        ):
            pass
    assert error.value.outcome == "source_address"
    message = str(error.value)
    assert message.startswith(
        f"station CP1: cannot connect to {url}/CP1 from {absent}: {absent} is not an address "
        "of this machine (bind failed: EADDRNOTAVAIL); list them with `ip -brief address`"
    )
    assert "CSMS running" not in message


async def test_no_local_port_left_blames_this_machine(
    nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def ports_used_up(*args: Any, **kwargs: Any) -> None:
        # What trio raises when connect() finds no free local port (the kernel's EADDRNOTAVAIL).
        attempts = [OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address")]
        message = "all attempts to connect to 127.0.0.1:9 failed"
        raise OSError(message) from ExceptionGroup(message, attempts)

    monkeypatch.setattr(connect_module, "open_station_websocket", ports_used_up)
    settings = ConnectionSettings(csms_url="ws://127.0.0.1:9/ocpp")
    for source, named in ((None, "this machine's address"), ("127.0.0.2", "127.0.0.2")):
        with trio.fail_after(10), pytest.raises(ConnectError) as error:
            async with open_station_link(
                "CP1",
                settings,
                _refuse,
                spawn=nursery.start_soon,
                observer=RunStats(),
                source_address=source,
            ):
                pass
        assert error.value.outcome == "local_ports"
        assert str(error.value) == (
            "station CP1: cannot connect to ws://127.0.0.1:9/ocpp/CP1: no local port is free on "
            f"{named} towards the CSMS (connect failed: EADDRNOTAVAIL); one source address has "
            "as many ports as net.ipv4.ip_local_port_range holds: give more with "
            "--source-address, or run fewer stations on this machine (--shard I/N)"
        )
