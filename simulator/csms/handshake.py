"""The CSMS side of the WebSocket handshake as plain functions: station id, subprotocol, auth.

OCPP-J connects a station to `{csms_url}/{station_id}`: the station id is the last path
segment, percent-encoded when it has characters a URL cannot carry.  CSMSs in the field also
route `.../{station_id}/` (a trailing slash) and `...?id={station_id}`; the embedded CSMS
accepts both.  The subprotocol names the OCPP version; HTTP Basic auth (security profiles 1
and 2) sends the station id as user name, and under profile 3 the common name of the client
certificate must be the station id.  Keeping these decisions out of the server lets them be
tested without a socket.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs, unquote

from ..ocpp import OCPP_VERSIONS, OcppVersion, subprotocol_for

__all__ = [
    "SUBPROTOCOLS",
    "basic_auth_credentials",
    "certificate_common_name",
    "choose_version",
    "is_authorized",
    "station_id_from_path",
]

#: The subprotocols the CSMS speaks, most preferred first: `ocpp2.1`, then `ocpp2.0.1`.
SUBPROTOCOLS: dict[str, OcppVersion] = {subprotocol_for(v): v for v in OCPP_VERSIONS}


def station_id_from_path(path: str) -> str | None:
    """The station id of a request target such as `/ocpp/CP%2F01` (here `CP/01`).

    Any prefix is accepted, as the fleet's `--csms` URL may carry one.  The id is, first, the
    `id` (or `stationId`) query parameter when there is one (`/ocpp?id=CP01`), else the last
    path segment, which may be followed by one slash after a prefix (`/ocpp/CP01/`).  None
    when that names nothing (`/ocpp/`, `/ocpp//`) or is not UTF-8 once decoded.
    """
    target, _, query = path.partition("?")
    if query:
        try:
            parameters = parse_qs(query, keep_blank_values=True, errors="strict")
        except UnicodeDecodeError:
            return None
        for name in ("id", "stationId"):
            values = parameters.get(name)
            if values:
                return values[0] or None
    if target.endswith("/") and target.count("/") > 2:
        # `/ocpp/CP01/`: the id, then a slash.  (`/ocpp/` alone names no station.)
        target = target[:-1]
    last = target.rsplit("/", 1)[-1]
    try:
        station_id = unquote(last, errors="strict")
    except UnicodeDecodeError:
        return None
    return station_id or None


def certificate_common_name(peer_certificate: dict[str, Any] | None) -> str | None:
    """The subject's common name of a certificate as `SSLObject.getpeercert()` gives it."""
    if not peer_certificate:
        return None
    for relative_name in peer_certificate.get("subject", ()):
        for key, value in relative_name:
            if key == "commonName":
                return str(value)
    return None


def choose_version(offered: Iterable[str]) -> OcppVersion | None:
    """The OCPP version to speak, given the subprotocols a station offers.

    The CSMS's preference decides, not the order of the offer: a station that offers both gets
    `ocpp2.1`.  None when it offers neither.
    """
    offered_set = set(offered)
    for subprotocol, version in SUBPROTOCOLS.items():
        if subprotocol in offered_set:
            return version
    return None


def basic_auth_credentials(headers: Sequence[tuple[bytes, bytes]]) -> tuple[str, str] | None:
    """The (user, password) of an `Authorization: Basic ...` header, or None when there is none
    or it cannot be read."""
    for name, value in headers:
        if name.lower() != b"authorization":
            continue
        scheme, _, token = value.strip().partition(b" ")
        if scheme.lower() != b"basic":
            return None
        try:
            decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, colon, password = decoded.partition(":")
        return (user, password) if colon else None
    return None


def is_authorized(
    station_id: str,
    headers: Sequence[tuple[bytes, bytes]],
    passwords: str | Mapping[str, str] | None,
) -> bool:
    """Whether the handshake's Basic auth matches the configured password(s).

    With `passwords` None no credentials are needed (security profile 0 or 3).  Otherwise the
    user name must be the station id from the URL, as OCPP requires, and the password must
    match: the one shared password, or this station's entry in the mapping.
    """
    if passwords is None:
        return True
    expected = passwords if isinstance(passwords, str) else passwords.get(station_id)
    credentials = basic_auth_credentials(headers)
    if expected is None or credentials is None:
        return False
    user, password = credentials
    # compare_digest so the time taken does not reveal how much of the password was right.
    return user == station_id and hmac.compare_digest(password.encode(), expected.encode())
