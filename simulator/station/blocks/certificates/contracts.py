"""C07 and M01/M06: a Plug & Charge EV identifies itself with its contract certificate.

An EV that has no contract certificate asks the CSMS for one through the station
(Get15118EVCertificate, Install; fleetsim's EXI-free stand-in, see `iso15118.py`), on a key it
makes for it.  The station then checks the chain's revocation status with the CSMS: under OCPP
2.1 every certificate but the root in one GetCertificateChainStatus (each must be Good), under
2.0.1 the contract certificate's GetCertificateStatus (a real OCSP response, whose signature by
the issuer, serial number and status it checks).  It then authorizes the eMAID with the
certificate's hash data (Authorize with iso15118CertificateHashData).  The EV charges only when
the answer's idTokenInfo and certificateStatus are both Accepted.  The contract lives as long as
the visit; the station keeps nothing of it.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

from ...core import IdToken, StationCore
from ...iso15118 import (
    ISO15118_2_SCHEMA,
    ISO15118_20_SCHEMA,
    contract_certificate_chain,
    contract_certificate_request,
)
from .store import CertificateError, SharedCertificate, parse_pem_chain

if TYPE_CHECKING:
    from fleetsim.ev_models import EvArrival

    from ...evse import Evse

__all__ = ["plug_and_charge"]

#: The OCSP responder OCPP's OCSPRequestDataType must name; fleetsim's certificates carry no
#: AuthorityInfoAccess, and its CSMS answers for its own CAs whatever the URL.
OCSP_RESPONDER_URL = "http://ocsp.fleetsim.invalid/"


async def plug_and_charge(station: StationCore, evse: Evse, arrival: EvArrival) -> IdToken | None:
    token: IdToken = {"idToken": arrival.id_token, "type": "eMAID"}
    chain = await _contract(station, arrival)
    if chain is None:
        return None
    hash_data = [
        {**certificate.hash_data(chain[position + 1]), "responderURL": OCSP_RESPONDER_URL}
        for position, certificate in enumerate(chain[:-1])
        if not certificate.self_signed
    ][:4]
    if not hash_data:
        return None
    if not await _revocation_checked(station, chain, hash_data):
        return None
    answer = await station.call(
        "Authorize", {"idToken": token, "iso15118CertificateHashData": hash_data}
    )
    if answer is None:
        return None
    accepted = answer["idTokenInfo"]["status"] == "Accepted"
    return token if accepted and answer.get("certificateStatus", "Accepted") == "Accepted" else None


async def _contract(
    station: StationCore, arrival: EvArrival
) -> tuple[SharedCertificate, ...] | None:
    """A contract certificate chain for a new key of the EV, or None when none came."""
    from ....pki import new_private_key, public_key_der  # X.509 only where it is used

    key = new_private_key()
    request: dict[str, Any] = {
        "iso15118SchemaVersion": ISO15118_20_SCHEMA
        if arrival.uses_iso15118_20
        else ISO15118_2_SCHEMA,
        "action": "Install",
        "exiRequest": contract_certificate_request(key, arrival.id_token),
    }
    answer = await station.call("Get15118EVCertificate", request)
    if answer is None or answer.get("status") != "Accepted":
        return None
    try:
        chain = parse_pem_chain(contract_certificate_chain(answer["exiResponse"]))
    except (ValueError, CertificateError):
        return None
    if len(chain) < 2 or public_key_der(chain[0].certificate.public_key()) != public_key_der(key):
        return None
    return chain


async def _revocation_checked(
    station: StationCore, chain: tuple[SharedCertificate, ...], hash_data: list[dict[str, str]]
) -> bool:
    """Whether the CSMS says the contract chain is good: under 2.1 every certificate but the
    root at once (GetCertificateChainStatus), under 2.0.1 the contract certificate's OCSP
    response (GetCertificateStatus)."""
    if station.config.ocpp_version != "2.0.1":
        requests = [
            {
                "certificateHashData": {k: v for k, v in data.items() if k != "responderURL"},
                "source": "OCSP",
                "urls": [data["responderURL"]],
            }
            for data in hash_data
        ]
        answer = await station.call(
            "GetCertificateChainStatus", {"certificateStatusRequests": requests}
        )
        statuses = [] if answer is None else answer.get("certificateStatus", [])
        return len(statuses) == len(requests) and all(s["status"] == "Good" for s in statuses)
    status = await station.call("GetCertificateStatus", {"ocspRequestData": hash_data[0]})
    if status is None or status.get("status") != "Accepted":
        return False
    return _good(status.get("ocspResult", ""), chain[0], chain[1])


def _good(result: str, certificate: SharedCertificate, issuer: SharedCertificate) -> bool:
    """Whether an ocspResult says `certificate` is good, signed by its issuer."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509 import ocsp

    try:
        response = ocsp.load_der_ocsp_response(base64.b64decode(result, validate=True))
    except (binascii.Error, ValueError):
        return False
    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        return False
    if response.serial_number != certificate.certificate.serial_number:
        return False
    key = issuer.certificate.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        return False
    try:
        key.verify(response.signature, response.tbs_response_bytes, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return response.certificate_status == ocsp.OCSPCertStatus.GOOD
