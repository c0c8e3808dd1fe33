"""`open_station_link`: one station's WebSocket to the CSMS, as a running `RpcLink`.

The station connects to `{csms_url}/{station_id}` offering one subprotocol (`ocpp2.1`, or
`ocpp2.0.1` when asked) and, for security profile 1, an HTTP Basic `Authorization` header with
the station id as user name.  Every way the handshake can fail becomes a `ConnectError` whose
message says what went wrong and what to try, and whose `outcome` is the label counted in
`fleetsim_connection_attempts_total`.
"""

from __future__ import annotations

import base64
import functools
import ssl
import urllib.parse
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import trio

from ..link import CallHandler, ConnectError, FollowUp, SendHandler
from ..ocpp import OcppVersion, RpcSession, schema_set, subprotocol_for
from ..ocpp.actions import CSMS_INITIATED
from ..stats import LinkObserver
from .rpc_link import CallDeadlines, RpcLink
from .websocket import HandshakeFailed, HandshakeRejected, open_station_websocket

__all__ = ["ConnectError", "ConnectionSettings", "open_station_link", "station_url"]


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    """How every station of a fleet reaches the CSMS."""

    csms_url: str
    ocpp_version: OcppVersion = "2.1"
    #: Security profile 1/2 password; None sends no Authorization header.
    basic_auth_password: str | None = None
    ssl_context: ssl.SSLContext | None = None
    connect_timeout_s: float = 10.0
    call_timeout_s: float = 30.0
    validate_outgoing: bool = True
    #: Local addresses to connect from, shared out over the stations (empty: the system's).
    source_addresses: tuple[str, ...] = ()


def station_url(csms_url: str, station_id: str) -> str:
    """`{csms_url}/{station_id}`, the id percent-encoded as one path segment."""
    return f"{csms_url.rstrip('/')}/{urllib.parse.quote(station_id, safe='')}"


def _basic_auth_header(station_id: str, password: str) -> tuple[bytes, bytes]:
    token = base64.b64encode(f"{station_id}:{password}".encode()).decode()
    return b"Authorization", f"Basic {token}".encode()


def _explain_rejection(station_id: str, url: str, status: int, settings: ConnectionSettings) -> str:
    if status == 401:
        hint = (
            "check the password (scenario csms.password or the environment variable named by "
            "csms.password_env)"
            if settings.basic_auth_password
            else "the CSMS wants HTTP Basic auth: set csms.password or csms.password_env"
        )
        return f"station {station_id}: {url} refused the credentials (HTTP 401); {hint}"
    if status == 404:
        return (
            f"station {station_id}: {url} answered HTTP 404; is the CSMS path right, and does "
            "the CSMS know this station id?"
        )
    return f"station {station_id}: {url} rejected the WebSocket handshake with HTTP {status}"


@asynccontextmanager
async def open_station_link(
    station_id: str,
    settings: ConnectionSettings,
    handler: CallHandler,
    *,
    spawn: Callable[[FollowUp], object],
    observer: LinkObserver,
    send_handler: SendHandler | None = None,
    deadlines: CallDeadlines | None = None,
    source_address: str | None = None,
) -> AsyncIterator[RpcLink]:
    """Connect, start the link's reader, yield the link; close the connection on exit.

    `deadlines` is the fleet's shared CALL timeout sweeper; without it each CALL times out
    through a cancel scope of its own.  `source_address` is the local address to connect from
    (one address has a limited number of ephemeral ports towards one CSMS address).

    The WebSocket is fleetsim's own lean client (`websocket.py`): the link's reader, which runs
    in the station's nursery, reads the socket itself, so a station has no transport task or
    nursery of its own.
    """
    url = station_url(settings.csms_url, station_id)
    protocol = subprotocol_for(settings.ocpp_version)
    headers = []
    if settings.basic_auth_password is not None:
        headers.append(_basic_auth_header(station_id, settings.basic_auth_password))
    parts = urllib.parse.urlsplit(url)
    secure = parts.scheme == "wss"
    context = None
    if secure:
        context = settings.ssl_context or _default_ssl_context()
    try:
        with trio.fail_after(settings.connect_timeout_s):
            connection = await open_station_websocket(
                parts.hostname or "",
                parts.port or (443 if secure else 80),
                parts.path + (f"?{parts.query}" if parts.query else ""),
                host_header=parts.netloc.rpartition("@")[2],
                subprotocol=protocol,
                headers=headers,
                ssl_context=context,
                source_address=source_address,
            )
    except trio.TooSlowError:
        raise ConnectError(
            f"station {station_id}: no WebSocket handshake with {url} within "
            f"{settings.connect_timeout_s:g} s",
            "timeout",
        ) from None
    except HandshakeRejected as exc:
        raise ConnectError(
            _explain_rejection(station_id, url, exc.status_code, settings), "rejected"
        ) from exc
    except (HandshakeFailed, OSError) as exc:
        raise ConnectError(
            f"station {station_id}: cannot connect to {url}: {exc}; is the CSMS running "
            "and the URL right?",
            "refused",
        ) from exc
    try:
        _check_subprotocol(station_id, url, connection.subprotocol, settings)
        session = RpcSession(
            schema_set(settings.ocpp_version),
            CSMS_INITIATED,
            validate_outgoing=settings.validate_outgoing,
        )
        link = RpcLink(
            connection,
            session,
            handler,
            spawn=spawn,
            call_timeout_s=settings.call_timeout_s,
            observer=observer,
            peer_name=station_id,
            send_handler=send_handler,
            deadlines=deadlines,
        )
        # The reader runs in the station's nursery; it ends by itself when the connection
        # closes on leaving this block.
        spawn(link.run)
        yield link
    finally:
        await connection.aclose()


@functools.cache
def _default_ssl_context() -> ssl.SSLContext:
    """The system's trust for `wss://` without a scenario CA: built once (it loads the CA
    bundle) and shared by every station, as one SSLContext may be."""
    return ssl.create_default_context()


def _check_subprotocol(
    station_id: str, url: str, chosen: str | None, settings: ConnectionSettings
) -> None:
    protocol = subprotocol_for(settings.ocpp_version)
    if chosen == protocol:
        return
    other = "2.0.1" if settings.ocpp_version == "2.1" else "2.1"
    what = f"chose {chosen}" if chosen else "chose no subprotocol"
    raise ConnectError(
        f"station {station_id}: {url} {what} (we offered {protocol}); try --ocpp-version {other}",
        "rejected",
    )
