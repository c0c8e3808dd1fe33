"""Block A, security: what the station tells a CSMS about how it connects.

SecurityCtrlr reports the security profile of the connection the station really opens (1:
HTTP Basic auth over ws://, 2: TLS over wss://), the organization of its certificates and how
many it holds (none: the station keeps no certificate store).  All are read-only facts.

TriggerMessage for a SignCertificate (A02, A03, M02: the station's, its V2G, both, or the
ISO 15118-20 V2G certificate) is Rejected, saying why: the station holds no key pair, so it has
no certificate signing request to send.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

from ...link import Answer
from ..config import StationConfig
from ..core import Block, StationCore, TriggerTarget, refused
from ..device_model import VariableSpec

__all__ = ["BLOCK"]


def _security_profile(station: Any) -> str:
    return str(station.security_profile)


def _variables(config: StationConfig) -> Iterator[VariableSpec]:
    security = "SecurityCtrlr"
    yield VariableSpec(
        security, "SecurityProfile", "integer", "", "ReadOnly", reader=_security_profile
    )
    yield VariableSpec(security, "OrganizationName", "string", config.vendor, "ReadOnly")
    yield VariableSpec(security, "CertificateEntries", "integer", "0", "ReadOnly")


def _no_key_pair(certificate: str, station: StationCore, target: TriggerTarget) -> Answer:
    return refused(
        "UnsupportedRequest",
        f"this station holds no key pair, so it has no signing request for a {certificate} "
        "to send (SecurityCtrlr.CertificateEntries is 0)",
    )


#: requestedMessage -> the certificate whose signing request it asks for.
_SIGN_TRIGGERS = {
    "SignChargingStationCertificate": "ChargingStationCertificate",
    "SignV2GCertificate": "V2GCertificate",
    "SignV2G20Certificate": "ISO 15118-20 V2GCertificate",
    "SignCombinedCertificate": "ChargingStationCertificate and V2GCertificate",
}

BLOCK: Block[None] = Block(
    letter="A",
    name="security",
    triggers={
        requested: functools.partial(_no_key_pair, certificate)
        for requested, certificate in _SIGN_TRIGGERS.items()
    },
    variables=_variables,
)
