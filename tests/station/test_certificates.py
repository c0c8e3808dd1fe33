"""Block M and A02/A03 through the OCPP surface: a real certificate store, hash data as the
specification defines it, and certificate renewal with real keys against the embedded CSMS's
CA."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import itertools
import json
import tracemalloc
from collections.abc import Mapping
from typing import Any

import pytest
import trio
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from trio.testing import MockClock

from fleetsim.simulator.csms import Csms, CsmsConfig
from fleetsim.simulator.ocpp import OcppVersion
from fleetsim.simulator.pki import CertificateAuthority, intermediate_authority
from fleetsim.simulator.run import station_config
from fleetsim.simulator.station import Station
from fleetsim.simulator.station.blocks.certificates import BLOCK
from fleetsim.simulator.station.blocks.certificates.handlers import install_certificate
from fleetsim.simulator.station.blocks.certificates.state import CertificateState
from tests.helpers import STATION_ID, T0, one_station_scenario, station_on_memory_link
from tests.station.certificate_steps import SILENT_CA
from tests.station.steps import REMOTE_DRIVERS

VERSIONS: tuple[OcppVersion, ...] = ("2.1", "2.0.1")
#: A root valid over the whole simulated test day (simulated time starts at T0).
ROOT = CertificateAuthority.create("Test CSMS root", "Test", now=T0 - dt.timedelta(days=30))
OTHER_ROOT = CertificateAuthority.create("Test MO root", "Test", now=T0 - dt.timedelta(days=30))
WITHIN_S = 600


def _der_issuer_and_key(certificate: x509.Certificate) -> tuple[bytes, bytes]:
    """The DER issuer name and subjectPublicKey bits of a certificate, by cryptography's own
    encoders (the station reads them from the DER with its own walker)."""
    issuer_der = certificate.issuer.public_bytes()
    key_bits = certificate.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return issuer_der, key_bits


def hand_hash_data(certificate: x509.Certificate, issuer: x509.Certificate) -> dict[str, str]:
    issuer_der, _ = _der_issuer_and_key(certificate)
    _, issuer_key = _der_issuer_and_key(issuer)
    return {
        "hashAlgorithm": "SHA256",
        "issuerNameHash": hashlib.sha256(issuer_der).hexdigest(),
        "issuerKeyHash": hashlib.sha256(issuer_key).hexdigest(),
        "serialNumber": format(certificate.serial_number, "x"),
    }


async def _install(csms: Csms, use: str, pem: bytes) -> Mapping[str, Any]:
    return await csms.call(
        STATION_ID, "InstallCertificate", {"certificateType": use, "certificate": pem.decode()}
    )


async def _listed(csms: Csms, *uses: str) -> Mapping[str, Any]:
    request: dict[str, Any] = {"certificateType": list(uses)} if uses else {}
    return await csms.call(STATION_ID, "GetInstalledCertificateIds", request)


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_certificate_is_installed_listed_by_its_real_hash_deleted_and_gone(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(scenario=REMOTE_DRIVERS, ocpp_version=version) as (
        station,
        csms,
    ):
        with trio.fail_after(WITHIN_S):
            assert (await _listed(csms))["status"] == "NotFound"
            assert (await _install(csms, "CSMSRootCertificate", ROOT.certificate_pem)) == {
                "status": "Accepted"
            }
            assert (await _install(csms, "MORootCertificate", OTHER_ROOT.certificate_pem))[
                "status"
            ] == "Accepted"
            expected = hand_hash_data(ROOT.certificate, ROOT.certificate)
            listed = await _listed(csms, "CSMSRootCertificate")
            assert listed["status"] == "Accepted"
            assert listed["certificateHashDataChain"] == [
                {"certificateType": "CSMSRootCertificate", "certificateHashData": expected}
            ]
            assert len((await _listed(csms))["certificateHashDataChain"]) == 2
            entries = station.device_model.get("SecurityCtrlr", "CertificateEntries")
            assert entries == "2"

            # Hash data written in upper case, with a leading zero, names the same certificate.
            serial = expected["serialNumber"].upper()
            shouted = {
                **expected,
                "issuerNameHash": expected["issuerNameHash"].upper(),
                "serialNumber": serial if len(serial) == 40 else "0" + serial,
            }
            answer = await csms.call(
                STATION_ID, "DeleteCertificate", {"certificateHashData": shouted}
            )
            assert answer == {"status": "Accepted"}
            assert (await _listed(csms, "CSMSRootCertificate"))["status"] == "NotFound"
            answer = await csms.call(
                STATION_ID, "DeleteCertificate", {"certificateHashData": expected}
            )
            assert answer == {"status": "NotFound"}
            assert station.device_model.get("SecurityCtrlr", "CertificateEntries") == "1"


async def test_an_expired_or_broken_certificate_is_rejected_saying_why(
    autojump_clock: MockClock,
) -> None:
    expired = CertificateAuthority.create("Old root", now=T0 - dt.timedelta(days=400))
    async with station_on_memory_link(scenario=REMOTE_DRIVERS) as (_, csms):
        with trio.fail_after(WITHIN_S):
            answer = await _install(csms, "V2GRootCertificate", expired.certificate_pem)
            assert answer["status"] == "Rejected"
            assert "not valid now" in answer["statusInfo"]["additionalInfo"]
            garbled = ROOT.certificate_pem.replace(b"MII", b"MIJ", 1)
            answer = await _install(csms, "V2GRootCertificate", garbled)
            assert answer["status"] == "Rejected", answer
            leaf = ROOT.issue_client_certificate("someone", now=T0)
            answer = await _install(csms, "V2GRootCertificate", leaf.chain_pem)
            assert answer["status"] == "Rejected"
            assert "no CA certificate" in answer["statusInfo"]["additionalInfo"]
            assert (await _listed(csms))["status"] == "NotFound"


async def test_the_last_csms_root_of_a_tls_connection_is_not_deleted(
    autojump_clock: MockClock,
) -> None:
    config = dataclasses.replace(
        station_config(one_station_scenario(REMOTE_DRIVERS)), security_profile=2
    )
    async with station_on_memory_link(config=config, scenario=REMOTE_DRIVERS) as (_, csms):
        with trio.fail_after(WITHIN_S):
            await _install(csms, "CSMSRootCertificate", ROOT.certificate_pem)
            hash_data = hand_hash_data(ROOT.certificate, ROOT.certificate)
            answer = await csms.call(
                STATION_ID, "DeleteCertificate", {"certificateHashData": hash_data}
            )
            assert answer["status"] == "Failed"
            assert "last CSMSRootCertificate" in answer["statusInfo"]["additionalInfo"]
            # With its successor installed, the old root may go.
            await _install(csms, "CSMSRootCertificate", OTHER_ROOT.certificate_pem)
            answer = await csms.call(
                STATION_ID, "DeleteCertificate", {"certificateHashData": hash_data}
            )
            assert answer == {"status": "Accepted"}


async def _trigger(csms: Csms, requested: str) -> int:
    since = csms.station(STATION_ID).messages_received
    answer = await csms.call(STATION_ID, "TriggerMessage", {"requestedMessage": requested})
    assert answer["status"] == "Accepted", answer
    return since


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_signing_request_is_a_pkcs10_request_with_the_station_id_and_organization(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(
        csms_config=SILENT_CA, scenario=REMOTE_DRIVERS, ocpp_version=version
    ) as (station, csms):
        with trio.fail_after(WITHIN_S):
            since = await _trigger(csms, "SignChargingStationCertificate")
            request = await csms.wait_for_message(STATION_ID, "SignCertificate", since=since)
    csr = x509.load_pem_x509_csr(request["csr"].encode())
    assert csr.is_signature_valid
    subject = csr.subject
    assert [a.value for a in subject.get_attributes_for_oid(NameOID.COMMON_NAME)] == [STATION_ID]
    organization = station.device_model.get("SecurityCtrlr", "OrganizationName")
    assert [a.value for a in subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == [
        organization
    ]
    assert request["certificateType"] == "ChargingStationCertificate"
    assert ("requestId" in request) == (version == "2.1")


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_renewal_ends_with_the_signed_certificate_as_the_client_identity(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(scenario=REMOTE_DRIVERS, ocpp_version=version) as (
        station,
        csms,
    ):
        assert station.client_identity is None
        with trio.fail_after(WITHIN_S):
            since = await _trigger(csms, "SignChargingStationCertificate")
            signed = await csms.wait_for_message(STATION_ID, "SignCertificate", since=since)
            while station.client_identity is None:
                await trio.sleep(1)
        identity = station.client_identity
        authority = csms.certificates.authority
        chain = x509.load_pem_x509_certificates(identity.chain_pem)
        leaf = chain[0]
        leaf.verify_directly_issued_by(authority.certificate)
        assert chain[1] == authority.certificate
        key = serialization.load_pem_private_key(identity.key_pem, None)
        assert key.public_key() == leaf.public_key()
        csr = x509.load_pem_x509_csr(signed["csr"].encode())
        assert csr.public_key() == leaf.public_key()
        assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == STATION_ID
        assert "key_pem" not in repr(identity) and "PRIVATE" not in repr(identity)
        assert "PRIVATE" not in repr(station.peek_block_state(BLOCK))
        sent = csms.station(STATION_ID).messages_since(0)
        assert not [m.action for m in sent if "PRIVATE" in json.dumps(m.payload)]
        assert station.device_model.get("SecurityCtrlr", "CertificateEntries") == "1"
        # The station's own certificate is in use: it may not be deleted.
        hash_data = hand_hash_data(leaf, authority.certificate)
        with trio.fail_after(WITHIN_S):
            answer = await csms.call(
                STATION_ID, "DeleteCertificate", {"certificateHashData": hash_data}
            )
        assert answer["status"] == "Failed"
        assert station.client_identity is identity


async def test_the_station_renews_its_certificate_before_it_expires(
    autojump_clock: MockClock,
) -> None:
    """A03: a certificate valid for two days is renewed half way, by the station alone."""
    async with station_on_memory_link(
        csms_config=CsmsConfig(heartbeat_interval_s=6 * 3600), scenario=REMOTE_DRIVERS
    ) as (station, csms):
        csms.certificates.validity_days = 2
        with trio.fail_after(WITHIN_S):
            since = await _trigger(csms, "SignChargingStationCertificate")
            await csms.wait_for_message(STATION_ID, "SignCertificate", since=since)
            while station.client_identity is None:
                await trio.sleep(1)
        first = station.client_identity
        renewed_at = trio.current_time()
        since = csms.station(STATION_ID).messages_received
        with trio.fail_after(2 * 86_400):
            request = await csms.wait_for_message(STATION_ID, "SignCertificate", since=since)
            waited_s = trio.current_time() - renewed_at
            while station.client_identity is first:
                await trio.sleep(1)
        assert 86_000 < waited_s < 86_500, waited_s
        assert request["certificateType"] == "ChargingStationCertificate"
        new_leaf = x509.load_pem_x509_certificates(station.client_identity.chain_pem)[0]
        old_leaf = x509.load_pem_x509_certificates(first.chain_pem)[0]
        assert new_leaf.public_key() != old_leaf.public_key()
        assert station.device_model.get("SecurityCtrlr", "CertificateEntries") == "1"


async def test_without_an_answer_the_request_is_repeated_with_doubling_waits(
    autojump_clock: MockClock,
) -> None:
    async with station_on_memory_link(csms_config=SILENT_CA, scenario=REMOTE_DRIVERS) as (_, csms):
        await csms.call(
            STATION_ID,
            "SetVariables",
            {
                "setVariableData": [
                    {
                        "attributeValue": value,
                        "component": {"name": "SecurityCtrlr"},
                        "variable": {"name": name},
                    }
                    for name, value in (
                        ("CertSigningWaitMinimum", "100"),
                        ("CertSigningRepeatTimes", "2"),
                    )
                ]
            },
        )
        since = await _trigger(csms, "SignV2GCertificate")
        sent_at = []
        with trio.fail_after(2_000):
            for _ in range(3):
                await csms.wait_for_message(STATION_ID, "SignCertificate", since=since)
                sent_at.append(trio.current_time())
                since = csms.station(STATION_ID).messages_received
        with trio.move_on_after(5_000):
            await csms.wait_for_message(STATION_ID, "SignCertificate", since=since)
            pytest.fail("a fourth signing request went out after CertSigningRepeatTimes 2")
    gaps = [round(later - earlier) for earlier, later in itertools.pairwise(sent_at)]
    assert gaps == [100, 200]


async def test_a_certificate_for_another_key_is_rejected_and_reported(
    autojump_clock: MockClock,
) -> None:
    async with station_on_memory_link(csms_config=SILENT_CA, scenario=REMOTE_DRIVERS) as (
        station,
        csms,
    ):
        with trio.fail_after(WITHIN_S):
            since = await _trigger(csms, "SignChargingStationCertificate")
            await csms.wait_for_message(STATION_ID, "SignCertificate", since=since)
            foreign = csms.certificates.authority.issue_client_certificate(STATION_ID, now=T0)
            answer = await csms.call(
                STATION_ID,
                "CertificateSigned",
                {
                    "certificateChain": foreign.chain_pem.decode(),
                    "certificateType": "ChargingStationCertificate",
                },
            )
            assert answer["status"] == "Rejected"
            assert "not for the key" in answer["statusInfo"]["additionalInfo"]
            event = await csms.wait_for_message(
                STATION_ID, "SecurityEventNotification", since=since
            )
        assert event["type"] == "InvalidChargingStationCertificate"
        assert station.client_identity is None


async def test_a_v2g_chain_through_a_sub_ca_lists_its_child_hash_data(
    autojump_clock: MockClock,
) -> None:
    sub_ca = intermediate_authority(ROOT, "Test V2G sub-CA", now=T0 - dt.timedelta(days=1))
    async with station_on_memory_link(scenario=REMOTE_DRIVERS) as (station, csms):
        csms.certificates.authority = sub_ca
        with trio.fail_after(WITHIN_S):
            await _install(csms, "V2GRootCertificate", ROOT.certificate_pem)
            since = await _trigger(csms, "SignV2GCertificate")
            await csms.wait_for_message(STATION_ID, "SignCertificate", since=since)
            listed: Mapping[str, Any] = {"status": "NotFound"}
            while listed["status"] == "NotFound":
                await trio.sleep(1)
                listed = await _listed(csms, "V2GCertificateChain")
        [chain] = listed["certificateHashDataChain"]
        leaf = _own_v2g_leaf(station)
        assert chain["certificateHashData"] == hand_hash_data(leaf, sub_ca.certificate)
        assert chain["childCertificateHashData"] == [
            hand_hash_data(sub_ca.certificate, ROOT.certificate)
        ]
        # The V2G certificate is not the TLS identity.
        assert station.client_identity is None


def _own_v2g_leaf(station: Station) -> x509.Certificate:
    state = station.peek_block_state(BLOCK)
    assert state is not None
    own = state.own("V2GCertificateChain")
    assert own is not None
    return own.certificate.certificate


class _FakeClock:
    def epoch_s(self) -> float:
        return T0.timestamp()


class _FakeStation:
    """Just what InstallCertificate reads of a station."""

    def __init__(self) -> None:
        self.state: CertificateState | None = None
        self.clock = _FakeClock()
        self.security_profile = 1

    def peek_block_state(self, block: Any) -> CertificateState | None:
        return self.state

    def block_state(self, block: Any) -> CertificateState:
        if self.state is None:
            self.state = CertificateState()
        return self.state


def test_a_fleet_shares_its_certificates_and_a_station_holds_little() -> None:
    """10,000 stations installing the same three roots hold one parsed copy of each; each
    station's store costs a few hundred bytes (tracemalloc, measured here)."""
    roots = [
        ("CSMSRootCertificate", ROOT.certificate_pem.decode()),
        ("MORootCertificate", OTHER_ROOT.certificate_pem.decode()),
        ("V2GRootCertificate", ROOT.certificate_pem.decode()),
    ]
    first = _FakeStation()
    for use, pem in roots:  # the first station parses them
        assert (
            install_certificate(first, {"certificateType": use, "certificate": pem}).payload[
                "status"
            ]
            == "Accepted"
        )
    stations = [_FakeStation() for _ in range(10_000)]
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for station in stations:
            for use, pem in roots:
                install_certificate(station, {"certificateType": use, "certificate": pem})
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    per_station = (after - before) / len(stations)
    assert per_station < 1_000, f"{per_station:.0f} bytes per station"
    assert first.state is not None
    shared = first.state.installed[0].certificate
    for station in stations[:: len(stations) // 10]:
        assert station.state is not None
        assert station.state.installed[0].certificate is shared
        assert station.state.installed[2].certificate is shared
