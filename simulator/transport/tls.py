"""TLS for the stations: the SSL contexts of security profiles 2 and 3, and what a TLS failure
means in words a user can act on.

Profile 2 (TLS with the server's certificate, HTTP Basic auth) needs nothing of the station but
trust: one context per CA file (or the system's store) serves the whole fleet, since an
`SSLContext` may be shared by any number of connections.  Profile 3 adds the station's client
certificate, and a context holds exactly one: a fleet with one certificate file shares one
context; per-station files (a `{station_id}` pattern) or a certificate the station got from
the CSMS (`ClientIdentity`, A02/A03) get a context made when the station connects, which lives
as long as that connection does (the TLS connection keeps it) and no longer.  The private key
of an identity held in memory never touches the disk: it is read through an anonymous
in-memory file (`memfd_create`) where the system has one.

Every TLS failure becomes a `ConnectError` whose outcome names its cause (the label counted in
`fleetsim_connection_attempts_total`) and whose message names the station and what to try.
"""

from __future__ import annotations

import contextlib
import functools
import os
import ssl
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from ..link import ConnectError

__all__ = [
    "CLIENT_CERTIFICATE_MISSING",
    "CLIENT_CERTIFICATE_REFUSED",
    "CLIENT_KEY_MISMATCH",
    "CERTIFICATE_EXPIRED",
    "HOSTNAME_MISMATCH",
    "TLS_VERSION",
    "UNTRUSTED_CERTIFICATE",
    "TlsSettings",
    "client_context_for_files",
    "client_context_for_identity",
    "explain_tls_failure",
    "in_memory_file",
    "server_trust_context",
    "station_files",
]

#: Outcome labels of TLS failures (`ConnectError.outcome`, among `link.CONNECT_OUTCOMES`).
UNTRUSTED_CERTIFICATE: Final = "untrusted_certificate"
HOSTNAME_MISMATCH: Final = "hostname_mismatch"
CERTIFICATE_EXPIRED: Final = "certificate_expired"
CLIENT_CERTIFICATE_REFUSED: Final = "client_certificate_refused"
TLS_VERSION: Final = "tls_version"
CLIENT_CERTIFICATE_MISSING: Final = "client_certificate_missing"
CLIENT_KEY_MISMATCH: Final = "client_key_mismatch"

# OpenSSL's X509_V_ERR_* codes that `SSLCertVerificationError.verify_code` carries.
_EXPIRED_CODES = frozenset({10})  # CERT_HAS_EXPIRED
_NOT_YET_VALID_CODES = frozenset({9})  # CERT_NOT_YET_VALID
_HOSTNAME_CODES = frozenset({62, 63, 64})  # HOSTNAME_, EMAIL_, IP_ADDRESS_MISMATCH
#: Reasons of the server's alert when it did not accept the station's certificate.
_CLIENT_CERTIFICATE_ALERTS = (
    "CERTIFICATE_REQUIRED",
    "BAD_CERTIFICATE",
    "UNKNOWN_CA",
    "CERTIFICATE_UNKNOWN",
    "CERTIFICATE_EXPIRED",
    "CERTIFICATE_REVOKED",
    "UNSUPPORTED_CERTIFICATE",
    "ACCESS_DENIED",
    "PEER_DID_NOT_RETURN_A_CERTIFICATE",
)
_VERSION_REASONS = (
    "PROTOCOL_VERSION",
    "UNSUPPORTED_PROTOCOL",
    "NO_PROTOCOLS_AVAILABLE",
    "WRONG_SSL_VERSION",
    "VERSION_TOO_LOW",
    "VERSION_TOO_HIGH",
)


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """How the stations do TLS; the files may hold `{station_id}` (one file per station)."""

    #: OCPP security profile: 1 (Basic auth), 2 (TLS + Basic auth), 3 (TLS + client cert).
    profile: int = 1
    #: CA certificates (PEM) to trust instead of the system's store.
    ca_file: str | None = None
    client_cert: str | None = None
    client_key: str | None = None

    @property
    def per_station_files(self) -> bool:
        return "{station_id}" in (self.client_cert or "") + (self.client_key or "")


def station_files(settings: TlsSettings, station_id: str) -> tuple[str, str | None]:
    """The certificate and key files of `station_id` (the patterns filled in)."""
    assert settings.client_cert is not None
    cert = settings.client_cert.replace("{station_id}", station_id)
    key = settings.client_key.replace("{station_id}", station_id) if settings.client_key else None
    return cert, key


def _base_context(ca_file: str | None) -> ssl.SSLContext:
    """A client context for TLS 1.2 and later that checks the server's certificate and name
    against `ca_file` (or the system's store)."""
    context = ssl.create_default_context(cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


@functools.cache
def server_trust_context(ca_file: str | None) -> ssl.SSLContext:
    """The profile 1/2 context of the fleet: one per CA file, shared by every station."""
    return _base_context(ca_file)


@functools.lru_cache(maxsize=8)
def _shared_client_context(ca_file: str | None, cert: str, key: str | None) -> ssl.SSLContext:
    context = _base_context(ca_file)
    context.load_cert_chain(cert, key)
    return context


def client_context_for_files(settings: TlsSettings, station_id: str) -> ssl.SSLContext:
    """The profile 3 context of one station from the scenario's files: shared by the fleet
    when every station presents the same file, else made now for this connection.

    Raises `ConnectError` (client_certificate_missing, client_key_mismatch) naming the file.
    """
    cert, key = station_files(settings, station_id)
    with _explained_load(station_id, cert, key):
        if not settings.per_station_files:
            return _shared_client_context(settings.ca_file, cert, key)
        context = _base_context(settings.ca_file)
        context.load_cert_chain(cert, key)
        return context


def client_context_for_identity(
    ca_file: str | None, chain_pem: bytes, key_pem: bytes, station_id: str
) -> ssl.SSLContext:
    """A profile 3 context presenting a certificate held in memory (one the CSMS signed for
    the station, or the embedded CSMS issued it), for one connection."""
    context = _base_context(ca_file)
    with (
        in_memory_file(chain_pem) as cert,
        in_memory_file(key_pem) as key,
        _explained_load(station_id, "its certificate", "its key"),
    ):
        context.load_cert_chain(cert, key)
    return context


@contextlib.contextmanager
def in_memory_file(data: bytes) -> Iterator[str]:
    """A path that reads `data`: an anonymous memory file on Linux, else a private temporary
    file removed at once after use."""
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is not None:
        fd = memfd_create("fleetsim-tls", 0)
        try:
            os.write(fd, data)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    with tempfile.NamedTemporaryFile(prefix="fleetsim-tls-") as file:
        file.write(data)
        file.flush()
        yield file.name


@contextlib.contextmanager
def _explained_load(station_id: str, cert: str, key: str | None) -> Iterator[None]:
    try:
        yield
    except FileNotFoundError as exc:
        raise ConnectError(
            f"station {station_id}: the client certificate file {exc.filename or cert} does "
            "not exist; check csms.security.client_cert / client_key (or --client-cert / "
            "--client-key), whose {station_id} stands for the station id",
            CLIENT_CERTIFICATE_MISSING,
        ) from None
    except (ssl.SSLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or ""
        if "KEY_VALUES_MISMATCH" in reason or "mismatch" in str(exc).lower():
            raise ConnectError(
                f"station {station_id}: the private key {key or cert} does not belong to the "
                f"client certificate {cert}; give the key that was made with the certificate",
                CLIENT_KEY_MISMATCH,
            ) from None
        raise ConnectError(
            f"station {station_id}: cannot use the client certificate {cert} with key "
            f"{key or cert} ({reason or type(exc).__name__}); both must be PEM, the key "
            "unencrypted",
            CLIENT_CERTIFICATE_MISSING,
        ) from None


def _ssl_error_in(exc: BaseException | None) -> ssl.SSLError | None:
    """The `ssl.SSLError` that `exc` is or was caused by, if any."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, ssl.SSLError):
            return exc
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def explain_tls_failure(
    station_id: str, url: str, exc: BaseException, settings: TlsSettings
) -> ConnectError | None:
    """The `ConnectError` for a TLS failure behind `exc`, or None when TLS is not to blame."""
    error = _ssl_error_in(exc)
    if error is None:
        return None
    trust = f"the CA file {settings.ca_file}" if settings.ca_file else "the system's CA store"
    if isinstance(error, ssl.SSLCertVerificationError):
        code = error.verify_code
        detail = error.verify_message
        if code in _EXPIRED_CODES or code in _NOT_YET_VALID_CODES:
            when = "has expired" if code in _EXPIRED_CODES else "is not valid yet"
            return ConnectError(
                f"station {station_id}: the server certificate of {url} {when} ({detail}); "
                "renew the CSMS's certificate, or check this machine's clock",
                CERTIFICATE_EXPIRED,
            )
        if code in _HOSTNAME_CODES:
            return ConnectError(
                f"station {station_id}: the server certificate of {url} is not for that host "
                f"({detail}); connect with the name the certificate is issued for, or give "
                "the CSMS a certificate that names this host",
                HOSTNAME_MISMATCH,
            )
        return ConnectError(
            f"station {station_id}: {url} presented a certificate that {trust} does not "
            f"trust ({detail}); give the CA that issued it with --ca-file "
            "(csms.security.ca_file)",
            UNTRUSTED_CERTIFICATE,
        )
    reason = (error.reason or "").upper()
    if any(alert in reason for alert in _CLIENT_CERTIFICATE_ALERTS):
        what = (
            "did not get a client certificate it requires"
            if settings.profile < 3 or "REQUIRED" in reason
            else "refused the station's client certificate"
        )
        return ConnectError(
            f"station {station_id}: {url} {what} (TLS alert {error.reason}); under security "
            "profile 3 give a certificate issued by the CA the CSMS trusts, with the station "
            "id as its common name (--client-cert, --client-key)",
            CLIENT_CERTIFICATE_REFUSED,
        )
    if any(marker in reason for marker in _VERSION_REASONS):
        return ConnectError(
            f"station {station_id}: {url} and the station agree on no TLS version "
            f"({error.reason}); stations speak TLS 1.2 and 1.3 (OCPP requires 1.2 or later): "
            "enable one of them on the CSMS",
            TLS_VERSION,
        )
    return ConnectError(
        f"station {station_id}: the TLS handshake with {url} failed ({error.reason or error}); "
        "is it a wss:// endpoint, and does it speak TLS 1.2 or later?",
        "tls_failed",
    )
