"""The certificates a station holds, and the hash data OCPP names them by.

A certificate is identified over OCPP by its `CertificateHashDataType` (M03, M04): the hash of
the DER-encoded issuer name, the hash of the issuer's public key -- the value of the
subjectPublicKey BIT STRING of the issuer's SubjectPublicKeyInfo, as an OCSP CertID has it (RFC
6960) -- and the serial number in hexadecimal without leading zeroes.  Both hashes are taken
over the bytes as they appear in the certificates, read with a small DER walker rather than
re-encoded, so a name with unusual string types hashes as the CSMS's own copy does.  Hashes and
serial numbers are compared without regard to case (and the serial without leading zeroes),
as CSMSs write them either way.

Fleets share certificates: the same CSMS root installed on 10,000 stations is one parsed
`SharedCertificate`, interned by the SHA-256 of its DER and dropped when no station holds it
any more.  A station's store holds only its entries (a use and a tuple of shared certificates),
and is made the first time a certificate arrives.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import re
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CertificateError",
    "Installed",
    "SharedCertificate",
    "hash_data_matches",
    "intern_der",
    "parse_pem_chain",
]

_PEM_BLOCK = re.compile(
    r"-----BEGIN CERTIFICATE-----\s*(.*?)\s*-----END CERTIFICATE-----", re.DOTALL
)
#: hashAlgorithm -> hashlib constructor name.
_HASHES = {"SHA256": "sha256", "SHA384": "sha384", "SHA512": "sha512"}


class CertificateError(ValueError):
    """A certificate or chain a station cannot take; the message says why, for statusInfo."""


# -- DER, as far as the hash data needs it ----------------------------------------------------


def _tlv(data: bytes, offset: int) -> tuple[int, int, int]:
    """(tag, start of the value, end of the value) of the DER element at `offset`."""
    tag = data[offset]
    length = data[offset + 1]
    offset += 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[offset : offset + count], "big")
        offset += count
    return tag, offset, offset + length


def _children(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(tag, element start, value start, value end) of each element in data[start:end]."""
    while start < end:
        tag, value_start, value_end = _tlv(data, start)
        yield tag, start, value_start, value_end
        start = value_end


def _der_pieces(der: bytes) -> tuple[bytes, bytes, bytes]:
    """The DER of the issuer and subject names and the subjectPublicKey bits of a
    certificate: TBSCertificate is [0] version, serial, signature, issuer, validity,
    subject, subjectPublicKeyInfo, ..."""
    _, cert_start, _ = _tlv(der, 0)
    _, tbs_start, tbs_end = _tlv(der, cert_start)
    fields = list(_children(der, tbs_start, tbs_end))
    if fields and fields[0][0] == 0xA0:  # the explicit version
        fields = fields[1:]
    _, issuer_at, _, issuer_end = fields[2]
    _, subject_at, _, subject_end = fields[4]
    _, _, spki_start, spki_end = fields[5]
    _, _, bits_start, bits_end = list(_children(der, spki_start, spki_end))[1]
    # The first byte of a BIT STRING's value counts the unused bits; the key follows it.
    return der[issuer_at:issuer_end], der[subject_at:subject_end], der[bits_start + 1 : bits_end]


# -- shared certificates ----------------------------------------------------------------------


class SharedCertificate:
    """One parsed certificate, shared by every station that holds it; never changed."""

    __slots__ = (
        "__weakref__",
        "_hash_data",
        "certificate",
        "der",
        "issuer_der",
        "key_bits",
        "serial_hex",
        "subject_der",
    )

    def __init__(self, der: bytes) -> None:
        from cryptography import x509  # loaded by the first certificate, not at start

        try:
            self.certificate = x509.load_der_x509_certificate(der)
            self.issuer_der, self.subject_der, self.key_bits = _der_pieces(der)
        except (ValueError, IndexError) as exc:
            raise CertificateError(f"not an X.509 certificate: {exc}") from None
        self.der = der
        self.serial_hex = format(self.certificate.serial_number, "x")
        #: Hashes computed so far: "<algorithm>" -> issuerNameHash, "key <algorithm>" -> the
        #: hash of this certificate's own key (what it signs names as issuerKeyHash).
        self._hash_data: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"<SharedCertificate {self.certificate.subject.rfc4514_string()} {self.serial_hex}>"

    @property
    def pem(self) -> str:
        """The certificate as PEM, made when asked (a station's own chain for its TLS
        identity): kept, it would double what a certificate costs."""
        return _pem(self.der)

    @property
    def self_signed(self) -> bool:
        return self.issuer_der == self.subject_der

    def issuer_name_hash(self, algorithm: str = "SHA256") -> str:
        found = self._hash_data.get(algorithm)
        if found is None:
            found = self._hash_data[algorithm] = _digest(algorithm, self.issuer_der)
        return found

    def key_hash(self, algorithm: str = "SHA256") -> str:
        """The hash of this certificate's public key: the issuerKeyHash of what it signs."""
        key = "key " + algorithm
        found = self._hash_data.get(key)
        if found is None:
            found = self._hash_data[key] = _digest(algorithm, self.key_bits)
        return found

    def hash_data(
        self, issuer: SharedCertificate | None, algorithm: str = "SHA256"
    ) -> dict[str, str]:
        """This certificate's CertificateHashDataType; `issuer` None for a self-signed one."""
        return {
            "hashAlgorithm": algorithm,
            "issuerNameHash": self.issuer_name_hash(algorithm),
            "issuerKeyHash": (issuer or self).key_hash(algorithm),
            "serialNumber": self.serial_hex,
        }

    def valid_at(self, when: datetime.datetime) -> bool:
        certificate = self.certificate
        return certificate.not_valid_before_utc <= when <= certificate.not_valid_after_utc

    def issued(self, child: SharedCertificate) -> bool:
        """Whether this certificate's key signed `child` (and it names this as its issuer)."""
        from cryptography.exceptions import InvalidSignature

        try:
            child.certificate.verify_directly_issued_by(self.certificate)
        except (InvalidSignature, ValueError, TypeError):
            return False
        return True


def _digest(algorithm: str, data: bytes) -> str:
    return hashlib.new(_HASHES[algorithm], data).hexdigest()


def _pem(der: bytes) -> str:
    body = base64.b64encode(der).decode()
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN CERTIFICATE-----\n{lines}\n-----END CERTIFICATE-----\n"


#: SHA-256 of the DER -> the certificate, while any station holds it.
_INTERNED: weakref.WeakValueDictionary[bytes, SharedCertificate] = weakref.WeakValueDictionary()


def intern_der(der: bytes) -> SharedCertificate:
    """The one shared certificate for these DER bytes, parsed the first time only."""
    digest = hashlib.sha256(der).digest()
    found = _INTERNED.get(digest)
    if found is None:
        found = _INTERNED[digest] = SharedCertificate(der)
    return found


def parse_pem_chain(text: str) -> tuple[SharedCertificate, ...]:
    """The certificates of a PEM text, in order; CertificateError when there is none or one
    does not decode."""
    blocks = _PEM_BLOCK.findall(text)
    if not blocks:
        raise CertificateError("no PEM certificate (-----BEGIN CERTIFICATE-----) in the text")
    chain = []
    for number, block in enumerate(blocks, start=1):
        try:
            der = base64.b64decode("".join(block.split()), validate=True)
        except (binascii.Error, ValueError):
            raise CertificateError(f"certificate {number} of the text is not base64") from None
        chain.append(intern_der(der))
    return tuple(chain)


def _normal(value: Any, serial: bool = False) -> str:
    text = str(value).lower()
    return (text.lstrip("0") or "0") if serial else text


def hash_data_matches(
    wanted: Mapping[str, Any], certificate: SharedCertificate, issuer: SharedCertificate | None
) -> bool:
    """Whether a CertificateHashDataType names `certificate` (issued by `issuer`)."""
    algorithm = wanted.get("hashAlgorithm", "SHA256")
    if algorithm not in _HASHES:
        return False
    if _normal(wanted["serialNumber"], serial=True) != _normal(certificate.serial_hex, True):
        return False
    return _normal(wanted["issuerNameHash"]) == certificate.issuer_name_hash(algorithm) and _normal(
        wanted["issuerKeyHash"]
    ) == (issuer or certificate).key_hash(algorithm)


@dataclass(slots=True)
class Installed:
    """One entry of a station's store: a certificate of one use, or a chain (leaf first)."""

    #: An InstallCertificateUseEnumType, or ChargingStationCertificate / V2GCertificateChain
    #: for the station's own certificates.
    use: str
    chain: tuple[SharedCertificate, ...]
    #: The private key of the station's own certificate (PEM); None for the roots.
    key_pem: bytes | None = field(default=None, repr=False)
    #: For the station's own certificates: the CertificateSigningUseEnumType it was signed
    #: for (a V2GCertificateChain may be an ISO 15118-2 or -20 one).
    signing_use: str | None = None

    @property
    def certificate(self) -> SharedCertificate:
        return self.chain[0]

    def issuer_of(self, position: int, store: list[Installed]) -> SharedCertificate | None:
        """The certificate that issued chain[position]: the next in the chain, itself when
        self-signed, else a certificate in the store whose subject is its issuer."""
        certificate = self.chain[position]
        if certificate.self_signed:
            return None
        if position + 1 < len(self.chain):
            return self.chain[position + 1]
        for entry in store:
            for candidate in entry.chain:
                if candidate.subject_der == certificate.issuer_der:
                    return candidate
        return None
