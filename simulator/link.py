"""`Link`: the interface station and CSMS code talk through, whatever carries the text.

A `Link` is one OCPP-J connection seen from one end: it sends CALLs and waits for their answers
(`call`), sends unconfirmed SEND frames (`send`), and hands each incoming CALL to a
`CallHandler` (incoming SENDs to a `SendHandler`).  Station code is written against this module
only; the implementation, `RpcLink` in `simulator/transport/rpc_link.py`, runs an `RpcSession`
over any `TextChannel` -- a station's WebSocket, the embedded CSMS's trio-websocket connection,
or a pair of in-memory channels -- so tests run real station code on MockClock with no sockets
while every frame still goes through the same parsing and validation.

Handlers are plain functions: they get the action and payload and return an `Answer` at once.
What must happen after the answer is on the wire -- the TransactionEvent after a
RequestStartTransaction, the reboot after a Reset -- goes in `Answer.then`, which the link starts
in the owner's nursery once the CALLRESULT is sent.  A handler cannot wait for a CALL of its own,
which would deadlock the reader that must deliver that CALL's answer.  A handler that raises
`RpcError` is answered with that CALLERROR; any other exception becomes an InternalError.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Mapping, Protocol

__all__ = [
    "Answer",
    "CallHandler",
    "ConnectError",
    "FollowUp",
    "Link",
    "SendHandler",
    "TextChannel",
]

#: Work started once an answer is on the wire (`Answer.then`).
FollowUp = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Answer:
    """A handler's response payload, and what to start once it has been sent."""

    payload: Mapping[str, Any]
    then: FollowUp | None = None


#: Answers an incoming CALL (action, payload) at once, without awaiting.
CallHandler = Callable[[str, Mapping[str, Any]], Answer]

#: Takes an incoming SEND (action, payload); a SEND gets no answer.
SendHandler = Callable[[str, Mapping[str, Any]], None]


class ConnectError(Exception):
    """A station could not open its link; `outcome` is the label counted in
    `fleetsim_connection_attempts_total` (refused, rejected, timeout)."""

    def __init__(self, message: str, outcome: str) -> None:
        super().__init__(message)
        self.outcome = outcome


class TextChannel(Protocol):
    """A bidirectional carrier of WebSocket text messages."""

    async def send_text(self, text: str) -> None:
        """Send one message; raise `LinkClosed` when the connection is gone."""

    async def receive_text(self) -> str | bytes:
        """The next message; raise `LinkClosed` when the connection is gone."""

    async def aclose(self) -> None: ...


class Link(Protocol):
    """The small interface station code is written against."""

    on_closed: Callable[[], None] | None

    @property
    def closed(self) -> bool: ...

    async def call(
        self, action: str, payload: Mapping[str, Any], *, timeout_s: float | None = None
    ) -> Mapping[str, Any]: ...

    async def send(self, action: str, payload: Mapping[str, Any]) -> None: ...

    async def wait_closed(self) -> None: ...

    async def aclose(self) -> None: ...
