"""The certificate authority's certificates verify, serve TLS, and sign only sound requests."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fleetsim.simulator.pki import CertificateAuthority, new_private_key


def _extended_usage(certificate: x509.Certificate) -> list[x509.ObjectIdentifier]:
    return list(certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def test_a_server_certificate_is_issued_by_the_root_for_its_hosts() -> None:
    authority = CertificateAuthority.create()
    server = authority.issue_server_certificate(("localhost", "127.0.0.1"))
    server.certificate.verify_directly_issued_by(authority.certificate)
    names = server.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert names.value.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(a) for a in names.value.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert _extended_usage(server.certificate) == [ExtendedKeyUsageOID.SERVER_AUTH]
    with pytest.raises(ValueError, match="at least one host"):
        authority.issue_server_certificate(())


def test_tls_contexts_load_what_the_authority_makes(tmp_path: Path) -> None:
    authority = CertificateAuthority.create()
    client = authority.issue_client_certificate("CS-0001", "Fleet Org")
    (tmp_path / "ca.pem").write_bytes(authority.certificate_pem)
    (tmp_path / "client.pem").write_bytes(client.chain_pem)
    (tmp_path / "client.key").write_bytes(client.key_pem)
    context = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    context.load_cert_chain(tmp_path / "client.pem", tmp_path / "client.key")
    subject = client.certificate.subject
    assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "CS-0001"
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Fleet Org"
    assert _extended_usage(client.certificate) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_a_signing_request_is_signed_with_its_subject_and_key() -> None:
    authority = CertificateAuthority.create()
    key = new_private_key()
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "CS-0042"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Fleet Org"),
        ]
    )
    request = (
        x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    )
    chain = authority.sign_request(request.public_bytes(serialization.Encoding.PEM).decode())
    leaf, root = x509.load_pem_x509_certificates(chain)
    assert root == authority.certificate
    leaf.verify_directly_issued_by(authority.certificate)
    assert leaf.subject == subject
    assert leaf.public_key() == key.public_key()


def test_a_request_that_is_not_pem_or_does_not_verify_is_refused() -> None:
    authority = CertificateAuthority.create()
    with pytest.raises(ValueError, match="not PEM PKCS#10"):
        authority.sign_request("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n")
    key = new_private_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "CS-0042")])
    request = (
        x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    )
    der = bytearray(request.public_bytes(serialization.Encoding.DER))
    der[-40] ^= 0x01  # inside the signature
    tampered = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM)
    with pytest.raises(ValueError, match="does not verify"):
        authority.sign_request(tampered)
