"""Fixtures for the embedded CSMS tests: a station's end of a memory link, and fixed time."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import pytest
import trio

from fleetsim.simulator.csms import Csms
from fleetsim.simulator.link import Answer, CallHandler
from fleetsim.simulator.ocpp import (
    CSMS_INITIATED,
    ErrorCode,
    OcppVersion,
    RpcError,
    RpcSession,
    schema_set,
)
from fleetsim.simulator.transport import RpcLink, memory_channel_pair


def refuse_everything(action: str, payload: Mapping[str, Any]) -> Answer:
    """A station that implements no CSMS-initiated action."""
    raise RpcError(ErrorCode.NOT_IMPLEMENTED, f"this test station does not handle {action}")


ConnectStation = Callable[..., Awaitable[RpcLink]]


@pytest.fixture
def connect_station(nursery: trio.Nursery) -> ConnectStation:
    """Connect a bare station link to a CSMS over memory channels, as `attach` serves them.

    Returns the station's `RpcLink` once the CSMS counts the station as connected.
    """

    async def connect(
        csms: Csms,
        station_id: str = "CP1",
        *,
        version: OcppVersion = "2.1",
        handler: CallHandler = refuse_everything,
        validate_outgoing: bool = True,
    ) -> RpcLink:
        station_end, csms_end = memory_channel_pair()
        session = RpcSession(
            schema_set(version), CSMS_INITIATED, validate_outgoing=validate_outgoing
        )
        link = RpcLink(
            station_end, session, handler, spawn=nursery.start_soon, peer_name=station_id
        )
        nursery.start_soon(link.run)
        nursery.start_soon(csms.attach, station_id, csms_end, version)
        await csms.wait_connected(station_id)
        return link

    return connect
