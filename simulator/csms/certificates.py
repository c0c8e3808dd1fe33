"""The embedded CSMS as a certificate authority: it signs stations' requests (A02, A03, M02),
issues ISO 15118 contract certificates (M01, M02: Get15118EVCertificate) and says whether a
certificate is good (GetCertificateStatus, C07/M06), all with real keys and signatures.

    SignCertificate         Accepted for a PKCS#10 request whose signature verifies and, for a
                            ChargingStationCertificate, whose CN is the station's id (A02.FR.06);
                            then the CSMS signs it with its CA and sends CertificateSigned with
                            the chain (leaf, then the CA), the certificateType and (2.1) the
                            requestId.  Rejected, saying why, otherwise.
    Get15118EVCertificate   fleetsim does not encode EXI.  Its stations put in `exiRequest` the
                            base64 of a DER PKCS#10 request for the EV's contract key, whose CN
                            is the eMAID, in place of the EXI CertificateInstallationReq; the
                            CSMS signs it with its mobility operator (MO) root and answers
                            Accepted with `exiResponse` = the base64 of the PEM contract chain
                            (contract certificate, then the MO root).  A request that is not
                            such a stand-in (real EXI) is answered Failed, saying so.
    GetCertificateChainStatus (2.1) for each certificate asked about: Good for a certificate
                            this CSMS issued (its serial number, under one of its CAs' key
                            hashes), Unknown for any other; next update in OCSP_VALID_S.
    GetCertificateStatus    Accepted with `ocspResult` = the base64 of a real DER OCSP response
                            (RFC 6960) for the CertID asked about, signed by the CA that issued
                            the certificate: good for a certificate this CSMS issued, unknown for
                            any other (then signed by the CSMS's CA).  Failed for hash data that
                            is not hexadecimal of the algorithm's length.

The CAs are made on first use, so a CSMS that never signs makes none; `authority` may be given
(the CA whose certificates a TLS run trusts), so a renewed station certificate is one the
CSMS's TLS server accepts.  A test that wants a CSMS that never sends CertificateSigned names
its own SignCertificate reaction in `CsmsConfig.reactions`, which replaces this one.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from ..clock import format_timestamp

if TYPE_CHECKING:
    from cryptography.hazmat.primitives import hashes

    from ..pki import CertificateAuthority
    from .state import StationState

# cryptography is imported where a certificate is handled, not with this module: every
# embedded CSMS makes a CertificateServices, and the library costs a process about 12 MB.


class _Caller(Protocol):
    """What the CertificateSigned reaction needs of the CSMS (`Csms.call_quietly`)."""

    async def call_quietly(
        self, station_id: str, action: str, payload: Mapping[str, Any]
    ) -> Mapping[str, Any] | None: ...


__all__ = ["CertificateServices"]

_log = logging.getLogger(__name__)


def _hash_algorithm(name: str) -> hashes.HashAlgorithm:
    """The hash algorithm of a hashAlgorithm field (SHA256, SHA384, SHA512)."""
    from cryptography.hazmat.primitives import hashes

    if name == "SHA384":
        return hashes.SHA384()
    if name == "SHA512":
        return hashes.SHA512()
    if name == "SHA256":
        return hashes.SHA256()
    raise KeyError(name)


#: How long an OCSP answer of this CSMS stays current (its nextUpdate).
OCSP_VALID_S = 86_400.0
#: How long the contract certificates it issues are valid.
CONTRACT_VALIDITY_DAYS = 365

Responder = Callable[["StationState", Mapping[str, Any]], Mapping[str, Any]]


def _rejected(reason: str, why: str, status: str = "Rejected") -> dict[str, Any]:
    return {"status": status, "statusInfo": {"reasonCode": reason, "additionalInfo": why[:1024]}}


class CertificateServices:
    """The CSMS's CAs and what it answers with them; one per CSMS."""

    def __init__(
        self,
        authority: CertificateAuthority | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._authority = authority
        self._contract_authority: CertificateAuthority | None = None
        self._clock = clock
        #: Serial numbers of the certificates this CSMS issued (random 159-bit numbers, so
        #: one set serves both CAs).
        self._issued: set[int] = set()
        #: Station certificates signed so far.
        self.signed = 0
        #: How long the station certificates it signs are valid.
        self.validity_days = 365  # a year, as pki.DEFAULT_VALIDITY_DAYS

    @property
    def authority(self) -> CertificateAuthority:
        """The CA that signs stations' certificates (made on first use)."""
        if self._authority is None:
            from ..pki import CertificateAuthority

            self._authority = CertificateAuthority.create("fleetsim CSMS CA", now=self._now())
        return self._authority

    @authority.setter
    def authority(self, authority: CertificateAuthority) -> None:
        """Sign with this CA from now on (a TLS run's, or a sub-CA)."""
        self._authority = authority

    @property
    def contract_authority(self) -> CertificateAuthority:
        """The mobility operator root that signs contract certificates (made on first use)."""
        if self._contract_authority is None:
            from ..pki import CertificateAuthority

            self._contract_authority = CertificateAuthority.create(
                "fleetsim MO root", now=self._now()
            )
        return self._contract_authority

    def _now(self) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self._clock(), datetime.UTC)

    def responders(self) -> dict[str, Responder]:
        return {
            "SignCertificate": self.sign_certificate,
            "Get15118EVCertificate": self.get_15118_ev_certificate,
            "GetCertificateStatus": self.get_certificate_status,
            "GetCertificateChainStatus": self.get_certificate_chain_status,
        }

    def reactions(self) -> dict[str, Any]:
        return {"SignCertificate": self._send_certificate_signed}

    # -- SignCertificate, CertificateSigned ---------------------------------------------------

    def sign_certificate(
        self, station: StationState, payload: Mapping[str, Any]
    ) -> Mapping[str, Any]:
        from cryptography import x509
        from cryptography.x509.oid import NameOID

        try:
            request = x509.load_pem_x509_csr(str(payload["csr"]).encode())
        except ValueError:
            return _rejected("InvalidCSR", "the csr is not a PEM PKCS#10 request")
        if not request.is_signature_valid:
            return _rejected("InvalidCSR", "the csr's signature does not verify")
        use = payload.get("certificateType", "ChargingStationCertificate")
        if use == "ChargingStationCertificate":
            names = request.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
            if [name.value for name in names] != [station.station_id]:
                return _rejected(
                    "InvalidCSR",
                    f"a ChargingStationCertificate's CN must be the station's id "
                    f"{station.station_id}",
                )
        return {"status": "Accepted"}

    async def _send_certificate_signed(
        self,
        csms: _Caller,
        station_id: str,
        request: Mapping[str, Any],
        response: Mapping[str, Any],
    ) -> None:
        if response.get("status") != "Accepted":
            return
        from cryptography import x509

        try:
            chain = self.authority.sign_request(
                str(request["csr"]), valid_days=self.validity_days, now=self._now()
            )
        except ValueError as exc:
            _log.warning("the embedded CSMS could not sign %s's request: %s", station_id, exc)
            return
        self._issued.add(x509.load_pem_x509_certificate(chain).serial_number)
        self.signed += 1
        signed: dict[str, Any] = {"certificateChain": chain.decode()}
        if "certificateType" in request:
            signed["certificateType"] = request["certificateType"]
        if "requestId" in request:
            signed["requestId"] = request["requestId"]
        await csms.call_quietly(station_id, "CertificateSigned", signed)

    # -- Get15118EVCertificate ----------------------------------------------------------------

    def get_15118_ev_certificate(
        self, station: StationState, payload: Mapping[str, Any]
    ) -> Mapping[str, Any]:
        from cryptography import x509

        try:
            der = base64.b64decode(str(payload["exiRequest"]), validate=True)
            request = x509.load_der_x509_csr(der)
        except (binascii.Error, ValueError):
            failed = _rejected(
                "NotSupported",
                "the embedded CSMS does not decode EXI; it takes the base64 of a DER PKCS#10 "
                "request for the contract key (fleetsim's stand-in) as exiRequest",
                status="Failed",
            )
            return {**failed, "exiResponse": ""}
        if not request.is_signature_valid:
            return {
                **_rejected("InvalidCSR", "the request's signature does not verify", "Failed"),
                "exiResponse": "",
            }
        chain = self.contract_authority.sign_request(
            der_to_pem_csr(der), valid_days=CONTRACT_VALIDITY_DAYS, now=self._now()
        )
        self._issued.add(x509.load_pem_x509_certificate(chain).serial_number)
        return {"status": "Accepted", "exiResponse": base64.b64encode(chain).decode()}

    # -- GetCertificateStatus (OCSP) ----------------------------------------------------------

    def get_certificate_status(
        self, station: StationState, payload: Mapping[str, Any]
    ) -> Mapping[str, Any]:
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.x509 import ocsp

        data = payload["ocspRequestData"]
        algorithm = _hash_algorithm(data["hashAlgorithm"])
        try:
            name_hash = bytes.fromhex(data["issuerNameHash"])
            key_hash = bytes.fromhex(data["issuerKeyHash"])
            serial = int(data["serialNumber"], 16)
        except ValueError:
            return _rejected("InvalidValue", "the hash data is not hexadecimal", "Failed")
        if len(name_hash) != algorithm.digest_size or len(key_hash) != algorithm.digest_size:
            return _rejected(
                "InvalidValue",
                f"{data['hashAlgorithm']} hashes are {algorithm.digest_size} bytes",
                "Failed",
            )
        issuer = self._issuer_by_key_hash(data["hashAlgorithm"], key_hash)
        good = issuer is not None and serial in self._issued
        signer = issuer or self.authority
        now = self._now()
        builder = (
            ocsp.OCSPResponseBuilder()
            .add_response_by_hash(
                issuer_name_hash=name_hash,
                issuer_key_hash=key_hash,
                serial_number=serial,
                algorithm=algorithm,
                cert_status=ocsp.OCSPCertStatus.GOOD if good else ocsp.OCSPCertStatus.UNKNOWN,
                this_update=now,
                next_update=now + datetime.timedelta(seconds=OCSP_VALID_S),
                revocation_time=None,
                revocation_reason=None,
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, signer.certificate)
        )
        response = builder.sign(signer.key, hashes.SHA256())
        der = response.public_bytes(serialization.Encoding.DER)
        return {"status": "Accepted", "ocspResult": base64.b64encode(der).decode()}

    def get_certificate_chain_status(
        self, station: StationState, payload: Mapping[str, Any]
    ) -> Mapping[str, Any]:
        next_update = format_timestamp(self._clock() + OCSP_VALID_S)
        return {
            "certificateStatus": [
                {
                    "certificateHashData": request["certificateHashData"],
                    "source": request["source"],
                    "status": "Good" if self._knows(request["certificateHashData"]) else "Unknown",
                    "nextUpdate": next_update,
                }
                for request in payload["certificateStatusRequests"]
            ]
        }

    def _knows(self, hash_data: Mapping[str, Any]) -> bool:
        """Whether this CSMS issued the certificate `hash_data` names."""
        try:
            key_hash = bytes.fromhex(hash_data["issuerKeyHash"])
            serial = int(hash_data["serialNumber"], 16)
        except ValueError:
            return False
        issuer = self._issuer_by_key_hash(hash_data["hashAlgorithm"], key_hash)
        return issuer is not None and serial in self._issued

    def _issuer_by_key_hash(self, algorithm: str, key_hash: bytes) -> CertificateAuthority | None:
        for authority in (self._authority, self._contract_authority):
            if authority is not None and _key_hash(authority, algorithm) == key_hash:
                return authority
        return None


def _key_hash(authority: CertificateAuthority, algorithm: str) -> bytes:
    """The hash of a CA's public key as an OCSP CertID has it: over the subjectPublicKey bits,
    for an EC key the uncompressed point."""
    from cryptography.hazmat.primitives import hashes, serialization

    point = authority.certificate.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    digest = hashes.Hash(_hash_algorithm(algorithm))
    digest.update(point)
    return digest.finalize()


def der_to_pem_csr(der: bytes) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    return x509.load_der_x509_csr(der).public_bytes(serialization.Encoding.PEM)


def contract_chain_from_exi_response(exi_response: str) -> bytes:
    """The PEM chain in an exiResponse of this CSMS (the inverse of its stand-in)."""
    return base64.b64decode(exi_response)
