"""A station's certificate state: its store, and the signing requests it waits on."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import trio

from ...core import Block
from .store import Installed

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

    from ...core import StationCore

__all__ = ["CertificateState", "Renewal", "now_utc", "peek_state", "state_of"]

#: SecurityCtrlr.CertificateEntries' maxLimit: the certificates a station's store holds at
#: most (each root, and each of its own chains, counts one).
MAX_CERTIFICATE_ENTRIES = 24
#: The CertificateSigningUseEnumType a SignCombinedCertificate's request is for: one key and
#: one certificate serving both the CSMS connection and ISO 15118.
COMBINED = "Combined"


@dataclass(slots=True, eq=False)
class Renewal:
    """A signing request the station sent and waits for the CertificateSigned of."""

    #: ChargingStationCertificate, V2GCertificate, V2G20Certificate or COMBINED.
    use: str
    key: ec.EllipticCurvePrivateKey = field(repr=False)
    request_id: int
    #: Cancelled when the certificate arrives: ends the waits between repetitions.
    scope: trio.CancelScope = field(default_factory=trio.CancelScope, repr=False)


@dataclass(slots=True)
class CertificateState:
    """Per station that ever received or asked for a certificate."""

    installed: list[Installed] = field(default_factory=list)
    #: Signing requests under way, by use; None on a station that never sent one.
    renewals: dict[str, Renewal] | None = None
    request_ids: int = 0
    #: Cancels the wait before the station renews its own certificate (A03).
    renewal_timer: trio.CancelScope | None = field(default=None, repr=False)

    def own(self, use: str) -> Installed | None:
        for entry in self.installed:
            if entry.use == use:
                return entry
        return None


#: The key of the block's per-station state: the same name as the assembled block.
STATE_KEY: Block[CertificateState] = Block(
    letter="M", name="certificates", new_state=CertificateState
)


def state_of(station: StationCore) -> CertificateState:
    """The station's certificates, made on first use."""
    return station.block_state(STATE_KEY)


def peek_state(station: StationCore) -> CertificateState | None:
    """The station's certificates if it ever held any (reading creates nothing)."""
    return station.peek_block_state(STATE_KEY)


def now_utc(station: StationCore) -> datetime.datetime:
    """The station's present time, as certificate validity is checked against."""
    return datetime.datetime.fromtimestamp(station.clock.epoch_s(), datetime.UTC)
