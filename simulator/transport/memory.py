"""In-memory links: two connected text channels, and a station joined through them to a CSMS.

The frames still go through JSON text, parsing and schema validation on both sides -- only the
socket is missing -- so station tests on trio's MockClock exercise the same code a load run does.
`memory_channel_pair` gives the two ends of such a connection; `open_memory_link` connects a
station to an in-process CSMS with them.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import trio

from ..link import CallHandler, FollowUp, TextChannel
from ..ocpp import LinkClosed, OcppVersion, RpcSession, schema_set
from ..ocpp.actions import CSMS_INITIATED
from ..stats import LinkObserver
from .rpc_link import RpcLink

__all__ = ["ServeChannel", "memory_channel_pair", "open_memory_link"]

#: The CSMS side: serve station `station_id` over `channel` until it closes (`Csms.attach`).
ServeChannel = Callable[[str, TextChannel, OcppVersion], Awaitable[None]]


class _MemoryChannel:
    """One end of an in-memory `TextChannel` pair."""

    __slots__ = ("_receive", "_send")

    def __init__(
        self, send: trio.MemorySendChannel[str], receive: trio.MemoryReceiveChannel[str]
    ) -> None:
        self._send = send
        self._receive = receive

    async def send_text(self, text: str) -> None:
        try:
            await self._send.send(text)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise LinkClosed("memory channel closed") from None

    async def receive_text(self) -> str:
        try:
            return await self._receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise LinkClosed("memory channel closed") from None

    async def aclose(self) -> None:
        await self._send.aclose()
        await self._receive.aclose()


def memory_channel_pair(buffer: float = math.inf) -> tuple[TextChannel, TextChannel]:
    """Two connected in-memory text channels, like the two ends of one WebSocket."""
    a_send, b_receive = trio.open_memory_channel[str](buffer)
    b_send, a_receive = trio.open_memory_channel[str](buffer)
    return _MemoryChannel(a_send, a_receive), _MemoryChannel(b_send, b_receive)


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
