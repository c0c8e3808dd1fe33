"""The embedded CSMS's WebSocket server: decide each handshake, then hand the station to `attach`.

A handshake is decided in this order, each failure answered the way a production CSMS answers:

1. No station id in the path (`/ocpp/`): HTTP 404, there is no such resource.
2. Basic auth configured and the credentials missing or wrong: HTTP 401 with a
   `WWW-Authenticate: Basic` challenge, so the station knows what to send.
3. No subprotocol the CSMS speaks among those offered: the handshake completes without a
   `Sec-WebSocket-Protocol` header and the CSMS closes the connection at once (code 1002).
   This is what OCPP-J prescribes when the CSMS agrees to none of the offered subprotocols,
   and what RFC 6455 expects of a server; a station then reports "chose no subprotocol"
   instead of a bare HTTP error.  Otherwise `ocpp2.1` is chosen over `ocpp2.0.1`.

Each connection runs in its own task under trio-websocket's server nursery.  Whatever goes
wrong on one connection is counted, logged and ends that connection only: an exception
escaping a handler would tear down the server and every station with it.

With `reuse_port` the listening sockets set SO_REUSEPORT, so several processes can listen on
the same address and port and the kernel spreads new connections over them
(`processes.py`): one Python process is one core and 20,000 open files here, and a CSMS under
load needs more of both.
"""

from __future__ import annotations

import logging
import socket
import ssl
from typing import TYPE_CHECKING, Protocol

import trio
from trio_websocket import WebSocketRequest, WebSocketServer

from ..ocpp import subprotocol_for
from ..transport.channel import WebSocketChannel
from .handshake import SUBPROTOCOLS, choose_version, is_authorized, station_id_from_path

if TYPE_CHECKING:
    from ..link import TextChannel
    from ..ocpp import OcppVersion
    from .policy import CsmsConfig


class ServedCsms(Protocol):
    """What the server needs of the CSMS it serves (`csms.Csms`, which starts the server)."""

    @property
    def config(self) -> CsmsConfig: ...

    async def attach(self, station_id: str, channel: TextChannel, version: OcppVersion) -> None: ...

    def count_rejected_handshake(self, reason: str) -> None: ...

    def count_connection_error(self) -> None: ...


__all__ = ["bind_reuse_port", "open_reuse_port_listeners", "serve_websocket_csms"]

_log = logging.getLogger(__name__)

_UNAUTHORIZED_HEADERS = [(b"WWW-Authenticate", b'Basic realm="fleetsim", charset="UTF-8"')]
_NO_STATION_BODY = b"the URL path must end with the charging station id, e.g. /ocpp/CP0001\n"
_NO_SUBPROTOCOL_REASON = f"offer one of the subprotocols {', '.join(SUBPROTOCOLS)}"
_PROTOCOL_ERROR_CLOSE_CODE = 1002
#: The listen backlog of SO_REUSEPORT sockets; Linux caps it at net.core.somaxconn, which is
#: what trio's own listeners ask for.  A burst of reconnecting stations waits here.
_LISTEN_BACKLOG = 0xFFFF


async def serve_websocket_csms(
    csms: ServedCsms,
    host: str | None,
    port: int,
    *,
    ssl_context: ssl.SSLContext | None = None,
    reuse_port: bool = False,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `csms` on `host:port` until cancelled; report the bound port to `nursery.start`.

    With `host` None and port 0 each interface may get a different port without
    `reuse_port` (with it they share the first one); the first is reported, so tests and the
    quickstart bind one loopback address.  An address that cannot be listened on raises its
    `OSError` from `nursery.start`, before anything is served.
    """

    async def handle(request: WebSocketRequest) -> None:
        try:
            await _handle_request(csms, request)
        except Exception as exc:
            csms.count_connection_error()
            _log.warning("embedded CSMS: connection %s failed: %r", request.path, exc)

    sockets = (
        await open_reuse_port_listeners(host, port)
        if reuse_port
        else await trio.open_tcp_listeners(port, host=host)
    )
    listeners: list[trio.SocketListener] | list[trio.SSLListener[trio.SocketStream]] = (
        sockets
        if ssl_context is None
        else [trio.SSLListener(each, ssl_context, https_compatible=True) for each in sockets]
    )
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(WebSocketServer(handle, listeners).run)
            task_status.started(_port_of(sockets[0]))
    finally:
        for each in sockets:
            each.socket.close()


def bind_reuse_port(host: str | None, port: int) -> list[socket.socket]:
    """Sockets bound, not yet listening, on every address of `host`, with SO_REUSEPORT set
    before binding; port 0 binds the first address to a free port and the others to that one.

    Other processes (same user) that bind the same address and port with SO_REUSEPORT share
    it.  Raises `OSError` when an address cannot be bound, or the platform has no SO_REUSEPORT.
    """
    reuse_port_option = getattr(socket, "SO_REUSEPORT", None)
    if reuse_port_option is None:
        raise OSError(
            "this platform has no SO_REUSEPORT, so several processes cannot share a port; "
            "run one CSMS process per port instead"
        )
    sockets: list[socket.socket] = []
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        for family, type_, proto, _, sockaddr in addresses:
            sock = socket.socket(family, type_, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, reuse_port_option, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if len(sockets) > 1:
                sockaddr = (sockaddr[0], sockets[0].getsockname()[1], *sockaddr[2:])
            sock.bind(sockaddr)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


async def open_reuse_port_listeners(host: str | None, port: int) -> list[trio.SocketListener]:
    """TCP listeners on every address of `host`, sharing the port with other processes
    (`bind_reuse_port`); each gets its own accept queue that the kernel fills by a hash of
    the connection's addresses."""
    await trio.lowlevel.checkpoint()
    listeners: list[trio.SocketListener] = []
    for sock in bind_reuse_port(host, port):
        sock.listen(_LISTEN_BACKLOG)
        listeners.append(trio.SocketListener(trio.socket.from_stdlib_socket(sock)))
    return listeners


def _port_of(listener: trio.SocketListener) -> int:
    return int(listener.socket.getsockname()[1])


async def _handle_request(csms: ServedCsms, request: WebSocketRequest) -> None:
    station_id = station_id_from_path(request.path)
    if station_id is None:
        csms.count_rejected_handshake("no_station_id")
        await request.reject(404, body=_NO_STATION_BODY)
        return
    if not is_authorized(station_id, request.headers, csms.config.basic_auth_passwords):
        csms.count_rejected_handshake("unauthorized")
        await request.reject(401, extra_headers=_UNAUTHORIZED_HEADERS)
        return
    version = choose_version(request.proposed_subprotocols)
    if version is None:
        csms.count_rejected_handshake("no_subprotocol")
        connection = await request.accept()
        await connection.aclose(_PROTOCOL_ERROR_CLOSE_CODE, _NO_SUBPROTOCOL_REASON)
        return
    connection = await request.accept(subprotocol=subprotocol_for(version))
    await csms.attach(station_id, WebSocketChannel(connection), version)
