"""A small certificate authority: the keys and X.509 certificates a TLS run on one machine needs.

OCPP security profiles 2 and 3 run over TLS: the CSMS presents a server certificate the stations
trust, and under profile 3 every station presents a client certificate of its own. Against the
embedded CSMS there is no operator to hand these out, so fleetsim makes them: a root CA when the
run starts, a server certificate for the addresses the CSMS listens on, client certificates named
after station ids, and signatures for the certificate signing requests stations send over OCPP
(SignCertificate, A02/A03).

Keys are ECDSA on secp256r1, one of the two key types OCPP 2.x allows for station and CSMS
certificates; a key is made in well under a millisecond, so a fleet's certificates cost little
to make.  Everything here is pure: no files, no clock but the `now` given.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "CertificateAuthority",
    "IssuedCertificate",
    "new_private_key",
    "private_key_pem",
    "certificate_pem",
    "certificate_signing_request",
    "intermediate_authority",
    "public_key_der",
]

#: How long a certificate made here stays valid unless the caller says otherwise.
DEFAULT_VALIDITY_DAYS = 365


def new_private_key() -> ec.EllipticCurvePrivateKey:
    """A fresh secp256r1 key pair."""
    return ec.generate_private_key(ec.SECP256R1())


def private_key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """The key as unencrypted PKCS#8 PEM, as TLS libraries load it."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def certificate_pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _name(common_name: str, organization: str | None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    """A leaf certificate with its key, and the chain a TLS peer presents (leaf, then CA)."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    #: PEM of the leaf followed by the issuing CA's certificate.
    chain_pem: bytes

    @property
    def key_pem(self) -> bytes:
        return private_key_pem(self.key)


class CertificateAuthority:
    """A root CA that issues server and client certificates and signs CSRs."""

    def __init__(self, certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
        self.certificate = certificate
        self.key = key
        self.certificate_pem = certificate_pem(certificate)

    @classmethod
    def create(
        cls,
        common_name: str = "fleetsim CA",
        organization: str = "fleetsim",
        *,
        valid_days: int = DEFAULT_VALIDITY_DAYS,
        now: datetime.datetime | None = None,
    ) -> CertificateAuthority:
        """A new self-signed root, valid from a minute before `now` (clock skew) on."""
        key = new_private_key()
        name = _name(common_name, organization)
        start = (now or _now()) - datetime.timedelta(minutes=1)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + datetime.timedelta(days=valid_days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        return cls(certificate, key)

    def _leaf(
        self,
        subject: x509.Name,
        public_key: ec.EllipticCurvePublicKey,
        usage: x509.ObjectIdentifier,
        *,
        hosts: tuple[str, ...] = (),
        valid_days: int,
        now: datetime.datetime | None,
    ) -> x509.Certificate:
        start = (now or _now()) - datetime.timedelta(minutes=1)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + datetime.timedelta(days=valid_days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False
            )
        )
        if hosts:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([_general_name(host) for host in hosts]),
                critical=False,
            )
        return builder.sign(self.key, hashes.SHA256())

    def _issued(
        self, certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey
    ) -> IssuedCertificate:
        return IssuedCertificate(
            certificate, key, certificate_pem(certificate) + self.certificate_pem
        )

    def issue_server_certificate(
        self,
        hosts: tuple[str, ...],
        *,
        valid_days: int = DEFAULT_VALIDITY_DAYS,
        now: datetime.datetime | None = None,
    ) -> IssuedCertificate:
        """A TLS server certificate for `hosts` (names or IP addresses, in subjectAltName)."""
        if not hosts:
            raise ValueError("a server certificate needs at least one host name or address")
        key = new_private_key()
        certificate = self._leaf(
            _name(hosts[0], None),
            key.public_key(),
            ExtendedKeyUsageOID.SERVER_AUTH,
            hosts=hosts,
            valid_days=valid_days,
            now=now,
        )
        return self._issued(certificate, key)

    def issue_client_certificate(
        self,
        common_name: str,
        organization: str | None = None,
        *,
        valid_days: int = DEFAULT_VALIDITY_DAYS,
        now: datetime.datetime | None = None,
    ) -> IssuedCertificate:
        """A TLS client certificate; OCPP names a station's certificate after its id (CN)."""
        key = new_private_key()
        certificate = self._leaf(
            _name(common_name, organization),
            key.public_key(),
            ExtendedKeyUsageOID.CLIENT_AUTH,
            valid_days=valid_days,
            now=now,
        )
        return self._issued(certificate, key)

    def sign_request(
        self,
        csr_pem: str | bytes,
        *,
        valid_days: int = DEFAULT_VALIDITY_DAYS,
        now: datetime.datetime | None = None,
    ) -> bytes:
        """Sign a PKCS#10 request after checking its own signature; returns the PEM chain.

        Raises ValueError, saying why, for a request that is not PEM, whose signature does not
        verify, or whose key is not one this CA signs (secp256r1).
        """
        data = csr_pem.encode() if isinstance(csr_pem, str) else csr_pem
        try:
            request = x509.load_pem_x509_csr(data)
        except ValueError as exc:
            raise ValueError(f"the certificate signing request is not PEM PKCS#10: {exc}") from None
        if not request.is_signature_valid:
            raise ValueError("the certificate signing request's signature does not verify")
        public_key = request.public_key()
        if not isinstance(public_key, ec.EllipticCurvePublicKey):
            raise ValueError("the certificate signing request's key is not an ECDSA key")
        certificate = self._leaf(
            request.subject,
            public_key,
            ExtendedKeyUsageOID.CLIENT_AUTH,
            valid_days=valid_days,
            now=now,
        )
        return certificate_pem(certificate) + self.certificate_pem


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def certificate_signing_request(
    key: ec.EllipticCurvePrivateKey,
    common_name: str,
    organization: str | None,
    *,
    domain_component: str | None = None,
) -> bytes:
    """A PKCS#10 request, as PEM, for `key` with the subject OCPP asks of a station: its id as
    CN and SecurityCtrlr.OrganizationName as O (A02.FR.06); ISO 15118 V2G certificates add
    the domain component "CPO"."""
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    if domain_component:
        attributes.append(x509.NameAttribute(NameOID.DOMAIN_COMPONENT, domain_component))
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name(attributes))
        .sign(key, hashes.SHA256())
    )
    return request.public_bytes(serialization.Encoding.PEM)


def public_key_der(key: CertificatePublicKeyTypes | ec.EllipticCurvePrivateKey) -> bytes:
    """The SubjectPublicKeyInfo DER of a key (of a private key: of its public half), which
    tells whether a certificate is for this key."""
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def intermediate_authority(
    parent: CertificateAuthority,
    common_name: str,
    *,
    valid_days: int = DEFAULT_VALIDITY_DAYS,
    now: datetime.datetime | None = None,
) -> CertificateAuthority:
    """A sub-CA signed by `parent`, as PKIs for ISO 15118 have them (root, sub-CAs, leaf);
    what it signs chains to `parent`'s root through its certificate."""
    key = new_private_key()
    start = (now or _now()) - datetime.timedelta(minutes=1)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name, None))
        .issuer_name(parent.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(parent.key.public_key()), False
        )
        .sign(parent.key, hashes.SHA256())
    )
    return CertificateAuthority(certificate, key)
