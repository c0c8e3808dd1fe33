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
"""

from __future__ import annotations

import logging
import ssl
from typing import TYPE_CHECKING

import trio
from trio_websocket import WebSocketRequest, serve_websocket

from ..ocpp import subprotocol_for
from ..transport.channel import WebSocketChannel
from .handshake import SUBPROTOCOLS, choose_version, is_authorized, station_id_from_path

if TYPE_CHECKING:
    from .csms import Csms

__all__ = ["serve_websocket_csms"]

_log = logging.getLogger(__name__)

_UNAUTHORIZED_HEADERS = [(b"WWW-Authenticate", b'Basic realm="fleetsim", charset="UTF-8"')]
_NO_STATION_BODY = b"the URL path must end with the charging station id, e.g. /ocpp/CP0001\n"
_NO_SUBPROTOCOL_REASON = f"offer one of the subprotocols {', '.join(SUBPROTOCOLS)}"
_PROTOCOL_ERROR_CLOSE_CODE = 1002


async def serve_websocket_csms(
    csms: Csms,
    host: str | None,
    port: int,
    *,
    ssl_context: ssl.SSLContext | None = None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `csms` on `host:port` until cancelled; report the bound port to `nursery.start`.

    With `host` None and port 0 each interface may get a different port; the first is
    reported, so tests and the quickstart bind one loopback address.
    """

    async def handle(request: WebSocketRequest) -> None:
        try:
            await _handle_request(csms, request)
        except Exception as exc:
            csms.count_connection_error()
            _log.warning("embedded CSMS: connection %s failed: %r", request.path, exc)

    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_websocket, handle, host, port, ssl_context)
        task_status.started(server.port)


async def _handle_request(csms: Csms, request: WebSocketRequest) -> None:
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
