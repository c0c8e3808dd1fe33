"""`open_memory_link`: a station connected to an in-process CSMS over memory channels.

The frames still go through JSON text, parsing and schema validation on both sides -- only the
socket is missing -- so station tests on trio's MockClock exercise the same code a load run does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import trio

from ..link import CallHandler, FollowUp, RpcLink, TextChannel, memory_channel_pair
from ..ocpp import OcppVersion, RpcSession, schema_set
from ..ocpp.actions import CSMS_INITIATED
from ..stats import LinkObserver

__all__ = ["ServeChannel", "open_memory_link"]

#: The CSMS side: serve station `station_id` over `channel` until it closes (`Csms.attach`).
ServeChannel = Callable[[str, TextChannel, OcppVersion], Awaitable[None]]


@asynccontextmanager
async def open_memory_link(
    station_id: str,
    serve: ServeChannel,
    handler: CallHandler,
    *,
    spawn: Callable[[FollowUp], object],
    observer: LinkObserver,
    ocpp_version: OcppVersion = "2.1",
    call_timeout_s: float = 30.0,
    validate_outgoing: bool = True,
) -> AsyncIterator[RpcLink]:
    station_end, csms_end = memory_channel_pair()
    link = RpcLink(
        station_end,
        RpcSession(schema_set(ocpp_version), CSMS_INITIATED, validate_outgoing=validate_outgoing),
        handler,
        spawn=spawn,
        call_timeout_s=call_timeout_s,
        observer=observer,
        peer_name=station_id,
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve, station_id, csms_end, ocpp_version)
        nursery.start_soon(link.run)
        try:
            yield link
        finally:
            await link.aclose()
            nursery.cancel_scope.cancel()
