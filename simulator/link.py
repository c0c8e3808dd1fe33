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
from typing import Any, Awaitable, Callable, Final, Literal, Mapping, Protocol, get_args

__all__ = [
    "CONNECT_OUTCOMES",
    "LOCAL_CONNECT_OUTCOMES",
    "Answer",
    "CallHandler",
    "ConnectError",
    "ConnectOutcome",
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


#: How one attempt to open a station's link ended: the `outcome` label of
#: `fleetsim_connection_attempts_total`, and the one list of its values (each series exists
#: from the first scrape; mypy holds every `ConnectError` to it).
#:
#: - ok: the link opened;
#: - refused: nothing answered at the CSMS's address (connection refused, unreachable, a
#:   network partition of the scenario's faults); rejected: the CSMS answered the handshake
#:   with an HTTP error or another subprotocol; timeout: no handshake in time;
#: - TLS (`transport/tls.py`): untrusted_certificate, hostname_mismatch, certificate_expired,
#:   tls_version, client_certificate_refused, tls_failed (no known cause), and the station's
#:   own certificate files: client_certificate_missing, client_key_mismatch;
#: - this machine (`transport/connect.py`): source_address (an address it does not have, or
#:   no longer), local_ports (none left on the source address), local_files (no file
#:   descriptor left for the socket).
ConnectOutcome = Literal[
    "ok",
    "refused",
    "rejected",
    "timeout",
    "untrusted_certificate",
    "hostname_mismatch",
    "certificate_expired",
    "tls_version",
    "client_certificate_refused",
    "tls_failed",
    "client_certificate_missing",
    "client_key_mismatch",
    "source_address",
    "local_ports",
    "local_files",
]
CONNECT_OUTCOMES: Final[tuple[ConnectOutcome, ...]] = get_args(ConnectOutcome)
#: The outcomes whose cause lies on this machine, not with the CSMS, each with what went wrong
#: (a clause that follows "failed because") and what to do: a run whose connections all
#: failed this way says so instead of blaming the CSMS (`report/summary.py`).
LOCAL_CONNECT_OUTCOMES: Final[Mapping[ConnectOutcome, str]] = {
    "source_address": (
        "the source address is not one of this machine's (or no longer is): give addresses "
        "of this machine with --source-address (`ip -brief address` lists them)"
    ),
    "local_ports": (
        "no local port was left on the source address: give more addresses with "
        "--source-address, or run fewer stations on this machine (--shard I/N)"
    ),
    "local_files": (
        "no file descriptor was left for the socket: run the stations over more processes "
        "(--workers), or raise the open-file limit (`ulimit -n`)"
    ),
    "client_certificate_missing": (
        "the stations' client certificate could not be read: check --client-cert and "
        "--client-key (csms.security.client_cert, client_key)"
    ),
    "client_key_mismatch": (
        "the stations' private key does not belong to their client certificate: give the "
        "key made with the certificate (--client-key)"
    ),
}


class ConnectError(Exception):
    """A station could not open its link; `outcome` (one of `CONNECT_OUTCOMES`) is the label
    counted in `fleetsim_connection_attempts_total`."""

    def __init__(self, message: str, outcome: ConnectOutcome) -> None:
        super().__init__(message)
        self.outcome: ConnectOutcome = outcome


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
