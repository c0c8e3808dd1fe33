"""The embedded CSMS as a certificate authority: it signs what a station asks and nothing else,
issues contract certificates for fleetsim's EXI-free stand-in, and answers OCSP questions with
real, signed OCSP responses."""

from __future__ import annotations

import base64
import hashlib

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

from fleetsim.simulator.csms.certificates import CertificateServices
from fleetsim.simulator.csms.state import StationState
from fleetsim.simulator.pki import (
    CertificateAuthority,
    certificate_signing_request,
    new_private_key,
)

T0_S = 1_768_478_400.0  # 2026-01-15T12:00:00Z
STATION = StationState("CP00001")


def _services() -> CertificateServices:
    return CertificateServices(clock=lambda: T0_S)


def test_a_request_is_signed_only_when_it_is_a_valid_request_of_the_station() -> None:
    services = _services()
    key = new_private_key()
    good = certificate_signing_request(key, "CP00001", "fleetsim").decode()
    assert services.sign_certificate(STATION, {"csr": good}) == {"status": "Accepted"}
    other = certificate_signing_request(key, "CP00002", "fleetsim").decode()
    answer = services.sign_certificate(STATION, {"csr": other})
    assert answer["status"] == "Rejected"
    assert "CP00001" in answer["statusInfo"]["additionalInfo"]
    answer = services.sign_certificate(STATION, {"csr": "-----BEGIN CERTIFICATE REQUEST-----"})
    assert answer["statusInfo"]["reasonCode"] == "InvalidCSR"
    # A V2G certificate may be named after the EVSE rather than the station.
    v2g = certificate_signing_request(key, "DE*ABC*E1", "fleetsim", domain_component="CPO")
    answer = services.sign_certificate(
        STATION, {"csr": v2g.decode(), "certificateType": "V2GCertificate"}
    )
    assert answer == {"status": "Accepted"}


def test_a_contract_certificate_is_issued_for_the_stand_in_request() -> None:
    services = _services()
    key = new_private_key()
    csr_pem = certificate_signing_request(key, "DEFLTC1234567890", None)
    der = x509.load_pem_x509_csr(csr_pem).public_bytes(serialization.Encoding.DER)
    answer = services.get_15118_ev_certificate(
        STATION,
        {
            "iso15118SchemaVersion": "urn:iso:15118:2:2013:MsgDef",
            "action": "Install",
            "exiRequest": base64.b64encode(der).decode(),
        },
    )
    assert answer["status"] == "Accepted"
    leaf, root = x509.load_pem_x509_certificates(base64.b64decode(answer["exiResponse"]))
    leaf.verify_directly_issued_by(services.contract_authority.certificate)
    assert root == services.contract_authority.certificate
    assert leaf.public_key() == key.public_key()
    assert leaf.subject.rfc4514_string() == "CN=DEFLTC1234567890"


def test_real_exi_is_answered_failed_saying_why() -> None:
    answer = _services().get_15118_ev_certificate(
        STATION,
        {
            "iso15118SchemaVersion": "urn:iso:15118:2:2013:MsgDef",
            "action": "Install",
            "exiRequest": "gAQCAwQFBgcICQ==",
        },
    )
    assert answer["status"] == "Failed"
    assert answer["exiResponse"] == ""
    assert "EXI" in answer["statusInfo"]["additionalInfo"]


def _cert_id(certificate: x509.Certificate, issuer: CertificateAuthority) -> dict[str, str]:
    key_bits = issuer.certificate.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return {
        "hashAlgorithm": "SHA256",
        "issuerNameHash": hashlib.sha256(certificate.issuer.public_bytes()).hexdigest(),
        "issuerKeyHash": hashlib.sha256(key_bits).hexdigest(),
        "serialNumber": format(certificate.serial_number, "x"),
        "responderURL": "http://ocsp.example/",
    }


def test_ocsp_answers_are_real_signed_responses_good_for_what_it_issued() -> None:
    services = _services()
    key = new_private_key()
    csr = certificate_signing_request(key, "EMAID1", None)
    der = x509.load_pem_x509_csr(csr).public_bytes(serialization.Encoding.DER)
    issued = services.get_15118_ev_certificate(
        STATION,
        {
            "iso15118SchemaVersion": "x",
            "action": "Install",
            "exiRequest": base64.b64encode(der).decode(),
        },
    )
    leaf = x509.load_pem_x509_certificates(base64.b64decode(issued["exiResponse"]))[0]
    authority = services.contract_authority

    answer = services.get_certificate_status(
        STATION, {"ocspRequestData": _cert_id(leaf, authority)}
    )
    assert answer["status"] == "Accepted"
    response = ocsp.load_der_ocsp_response(base64.b64decode(answer["ocspResult"]))
    assert response.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert response.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert response.serial_number == leaf.serial_number
    public_key = authority.certificate.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    public_key.verify(response.signature, response.tbs_response_bytes, ec.ECDSA(hashes.SHA256()))

    stranger = CertificateAuthority.create("elsewhere").issue_client_certificate("x").certificate
    answer = services.get_certificate_status(
        STATION, {"ocspRequestData": _cert_id(stranger, authority)}
    )
    response = ocsp.load_der_ocsp_response(base64.b64decode(answer["ocspResult"]))
    assert response.certificate_status == ocsp.OCSPCertStatus.UNKNOWN

    answer = services.get_certificate_status(
        STATION, {"ocspRequestData": {**_cert_id(leaf, authority), "issuerKeyHash": "abcd"}}
    )
    assert answer["status"] == "Failed"


def test_chain_status_is_good_only_for_what_the_csms_issued() -> None:
    services = _services()
    key = new_private_key()
    csr = certificate_signing_request(key, "EMAID2", None)
    der = x509.load_pem_x509_csr(csr).public_bytes(serialization.Encoding.DER)
    issued = services.get_15118_ev_certificate(
        STATION,
        {
            "iso15118SchemaVersion": "x",
            "action": "Install",
            "exiRequest": base64.b64encode(der).decode(),
        },
    )
    leaf = x509.load_pem_x509_certificates(base64.b64decode(issued["exiResponse"]))[0]
    stranger = CertificateAuthority.create("elsewhere").issue_client_certificate("x").certificate
    authority = services.contract_authority
    requests = [
        {
            "source": "OCSP",
            "urls": ["http://ocsp.example/"],
            "certificateHashData": {
                k: v for k, v in _cert_id(certificate, authority).items() if k != "responderURL"
            },
        }
        for certificate in (leaf, stranger)
    ]
    answer = services.get_certificate_chain_status(STATION, {"certificateStatusRequests": requests})
    assert [status["status"] for status in answer["certificateStatus"]] == ["Good", "Unknown"]
