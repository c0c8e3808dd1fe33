"""Steps that bring a station's certificates into a state, shared by the contract cases and
the conformance rows of block M."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import trio
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from fleetsim.simulator.csms import Csms, CsmsConfig
from fleetsim.simulator.pki import CertificateAuthority
from fleetsim.simulator.station import Station
from tests.helpers import STATION_ID, T0

#: A root valid over the whole simulated test day.
TEST_ROOT = CertificateAuthority.create("Test root", "Test", now=T0 - dt.timedelta(days=30))
TEST_ROOT_PEM = TEST_ROOT.certificate_pem.decode()


def hash_data_of(certificate: x509.Certificate, issuer: x509.Certificate) -> dict[str, str]:
    """CertificateHashDataType computed by hand: SHA-256 over the DER issuer name and over the
    issuer's subjectPublicKey bits, the serial in hex."""
    key_bits = issuer.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return {
        "hashAlgorithm": "SHA256",
        "issuerNameHash": hashlib.sha256(certificate.issuer.public_bytes()).hexdigest(),
        "issuerKeyHash": hashlib.sha256(key_bits).hexdigest(),
        "serialNumber": format(certificate.serial_number, "x"),
    }


TEST_ROOT_HASH_DATA = hash_data_of(TEST_ROOT.certificate, TEST_ROOT.certificate)


async def _never_sign(csms: Csms, station_id: str, request: Any, response: Any) -> None:
    """The CSMS accepts the signing request; the test sends the certificate itself."""


#: A CSMS that accepts signing requests and leaves CertificateSigned to the test.
SILENT_CA = CsmsConfig(reactions={"SignCertificate": _never_sign})


async def root_installed(csms: Csms) -> None:
    answer = await csms.call(
        STATION_ID,
        "InstallCertificate",
        {"certificateType": "CSMSRootCertificate", "certificate": TEST_ROOT_PEM},
    )
    assert answer["status"] == "Accepted", answer


async def signing_request(csms: Csms, requested: str = "SignChargingStationCertificate") -> str:
    """Trigger a signing request; its CSR once it has arrived."""
    since = csms.station(STATION_ID).messages_received
    answer = await csms.call(STATION_ID, "TriggerMessage", {"requestedMessage": requested})
    assert answer["status"] == "Accepted", answer
    with trio.fail_after(600):
        request = await csms.wait_for_message(STATION_ID, "SignCertificate", since=since)
    return str(request["csr"])


async def signed_certificate(station: Station, csms: Csms) -> dict[str, Any]:
    """A CertificateSigned for the station's pending request, signed by the CSMS's CA (needs
    `SILENT_CA`)."""
    csr = await signing_request(csms)
    chain = csms.certificates.authority.sign_request(csr, now=T0)
    return {"certificateChain": chain.decode(), "certificateType": "ChargingStationCertificate"}


async def foreign_certificate(station: Station, csms: Csms) -> dict[str, Any]:
    """A CertificateSigned for a key the station never asked about (needs `SILENT_CA`)."""
    await signing_request(csms)
    issued = csms.certificates.authority.issue_client_certificate(STATION_ID, now=T0)
    return {
        "certificateChain": issued.chain_pem.decode(),
        "certificateType": "ChargingStationCertificate",
    }
