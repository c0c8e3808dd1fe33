"""Block M (and A02/A03), certificates: the station's certificate store and its own keys.

The CSMS installs root certificates of every use OCPP names (InstallCertificate, M05), lists
them by their hash data, optionally by use (GetInstalledCertificateIds, M03) and deletes them
(DeleteCertificate, M04): never the station's own certificate, nor, on a TLS connection, the last
CSMS root, the one the station verifies the CSMS with.  The station asks for its own
certificates to be signed (TriggerMessage Sign*Certificate, and by itself before its
certificate expires: A02, A03, M02) and installs what CertificateSigned brings once the chain
verifies and is for its key; a new ChargingStationCertificate becomes the TLS client identity
of the next connection (`StationCore.client_identity`).

Whether the store holds a valid CSMSRootCertificate or a ChargingStationCertificate of the
station's own is what a higher security profile needs (A05.FR.02/03, `holds_certificate`);
block B asks before it accepts a network profile with one.

SecurityCtrlr.CertificateEntries reports how many certificates the store holds (its maxLimit
is the most it takes), MaxCertificateChainSize the longest chain CertificateSigned may bring,
CertSigningWaitMinimum and CertSigningRepeatTimes how a signing request is repeated.

A Plug & Charge EV (C07) gets its contract certificate through the station
(Get15118EVCertificate), which checks it with the CSMS (GetCertificateStatus, OCSP) before it
authorizes the contract's eMAID with the certificate's hash data (`contracts`).

The package: `store` (shared parsed certificates, hash data), `state` (per station),
`handlers` (the CSMS's actions), `renewal` (signing requests and their timers), `contracts`
(Plug & Charge).  A station
that never sees a certificate holds no state at all; one that does holds its entries and
shares the parsed certificates with every other station that holds them.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

from ...config import StationConfig
from ...core import Block, StationCore
from ...device_model import VariableSpec
from .contracts import plug_and_charge
from .handlers import (
    certificate_signed,
    delete_certificate,
    get_installed_certificate_ids,
    install_certificate,
)
from .renewal import SIGN_TRIGGERS, sign_trigger
from .state import MAX_CERTIFICATE_ENTRIES, CertificateState, now_utc, peek_state

__all__ = ["BLOCK", "CertificateState"]


def _certificate_entries(station: Any) -> str:
    state = peek_state(station)
    return str(0 if state is None else len(state.installed))


def holds_certificate(station: StationCore, use: str) -> bool:
    """Whether the store holds a certificate of `use` valid now: a CSMSRootCertificate, or
    the station's own ChargingStationCertificate (with its key, from CertificateSigned)."""
    state = peek_state(station)
    if state is None:
        return False
    now = now_utc(station)
    return any(
        entry.use == use
        and (use != "ChargingStationCertificate" or entry.key_pem is not None)
        and all(certificate.valid_at(now) for certificate in entry.chain)
        for entry in state.installed
    )


def _variables(config: StationConfig) -> Iterator[VariableSpec]:
    security = "SecurityCtrlr"
    yield VariableSpec(
        security,
        "CertificateEntries",
        "integer",
        "0",
        "ReadOnly",
        reader=_certificate_entries,
        max_limit=MAX_CERTIFICATE_ENTRIES,
    )
    yield VariableSpec(
        security, "MaxCertificateChainSize", "integer", "10000", "ReadOnly", configurable=True
    )
    yield VariableSpec(security, "CertSigningWaitMinimum", "integer", "60", unit="s", min_limit=1)
    yield VariableSpec(security, "CertSigningRepeatTimes", "integer", "3", min_limit=0)


BLOCK: Block[CertificateState] = Block(
    letter="M",
    name="certificates",
    handlers={
        "InstallCertificate": install_certificate,
        "GetInstalledCertificateIds": get_installed_certificate_ids,
        "DeleteCertificate": delete_certificate,
        "CertificateSigned": certificate_signed,
    },
    triggers={
        requested: functools.partial(sign_trigger, use) for requested, use in SIGN_TRIGGERS.items()
    },
    variables=_variables,
    new_state=CertificateState,
    plug_and_charge=plug_and_charge,
    holds_certificate=holds_certificate,
)
