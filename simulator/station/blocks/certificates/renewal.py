"""A02, A03, M02: the station asks the CSMS to sign a key pair of its own.

TriggerMessage SignChargingStationCertificate, SignV2GCertificate, SignV2G20Certificate (2.1)
or SignCombinedCertificate makes the station generate a key pair (ECDSA secp256r1) and send a
SignCertificate with a PKCS#10 request for it: its id as CN, SecurityCtrlr.OrganizationName as
O, and for a V2G certificate the domain component CPO (ISO 15118).  If no CertificateSigned
arrives within SecurityCtrlr.CertSigningWaitMinimum seconds, it sends the request again, up to
CertSigningRepeatTimes more times, doubling the wait each time (A02.FR.17-19); a CSMS that
answers Rejected ends the attempt.  A timer, not a loop that looks: the CertificateSigned
handler cancels the wait.

A station that holds a certificate of its own renews it by itself (A03): at
`RENEW_BEFORE_EXPIRY_S` before it expires, or half way through a shorter validity, again on
one timer per station that holds one.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import trio

from ....link import Answer
from ...core import StationCore, TriggerTarget
from .state import COMBINED, CertificateState, Renewal, now_utc, state_of

if TYPE_CHECKING:
    from .store import Installed

__all__ = ["SIGN_TRIGGERS", "schedule_renewal", "start_renewal"]

#: requestedMessage -> the certificate (CertificateSigningUseEnumType, or COMBINED) it asks for.
SIGN_TRIGGERS = {
    "SignChargingStationCertificate": "ChargingStationCertificate",
    "SignV2GCertificate": "V2GCertificate",
    "SignV2G20Certificate": "V2G20Certificate",
    "SignCombinedCertificate": COMBINED,
}
#: How long before its certificate expires a station asks for a new one (A03).
RENEW_BEFORE_EXPIRY_S = 30 * 86_400.0


def sign_trigger(use: str, station: StationCore, target: TriggerTarget) -> Answer:
    """TriggerMessage Sign*Certificate: Accepted, then the signing request goes out."""

    async def follow_up() -> None:
        await start_renewal(station, use, before_sync=True)

    return Answer({"status": "Accepted"}, then=follow_up)


async def start_renewal(station: StationCore, use: str, *, before_sync: bool = False) -> None:
    """Make a key pair and ask for it to be signed, repeating per the SecurityCtrlr; an
    earlier request for the same certificate is abandoned (its key with it)."""
    from ....pki import certificate_signing_request, new_private_key  # X.509 where used

    state = state_of(station)
    renewals = state.renewals
    if renewals is None:
        renewals = state.renewals = {}
    previous = renewals.pop(use, None)
    if previous is not None:
        previous.scope.cancel()
    state.request_ids += 1
    renewal = renewals[use] = Renewal(use, new_private_key(), state.request_ids)
    organization = station.device_model.get("SecurityCtrlr", "OrganizationName")
    csr = certificate_signing_request(
        renewal.key,
        station.id,
        organization,
        domain_component=None if use == "ChargingStationCertificate" else "CPO",
    ).decode()
    payload: dict[str, Any] = {"csr": csr}
    if use != COMBINED:
        payload["certificateType"] = use
    if station.config.ocpp_version != "2.0.1":
        payload["requestId"] = renewal.request_id
    wait_s = float(station.device_model.integer("SecurityCtrlr", "CertSigningWaitMinimum"))
    repeats = station.device_model.integer("SecurityCtrlr", "CertSigningRepeatTimes")
    with renewal.scope:
        for _ in range(repeats + 1):
            answer = await station.call("SignCertificate", payload, before_sync=before_sync)
            if answer is not None and answer.get("status") != "Accepted":
                break  # the CSMS will not sign it: nothing to wait for
            await station.clock.sleep(wait_s)
            wait_s *= 2
    if renewals.get(use) is renewal:
        del renewals[use]  # given up (or refused): the key is forgotten


def schedule_renewal(station: StationCore, state: CertificateState) -> None:
    """(Re)arm the timer that renews the station's own certificate before it expires."""
    if state.renewal_timer is not None:
        state.renewal_timer.cancel()
        state.renewal_timer = None
    own = state.own("ChargingStationCertificate")
    if own is None:
        return
    delay_s = _renew_in_s(station, own)
    if not math.isfinite(delay_s):
        return
    scope = state.renewal_timer = trio.CancelScope()

    async def renew_when_due() -> None:
        with scope:
            await station.clock.sleep(delay_s)
            if state.renewal_timer is scope:
                state.renewal_timer = None
            await start_renewal(station, "ChargingStationCertificate")

    station.spawn(renew_when_due)


def _renew_in_s(station: StationCore, own: Installed) -> float:
    """Seconds from now until the certificate should be renewed: RENEW_BEFORE_EXPIRY_S before
    it expires, or half way through a validity shorter than twice that."""
    certificate = own.certificate.certificate
    start = certificate.not_valid_before_utc
    end = certificate.not_valid_after_utc
    validity_s = (end - start).total_seconds()
    margin_s = min(RENEW_BEFORE_EXPIRY_S, validity_s / 2)
    return max(0.0, (end - now_utc(station)).total_seconds() - margin_s)
