"""Security profiles 1-3 over real TLS on loopback, and one clear error per way TLS fails.

The certificates are made at test time (`simulator.pki`); the server is the embedded CSMS on
a `wss://` listener, or, for a TLS version no station speaks, a bare TCP server that answers
the ClientHello with the alert such a server sends.  Real sockets run on the real clock, so
every wait is bounded.
"""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio

from fleetsim.simulator.csms import Csms, CsmsConfig
from fleetsim.simulator.csms.server import CsmsTls
from fleetsim.simulator.link import Answer, ConnectError
from fleetsim.simulator.pki import CertificateAuthority, IssuedCertificate
from fleetsim.simulator.stats import RunStats
from fleetsim.simulator.transport import ConnectionSettings, TlsSettings, open_station_link
from fleetsim.simulator.transport.tls import in_memory_file

WAIT_S = 10
BOOT = {"reason": "PowerUp", "chargingStation": {"model": "FS-22", "vendorName": "fleetsim"}}


def _no_calls(action: str, payload: Mapping[str, Any]) -> Answer:
    raise AssertionError("no CALL expected")


@pytest.fixture(scope="module")
def authority() -> CertificateAuthority:
    return CertificateAuthority.create("test CA")


@pytest.fixture(scope="module")
def stranger() -> CertificateAuthority:
    """A CA nobody in the test trusts."""
    return CertificateAuthority.create("stranger CA")


def _server_context(
    issued: IssuedCertificate, client_ca: CertificateAuthority | None = None
) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with in_memory_file(issued.chain_pem) as chain, in_memory_file(issued.key_pem) as key:
        context.load_cert_chain(chain, key)
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cadata=client_ca.certificate_pem.decode())
    return context


async def _start(
    nursery: trio.Nursery, context: ssl.SSLContext, password: str | None = None
) -> tuple[Csms, str]:
    csms = Csms(CsmsConfig(basic_auth_passwords=password, record_messages=True))
    port = await nursery.start(partial(csms.serve, ssl_context=context), "127.0.0.1", 0)
    return csms, f"wss://127.0.0.1:{port}/ocpp"


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


async def _connect_and_boot(
    nursery: trio.Nursery,
    station_id: str,
    settings: ConnectionSettings,
    identity: tuple[bytes, bytes] | None = None,
) -> Mapping[str, Any]:
    with trio.fail_after(WAIT_S):
        async with open_station_link(
            station_id,
            settings,
            _no_calls,
            spawn=nursery.start_soon,
            observer=RunStats(),
            client_identity=identity,
        ) as link:
            answer = await link.call("BootNotification", BOOT)
    assert answer is not None
    return answer


async def _refusal(
    nursery: trio.Nursery, station_id: str, settings: ConnectionSettings
) -> ConnectError:
    with pytest.raises(ConnectError) as refused:
        await _connect_and_boot(nursery, station_id, settings)
    return refused.value


def _settings(url: str, tls: TlsSettings, password: str | None = None) -> ConnectionSettings:
    return ConnectionSettings(
        csms_url=url, tls=tls, basic_auth_password=password, connect_timeout_s=5
    )


# -- the three profiles ---------------------------------------------------------------------


async def test_profile_1_sends_basic_auth_over_ws(nursery: trio.Nursery) -> None:
    csms = Csms(CsmsConfig(basic_auth_passwords="s3cret-pass-0001"))
    port = await nursery.start(csms.serve, "127.0.0.1", 0)
    url = f"ws://127.0.0.1:{port}/ocpp"
    settings = _settings(url, TlsSettings(profile=1), "s3cret-pass-0001")
    answer = await _connect_and_boot(nursery, "CP1", settings)
    assert answer["status"] == "Accepted"
    wrong = await _refusal(nursery, "CP1", _settings(url, TlsSettings(profile=1), "wrong"))
    assert (wrong.outcome, "HTTP 401" in str(wrong)) == ("rejected", True)
    assert "wrong" not in str(wrong)


async def test_profile_1_sends_basic_auth_over_wss_too(
    nursery: trio.Nursery, authority: CertificateAuthority, tmp_path: Path
) -> None:
    context = _server_context(authority.issue_server_certificate(("127.0.0.1",)))
    _, url = await _start(nursery, context, password="s3cret-pass-0001")
    ca_file = _write(tmp_path / "ca.pem", authority.certificate_pem)
    settings = _settings(url, TlsSettings(profile=1, ca_file=ca_file), "s3cret-pass-0001")
    assert (await _connect_and_boot(nursery, "CP1", settings))["status"] == "Accepted"


async def test_profile_2_checks_the_server_and_sends_basic_auth(
    nursery: trio.Nursery, authority: CertificateAuthority, tmp_path: Path
) -> None:
    context = _server_context(authority.issue_server_certificate(("127.0.0.1",)))
    csms, url = await _start(nursery, context, password="s3cret-pass-0002")
    ca_file = _write(tmp_path / "ca.pem", authority.certificate_pem)
    settings = _settings(url, TlsSettings(profile=2, ca_file=ca_file), "s3cret-pass-0002")
    answer = await _connect_and_boot(nursery, "CP2", settings)
    assert answer["status"] == "Accepted"
    assert csms.station("CP2").boots == 1
    # Without the password the same CSMS refuses: the header was what let it in.
    refused = await _refusal(nursery, "CP2", _settings(url, TlsSettings(2, ca_file)))
    assert "HTTP 401" in str(refused)


async def test_profile_2_contexts_are_shared_per_ca_file(
    authority: CertificateAuthority, tmp_path: Path
) -> None:
    from fleetsim.simulator.transport.tls import server_trust_context

    ca_file = _write(tmp_path / "ca.pem", authority.certificate_pem)
    first = server_trust_context(ca_file)
    assert server_trust_context(ca_file) is first
    assert first.minimum_version == ssl.TLSVersion.TLSv1_2
    assert first.check_hostname and first.verify_mode == ssl.CERT_REQUIRED


async def test_profile_3_presents_each_station_its_own_certificate_file(
    nursery: trio.Nursery, authority: CertificateAuthority, tmp_path: Path
) -> None:
    tls = CsmsTls.create(3, tmp_path / "csms")
    csms = Csms(CsmsConfig(record_messages=True))
    port = await nursery.start(partial(csms.serve, ssl_context=tls.server_context), "127.0.0.1", 0)
    url = f"wss://127.0.0.1:{port}/ocpp"
    for station_id in ("CP31", "CP32"):
        chain_pem, key_pem = tls.station_identity(station_id)
        _write(tmp_path / f"{station_id}.crt", chain_pem)
        _write(tmp_path / f"{station_id}.key", key_pem)
    settings = _settings(
        url,
        TlsSettings(
            profile=3,
            ca_file=str(tls.ca_file),
            client_cert=str(tmp_path / "{station_id}.crt"),
            client_key=str(tmp_path / "{station_id}.key"),
        ),
        # Profile 3 sends no password, whatever the settings hold.
        password="never-sent-password",
    )
    for station_id in ("CP31", "CP32"):
        assert (await _connect_and_boot(nursery, station_id, settings))["status"] == "Accepted"
    assert {"CP31", "CP32"} <= set(csms.stations)


async def test_profile_3_presents_a_certificate_held_in_memory(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    tls = CsmsTls.create(3, tmp_path)
    csms = Csms(CsmsConfig(record_messages=True))
    port = await nursery.start(partial(csms.serve, ssl_context=tls.server_context), "127.0.0.1", 0)
    settings = _settings(
        f"wss://127.0.0.1:{port}/ocpp", TlsSettings(profile=3, ca_file=str(tls.ca_file))
    )
    answer = await _connect_and_boot(nursery, "CP33", settings, tls.station_identity("CP33"))
    assert answer["status"] == "Accepted"


async def test_profile_3_refuses_a_certificate_of_another_station(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    tls = CsmsTls.create(3, tmp_path)
    csms = Csms(CsmsConfig(record_messages=True))
    port = await nursery.start(partial(csms.serve, ssl_context=tls.server_context), "127.0.0.1", 0)
    settings = _settings(
        f"wss://127.0.0.1:{port}/ocpp", TlsSettings(profile=3, ca_file=str(tls.ca_file))
    )
    with pytest.raises(ConnectError) as refused:
        await _connect_and_boot(nursery, "CP34", settings, tls.station_identity("CP99"))
    assert refused.value.outcome == "rejected"
    assert "station CP34" in str(refused.value)
    assert "common name must be the station id" in str(refused.value)
    assert csms.statistics().handshakes_rejected == {"wrong_certificate": 1}


# -- one error per cause --------------------------------------------------------------------


async def test_an_untrusted_server_certificate_is_explained(
    nursery: trio.Nursery,
    authority: CertificateAuthority,
    stranger: CertificateAuthority,
    tmp_path: Path,
) -> None:
    context = _server_context(stranger.issue_server_certificate(("127.0.0.1",)))
    _, url = await _start(nursery, context)
    ca_file = _write(tmp_path / "ca.pem", authority.certificate_pem)
    error = await _refusal(nursery, "CP1", _settings(url, TlsSettings(2, ca_file)))
    assert error.outcome == "untrusted_certificate"
    assert str(error).startswith(f"station CP1: {url}/CP1 presented a certificate that the CA")
    assert "--ca-file" in str(error)


async def test_a_hostname_mismatch_is_explained(
    nursery: trio.Nursery, authority: CertificateAuthority, tmp_path: Path
) -> None:
    context = _server_context(authority.issue_server_certificate(("csms.example",)))
    _, url = await _start(nursery, context)
    ca_file = _write(tmp_path / "ca.pem", authority.certificate_pem)
    error = await _refusal(nursery, "CP1", _settings(url, TlsSettings(2, ca_file)))
    assert error.outcome == "hostname_mismatch"
    assert "station CP1" in str(error) and "is not for that host" in str(error)


async def test_an_expired_server_certificate_is_explained(
    nursery: trio.Nursery, authority: CertificateAuthority, tmp_path: Path
) -> None:
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    expired = authority.issue_server_certificate(("127.0.0.1",), valid_days=1, now=long_ago)
    _, url = await _start(nursery, _server_context(expired))
    ca_file = _write(tmp_path / "ca.pem", authority.certificate_pem)
    error = await _refusal(nursery, "CP1", _settings(url, TlsSettings(2, ca_file)))
    assert error.outcome == "certificate_expired"
    assert "station CP1" in str(error) and "has expired" in str(error)


async def test_a_client_certificate_the_server_refuses_is_explained(
    nursery: trio.Nursery,
    authority: CertificateAuthority,
    stranger: CertificateAuthority,
    tmp_path: Path,
) -> None:
    context = _server_context(authority.issue_server_certificate(("127.0.0.1",)), authority)
    _, url = await _start(nursery, context)
    ca_file = _write(tmp_path / "ca.pem", authority.certificate_pem)
    # Issued by a CA the CSMS does not trust.
    theirs = stranger.issue_client_certificate("CP1")
    settings = _settings(url, TlsSettings(3, ca_file))
    with pytest.raises(ConnectError) as refused:
        await _connect_and_boot(nursery, "CP1", settings, (theirs.chain_pem, theirs.key_pem))
    assert refused.value.outcome == "client_certificate_refused"
    assert "station CP1" in str(refused.value) and "TLS alert" in str(refused.value)
    # None at all (profile 2 towards a CSMS that requires one): the same cause.
    none_given = await _refusal(nursery, "CP1", _settings(url, TlsSettings(2, ca_file)))
    assert none_given.outcome == "client_certificate_refused"


async def test_a_tls_version_the_server_refuses_is_explained(
    nursery: trio.Nursery, authority: CertificateAuthority, tmp_path: Path
) -> None:
    """A server that speaks only TLS 1.0 answers a TLS 1.2+ ClientHello with a fatal
    protocol_version alert (RFC 8446 6.2); this one sends just that."""

    async def old_server(stream: trio.SocketStream) -> None:
        await stream.receive_some(4096)
        await stream.send_all(bytes([0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 70]))
        await stream.aclose()

    listeners = await nursery.start(partial(trio.serve_tcp, host="127.0.0.1"), old_server, 0)
    port = listeners[0].socket.getsockname()[1]
    url = f"wss://127.0.0.1:{port}/ocpp"
    ca_file = _write(tmp_path / "ca.pem", authority.certificate_pem)
    error = await _refusal(nursery, "CP1", _settings(url, TlsSettings(2, ca_file)))
    assert error.outcome == "tls_version"
    assert "station CP1" in str(error) and "TLS 1.2" in str(error)


async def test_a_missing_client_certificate_file_is_explained(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    tls = TlsSettings(3, client_cert=str(tmp_path / "{station_id}.pem"))
    error = await _refusal(nursery, "CP7", _settings("wss://127.0.0.1:1/ocpp", tls))
    assert error.outcome == "client_certificate_missing"
    assert str(tmp_path / "CP7.pem") in str(error) and "station CP7" in str(error)


async def test_a_key_that_does_not_match_the_certificate_is_explained(
    nursery: trio.Nursery, authority: CertificateAuthority, tmp_path: Path
) -> None:
    one = authority.issue_client_certificate("CP8")
    other = authority.issue_client_certificate("CP8")
    tls = TlsSettings(
        3,
        client_cert=_write(tmp_path / "cp8.crt", one.chain_pem),
        client_key=_write(tmp_path / "cp8.key", other.key_pem),
    )
    error = await _refusal(nursery, "CP8", _settings("wss://127.0.0.1:1/ocpp", tls))
    assert error.outcome == "client_key_mismatch"
    assert "does not belong to the client certificate" in str(error)
    assert "PRIVATE KEY" not in str(error)


async def test_a_station_presents_the_certificate_it_was_given_before_the_fleets(
    nursery: trio.Nursery, stranger: CertificateAuthority, tmp_path: Path
) -> None:
    """`station.client_identity` (a renewal's, A02/A03) wins over what the fleet presents:
    here the embedded CSMS's certificate for the station connects, and a given one issued by
    a CA the CSMS does not trust is what the CSMS then refuses."""
    from fleetsim.simulator.clock import SimClock
    from fleetsim.simulator.run import RunOptions, _connector, station_config
    from fleetsim.simulator.station import Station
    from fleetsim.simulator.station.core import ClientIdentity
    from fleetsim.simulator.transport import CallDeadlines
    from tests.helpers import T0, one_station_scenario

    tls = CsmsTls.create(3, tmp_path)
    csms = Csms(CsmsConfig(record_messages=True))
    port = await nursery.start(partial(csms.serve, ssl_context=tls.server_context), "127.0.0.1", 0)
    scenario = one_station_scenario({"csms": {"security": {"profile": 3}}})
    stats = RunStats()
    deadlines = CallDeadlines()
    nursery.start_soon(deadlines.run)
    connect = _connector(
        scenario,
        RunOptions(),
        None,
        f"wss://127.0.0.1:{port}/ocpp",
        None,
        stats,
        deadlines,
        csms_tls=tls,
    )
    station = Station("CP41", 1, station_config(scenario), SimClock(T0, 1.0), stats)
    with trio.fail_after(WAIT_S):
        async with connect(station) as link:
            assert not link.closed
    theirs = stranger.issue_client_certificate("CP41")
    station.client_identity = ClientIdentity(theirs.chain_pem, theirs.key_pem)
    with trio.fail_after(WAIT_S), pytest.raises(ConnectError) as refused:
        async with connect(station):
            pass
    assert refused.value.outcome == "client_certificate_refused"
