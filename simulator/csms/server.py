"""The embedded CSMS's WebSocket server: decide each handshake, then hand the station to `attach`.

A handshake is decided in this order, each failure answered the way a production CSMS answers:

1. No station id in the path (`/ocpp/`): HTTP 404, there is no such resource.
2. Client certificates required (security profile 3) and the certificate's common name is not
   the station id: HTTP 403, the station is not who it says it is.  (A certificate the CA did
   not issue never gets this far: the TLS handshake refuses it.)
3. Basic auth configured and the credentials missing or wrong: HTTP 401 with a
   `WWW-Authenticate: Basic` challenge, so the station knows what to send.
4. No subprotocol the CSMS speaks among those offered: the handshake completes without a
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

`CsmsTls` makes what the embedded CSMS needs to serve wss:// on one machine: a CA made at start,
a server certificate for loopback, the CA written to a file for the stations to trust, and,
under profile 3, a client certificate for each station (CN = its id) issued when it connects.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast
from urllib.parse import quote

import trio
from trio_websocket import WebSocketRequest, WebSocketServer

from ..ocpp import subprotocol_for
from ..transport.channel import WebSocketChannel
from ..transport.tls import in_memory_file
from .handshake import (
    SUBPROTOCOLS,
    certificate_common_name,
    choose_version,
    is_authorized,
    station_id_from_path,
)

if TYPE_CHECKING:
    from ..link import TextChannel
    from ..ocpp import OcppVersion
    from ..pki import CertificateAuthority
    from .policy import CsmsConfig


class ServedCsms(Protocol):
    """What the server needs of the CSMS it serves (`csms.Csms`, which starts the server)."""

    @property
    def config(self) -> CsmsConfig: ...

    async def attach(self, station_id: str, channel: TextChannel, version: OcppVersion) -> None: ...

    def count_rejected_handshake(self, reason: str) -> None: ...

    def count_connection_error(self) -> None: ...


__all__ = ["CsmsTls", "bind_reuse_port", "open_reuse_port_listeners", "serve_websocket_csms"]

_log = logging.getLogger(__name__)

_UNAUTHORIZED_HEADERS = [(b"WWW-Authenticate", b'Basic realm="fleetsim", charset="UTF-8"')]
_NO_STATION_BODY = b"the URL path must end with the charging station id, e.g. /ocpp/CP0001\n"
_WRONG_IDENTITY_BODY = (
    b"the common name of the client certificate must be the charging station id of the URL\n"
)
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

    # Profile 3: the TLS handshake has checked the certificate; the id must match it too.
    check_identity = ssl_context is not None and ssl_context.verify_mode == ssl.CERT_REQUIRED

    async def handle(request: WebSocketRequest) -> None:
        try:
            await _handle_request(csms, request, check_identity)
        except Exception as exc:
            csms.count_connection_error()
            _log.warning("embedded CSMS: connection %s failed: %r", request.path, exc)

    sockets = (
        await open_reuse_port_listeners(host, port)
        if reuse_port
        else await trio.open_tcp_listeners(port, host=host)
    )
    listeners: list[trio.SocketListener] | list[_TlsListener] = (
        sockets
        if ssl_context is None
        else [
            _TlsListener(trio.SSLListener(each, ssl_context, https_compatible=True))
            for each in sockets
        ]
    )
    # trio-websocket serves any trio Listener (it hands them to trio.serve_listeners); its
    # annotation names only the two kinds it knows.
    served = cast("list[trio.SocketListener]", listeners)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(WebSocketServer(handle, served).run)
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


def _peer_certificate(request: WebSocketRequest) -> dict[str, Any] | None:
    """The client certificate of the TLS connection under `request`, if any.  trio-websocket
    does not expose the stream, so this reaches for it; not finding it refuses (None)."""
    connection = getattr(request, "_connection", None)
    stream = getattr(connection, "_stream", None)
    if not isinstance(stream, _AlertingTlsStream):
        return None
    return stream.peer_certificate()


class _AlertingTlsStream(trio.abc.Stream):
    """A server's `SSLStream` that, when the TLS handshake fails, still sends the alert that
    says why (an unknown CA, a missing client certificate) and closes the connection.

    trio drops the alert and leaves the TCP connection open, so a station refused for its
    certificate would only see a timeout instead of a reason.
    """

    def __init__(self, stream: trio.SSLStream[trio.SocketStream]) -> None:
        self._stream = stream

    def peer_certificate(self) -> dict[str, Any] | None:
        try:
            certificate: dict[str, Any] | None = self._stream.getpeercert()
        except (ValueError, trio.NeedHandshakeError):
            return None
        return certificate

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        try:
            await self._stream.send_all(data)
        except trio.BrokenResourceError:
            await self._refuse()
            raise

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        try:
            return await self._stream.receive_some(max_bytes)
        except trio.BrokenResourceError:
            await self._refuse()
            raise

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def _refuse(self) -> None:
        """Send what TLS left to send (the alert), then close the TCP connection."""
        outgoing = getattr(self._stream, "_outgoing", None)
        alert = outgoing.read() if isinstance(outgoing, ssl.MemoryBIO) else b""
        transport = self._stream.transport_stream
        if alert:
            with (
                trio.move_on_after(1.0),
                contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError),
            ):
                await transport.send_all(alert)
        await trio.aclose_forcefully(transport)


class _TlsListener(trio.abc.Listener[_AlertingTlsStream]):
    """`trio.SSLListener` whose streams send their handshake's alert (`_AlertingTlsStream`)."""

    def __init__(self, listener: trio.SSLListener[trio.SocketStream]) -> None:
        self._listener = listener

    async def accept(self) -> _AlertingTlsStream:
        return _AlertingTlsStream(await self._listener.accept())

    async def aclose(self) -> None:
        await self._listener.aclose()


async def _handle_request(
    csms: ServedCsms, request: WebSocketRequest, check_identity: bool = False
) -> None:
    station_id = station_id_from_path(request.path)
    if station_id is None:
        csms.count_rejected_handshake("no_station_id")
        await request.reject(404, body=_NO_STATION_BODY)
        return
    if check_identity and certificate_common_name(_peer_certificate(request)) != station_id:
        csms.count_rejected_handshake("wrong_certificate")
        await request.reject(403, body=_WRONG_IDENTITY_BODY)
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


@dataclass(slots=True)
class CsmsTls:
    """TLS for the embedded CSMS on one machine (security profiles 2 and 3); see the module
    docstring.  Make it with `create`."""

    profile: int
    authority: CertificateAuthority
    server_context: ssl.SSLContext
    #: The CA certificate, for the stations to trust (and to verify their certificates).
    ca_file: Path
    #: The CN given to the stations' certificates is their id; their organization is this.
    organization: str = field(default="fleetsim")
    #: Where `write_station_certificates` put one PEM file (chain and key) per station.
    stations_dir: Path | None = None

    @classmethod
    def create(
        cls,
        profile: int,
        directory: Path,
        hosts: tuple[str, ...] = ("127.0.0.1", "localhost"),
        *,
        client_ca_file: Path | None = None,
    ) -> CsmsTls:
        """A CA, a server certificate for `hosts`, and `directory`/ca.pem.  Under profile 3
        clients must present a certificate of this CA or, given, of `client_ca_file`."""
        from ..pki import CertificateAuthority

        authority = CertificateAuthority.create("fleetsim embedded CSMS CA")
        server = authority.issue_server_certificate(hosts)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        with in_memory_file(server.chain_pem) as chain, in_memory_file(server.key_pem) as key:
            context.load_cert_chain(chain, key)
        if profile >= 3:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cadata=authority.certificate_pem.decode())
            if client_ca_file is not None:
                context.load_verify_locations(cafile=str(client_ca_file))
        directory.mkdir(parents=True, exist_ok=True)
        ca_file = directory / "ca.pem"
        ca_file.write_bytes(authority.certificate_pem)
        return cls(profile, authority, context, ca_file)

    def station_identity(self, station_id: str) -> tuple[bytes, bytes]:
        """A new client certificate for `station_id` (CN = the id) and its key, PEM.  Made
        when the station connects, so a fleet keeps none it does not use; the leaf alone, as
        the CSMS holds the CA (6 KB less per connected station than with the CA in the
        chain)."""
        from ..pki import certificate_pem

        issued = self.authority.issue_client_certificate(station_id, self.organization)
        return certificate_pem(issued.certificate), issued.key_pem

    def write_station_certificates(self, directory: Path, station_ids: Iterable[str]) -> None:
        """One file per station, `<id>.pem` (certificate chain, then key; readable by the
        owner only), for stations of another process (`fleetsim run --client-cert
        DIR/{station_id}.pem`)."""
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        for station_id in station_ids:
            chain_pem, key_pem = self.station_identity(station_id)
            path = directory / f"{quote(station_id, safe='')}.pem"
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with open(descriptor, "wb") as file:
                file.write(chain_pem + key_pem)
        self.stations_dir = directory
