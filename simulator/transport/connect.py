"""`open_station_link`: one station's WebSocket to the CSMS, as a running `RpcLink`.

The station connects to `{csms_url}/{station_id}`, or, when the URL holds `{station_id}`, to
the URL with the id put there (`wss://h/ocpp/{station_id}/`, `wss://h/ocpp?id={station_id}`),
offering one subprotocol (`ocpp2.1`, or `ocpp2.0.1` when asked).  Security profiles 1 and 2
send an HTTP Basic `Authorization` header with the station id as user name; profiles 2 and 3
speak TLS 1.2 or later, and profile 3 presents the station's client certificate instead of a
password (`tls.py`).  Every way the handshake can fail becomes a `ConnectError` whose message
says what went wrong and what to try, and whose `outcome` is the label counted in
`fleetsim_connection_attempts_total`; a failure of this machine's own (a source address it
does not have, no local port left, no file descriptor for the socket) names the local cause
rather than blaming the CSMS.
"""

from __future__ import annotations

import base64
import errno
import resource
import ssl
import urllib.parse
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Final

import trio

from ..link import CallHandler, ConnectError, FollowUp, SendHandler
from ..ocpp import OcppVersion, RpcSession, schema_set, subprotocol_for
from ..ocpp.actions import CSMS_INITIATED
from ..stats import LinkObserver
from .addresses import source_address_problem
from .rpc_link import CallDeadlines, RpcLink
from .tls import (
    TlsSettings,
    client_context_for_files,
    client_context_for_identity,
    explain_tls_failure,
    server_trust_context,
)
from .websocket import HandshakeFailed, HandshakeRejected, open_station_websocket

__all__ = [
    "ConnectError",
    "ConnectionSettings",
    "CredentialsRefused",
    "LOCAL_FILES_EXHAUSTED",
    "LOCAL_PORTS_EXHAUSTED",
    "SOURCE_ADDRESS_UNUSABLE",
    "STATION_ID_PLACEHOLDER",
    "open_station_link",
    "station_url",
]

#: Where a CSMS URL template puts the station id.
STATION_ID_PLACEHOLDER = "{station_id}"
#: `ConnectError.outcome` when this machine, not the CSMS, failed the connection: the source
#: address is not one of the machine's, no local port was left to connect from, or no file
#: descriptor for the socket (among `link.LOCAL_CONNECT_OUTCOMES`).
SOURCE_ADDRESS_UNUSABLE: Final = "source_address"
LOCAL_PORTS_EXHAUSTED: Final = "local_ports"
LOCAL_FILES_EXHAUSTED: Final = "local_files"


class CredentialsRefused(ConnectError):
    """The CSMS answered the handshake with HTTP 401: it refused the station's password
    (A01: a station trying a new password falls back to the old one)."""


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    """How every station of a fleet reaches the CSMS."""

    csms_url: str
    ocpp_version: OcppVersion = "2.1"
    #: Security profile 1/2 password; None sends no Authorization header.
    basic_auth_password: str | None = field(default=None, repr=False)
    #: A context to use for every wss:// connection instead of the one `tls` describes.
    ssl_context: ssl.SSLContext | None = None
    #: The security profile, the CA to trust and the client certificate (profile 3).
    tls: TlsSettings = field(default_factory=TlsSettings)
    connect_timeout_s: float = 10.0
    call_timeout_s: float = 30.0
    validate_outgoing: bool = True
    #: Local addresses to connect from, shared out over the stations (empty: the system's).
    source_addresses: tuple[str, ...] = ()


def station_url(csms_url: str, station_id: str) -> str:
    """The URL `station_id` connects to: `csms_url` with the percent-encoded id put where it
    says `{station_id}`, else `{csms_url}/{station_id}` (OCPP-J's rule)."""
    quoted = urllib.parse.quote(station_id, safe="")
    if STATION_ID_PLACEHOLDER in csms_url:
        return csms_url.replace(STATION_ID_PLACEHOLDER, quoted)
    return f"{csms_url.rstrip('/')}/{quoted}"


def _basic_auth_header(station_id: str, password: str) -> tuple[bytes, bytes]:
    token = base64.b64encode(f"{station_id}:{password}".encode()).decode()
    return b"Authorization", f"Basic {token}".encode()


def _explain_rejection(station_id: str, url: str, status: int, settings: ConnectionSettings) -> str:
    if status == 401:
        if settings.tls.profile == 3:
            return (
                f"station {station_id}: {url} refused the connection (HTTP 401) although the "
                "station presented its client certificate (security profile 3); does the CSMS "
                "expect a password (profile 1 or 2)?"
            )
        hint = (
            "check the password (scenario csms.password or the environment variable named by "
            "csms.password_env)"
            if settings.basic_auth_password
            else "the CSMS wants HTTP Basic auth: set csms.password or csms.password_env"
        )
        return f"station {station_id}: {url} refused the credentials (HTTP 401); {hint}"
    if status == 403 and settings.tls.profile == 3:
        return (
            f"station {station_id}: {url} refused the station's client certificate (HTTP 403); "
            "its common name must be the station id"
        )
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
    client_identity: tuple[bytes, bytes] | None = None,
) -> AsyncIterator[RpcLink]:
    """Connect, start the link's reader, yield the link; close the connection on exit.

    `deadlines` is the fleet's shared CALL timeout sweeper; without it each CALL times out
    through a cancel scope of its own.  `source_address` is the local address to connect from
    (one address has a limited number of ephemeral ports towards one CSMS address).
    `client_identity` (certificate chain PEM, key PEM) is the station's own TLS client
    certificate under security profile 3, presented instead of the scenario's files.

    The WebSocket is fleetsim's own lean client (`websocket.py`): the link's reader, which runs
    in the station's nursery, reads the socket itself, so a station has no transport task or
    nursery of its own.
    """
    url = station_url(settings.csms_url, station_id)
    protocol = subprotocol_for(settings.ocpp_version)
    headers = []
    if settings.basic_auth_password is not None and settings.tls.profile < 3:
        headers.append(_basic_auth_header(station_id, settings.basic_auth_password))
    parts = urllib.parse.urlsplit(url)
    secure = parts.scheme == "wss"
    context = None
    if secure:
        context = _context_for(station_id, settings, client_identity)
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
        explained = _explain_rejection(station_id, url, exc.status_code, settings)
        if exc.status_code == 401:
            raise CredentialsRefused(explained, "rejected") from exc
        raise ConnectError(explained, "rejected") from exc
    except (HandshakeFailed, OSError) as exc:
        tls_error = explain_tls_failure(station_id, url, exc, settings.tls) if secure else None
        if tls_error is not None:
            raise tls_error from None
        if isinstance(exc, OSError):
            local_error = _explain_local_failure(station_id, url, exc, source_address)
            if local_error is not None:
                raise local_error from exc
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


def _errnos(exc: BaseException) -> set[int]:
    """The errno values behind `exc`: trio's "all attempts to connect failed" carries each
    attempt's error in an exception group as its cause."""
    found: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending and len(found) < 16:
        error = pending.pop()
        if isinstance(error, OSError) and error.errno is not None:
            found.add(error.errno)
        if isinstance(error, BaseExceptionGroup):
            pending.extend(error.exceptions)
        if error.__cause__ is not None:
            pending.append(error.__cause__)
    return found


def _explain_local_failure(
    station_id: str, url: str, exc: OSError, source_address: str | None
) -> ConnectError | None:
    """The `ConnectError` for a connection this machine could not make, or None when the
    failure lies beyond it: no file descriptor left for the socket, a source address the
    machine does not have, or no local port left.  Runs only after a failure, so the probe
    bind costs nothing on the way in."""
    errnos = _errnos(exc)
    if errnos & {errno.EMFILE, errno.ENFILE}:
        # Before the source address's probe, whose own socket would fail the same way.
        if errno.EMFILE in errnos:
            soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
            limit = f"EMFILE: this process may open {soft:,} files, `ulimit -n`"
        else:
            limit = "ENFILE: the system's open files are at their limit, fs.file-max"
        return ConnectError(
            f"station {station_id}: cannot connect to {url}: no file descriptor is left for "
            f"the socket ({limit}); every station holds one socket, and the embedded CSMS "
            "in the same process one more: run the stations over more processes (--workers), "
            "or raise the limit",
            LOCAL_FILES_EXHAUSTED,
        )
    if source_address is not None:
        problem = source_address_problem(source_address)
        if problem is not None:
            return ConnectError(
                f"station {station_id}: cannot connect to {url} from {source_address}: {problem}",
                SOURCE_ADDRESS_UNUSABLE,
            )
    if errno.EADDRNOTAVAIL in errnos:
        source = source_address or "this machine's address"
        return ConnectError(
            f"station {station_id}: cannot connect to {url}: no local port is free on {source} "
            "towards the CSMS (connect failed: EADDRNOTAVAIL); one source address has as many "
            "ports as net.ipv4.ip_local_port_range holds: give more with --source-address, or "
            "run fewer stations on this machine (--shard I/N)",
            LOCAL_PORTS_EXHAUSTED,
        )
    return None


def _context_for(
    station_id: str, settings: ConnectionSettings, client_identity: tuple[bytes, bytes] | None
) -> ssl.SSLContext:
    """The SSL context of one station's wss:// connection (see `tls.py` for what is shared)."""
    if settings.ssl_context is not None:
        return settings.ssl_context
    tls = settings.tls
    if tls.profile < 3:
        return server_trust_context(tls.ca_file)
    if client_identity is not None:
        chain_pem, key_pem = client_identity
        return client_context_for_identity(tls.ca_file, chain_pem, key_pem, station_id)
    if tls.client_cert is None:
        raise ConnectError(
            f"station {station_id}: security profile 3 needs a client certificate; give "
            "--client-cert and --client-key (csms.security.client_cert, client_key)",
            "client_certificate_missing",
        )
    return client_context_for_files(tls, station_id)


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
