"""M01-M05 and A02/A03's last step: the CSMS installs, lists and deletes certificates, and
sends the certificates the station asked to have signed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ....link import Answer
from ...core import ClientIdentity, SecurityEventOccurred, StationCore, refused
from .state import (
    COMBINED,
    MAX_CERTIFICATE_ENTRIES,
    CertificateState,
    Renewal,
    now_utc,
    peek_state,
    state_of,
)
from .store import (
    CertificateError,
    Installed,
    SharedCertificate,
    hash_data_matches,
    parse_pem_chain,
)

__all__ = [
    "certificate_signed",
    "delete_certificate",
    "get_installed_certificate_ids",
    "install_certificate",
]

#: Entries GetInstalledCertificateIds reports, and under which certificateType.
_LISTED = frozenset(
    {
        "V2GRootCertificate",
        "MORootCertificate",
        "CSMSRootCertificate",
        "V2GCertificateChain",
        "ManufacturerRootCertificate",
        "OEMRootCertificate",
    }
)
_ACCEPTED: Mapping[str, Any] = {"status": "Accepted"}


def _issuer_in(
    certificate: SharedCertificate, chain: tuple[SharedCertificate, ...], store: list[Installed]
) -> SharedCertificate | None:
    if certificate.self_signed:
        return certificate
    for candidate in chain:
        if candidate.subject_der == certificate.issuer_der:
            return candidate
    for entry in store:
        for candidate in entry.chain:
            if candidate.subject_der == certificate.issuer_der:
                return candidate
    return None


def _check_chain(
    station: StationCore, chain: tuple[SharedCertificate, ...], store: list[Installed]
) -> None:
    """Raise CertificateError unless every certificate is valid now and signed by its issuer,
    which the chain or the store holds."""
    now = now_utc(station)
    for number, certificate in enumerate(chain, start=1):
        if not certificate.valid_at(now):
            after = certificate.certificate.not_valid_after_utc
            raise CertificateError(
                f"certificate {number} is not valid now (valid "
                f"{certificate.certificate.not_valid_before_utc:%Y-%m-%d} to {after:%Y-%m-%d})"
            )
        issuer = _issuer_in(certificate, chain, store)
        if issuer is None:
            raise CertificateError(
                f"the issuer of certificate {number} is neither in the text nor installed"
            )
        if not issuer.issued(certificate):
            raise CertificateError(f"the signature of certificate {number} does not verify")


# -- InstallCertificate (M05) --------------------------------------------------------------------


def install_certificate(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    use = payload["certificateType"]
    state = peek_state(station)
    store = state.installed if state is not None else []
    try:
        chain = parse_pem_chain(payload["certificate"])
        _check_chain(station, chain, store)
    except CertificateError as exc:
        return refused("InvalidCertificate", f"{use} refused: {exc}")
    from cryptography import x509  # X.509 only where it is used

    root = chain[0]
    try:
        is_ca = root.certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        return refused("InvalidCertificate", f"{use} refused: the certificate is no CA certificate")
    for entry in store:
        if entry.use == use and entry.certificate is root:
            return Answer(_ACCEPTED)  # installed already: the store holds it once
    if len(store) >= MAX_CERTIFICATE_ENTRIES:
        return refused(
            "OutOfStorage",
            f"the station holds {len(store)} certificates, its most "
            "(SecurityCtrlr.CertificateEntries maxLimit); delete one first",
            status="Failed",
        )
    state_of(station).installed.append(Installed(use, chain))
    return Answer(_ACCEPTED)


# -- GetInstalledCertificateIds (M03) ------------------------------------------------------------


def get_installed_certificate_ids(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    wanted = set(payload.get("certificateType") or _LISTED)
    state = peek_state(station)
    found: list[dict[str, Any]] = []
    for entry in state.installed if state is not None else ():
        if entry.use not in wanted:
            continue
        store = state.installed if state is not None else []
        item: dict[str, Any] = {
            "certificateType": entry.use,
            "certificateHashData": entry.certificate.hash_data(entry.issuer_of(0, store)),
        }
        children = [
            certificate.hash_data(entry.issuer_of(position, store))
            for position, certificate in enumerate(entry.chain[1:], start=1)
            if not certificate.self_signed
        ][:4]
        if children:
            item["childCertificateHashData"] = children
        found.append(item)
    if not found:
        return Answer({"status": "NotFound"})
    return Answer({"status": "Accepted", "certificateHashDataChain": found})


# -- DeleteCertificate (M04) ---------------------------------------------------------------------


def delete_certificate(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    wanted = payload["certificateHashData"]
    state = peek_state(station)
    if state is not None:
        for entry in state.installed:
            if not hash_data_matches(
                wanted, entry.certificate, entry.issuer_of(0, state.installed)
            ):
                continue
            why = _in_use(station, state.installed, entry)
            if why:
                return refused("NotSupported", why, status="Failed")
            state.installed.remove(entry)
            return Answer(_ACCEPTED)
    return Answer({"status": "NotFound"})


def _in_use(station: StationCore, store: list[Installed], entry: Installed) -> str:
    """Why `entry` may not be deleted, or "" when it may."""
    if entry.use == "ChargingStationCertificate":
        return (
            "the station's own ChargingStationCertificate is not deleted over OCPP; "
            "replace it with a new one (TriggerMessage SignChargingStationCertificate)"
        )
    if entry.use == "CSMSRootCertificate" and station.security_profile >= 2:
        roots = sum(1 for other in store if other.use == "CSMSRootCertificate")
        if roots == 1:
            return (
                "this is the last CSMSRootCertificate, the one the station verifies the CSMS's "
                "TLS certificate with; install its successor first"
            )
    return ""


# -- CertificateSigned (A02, A03, M02) -----------------------------------------------------------


def certificate_signed(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    from ....pki import public_key_der  # X.509 only where it is used

    use = payload.get("certificateType", "ChargingStationCertificate")
    state = peek_state(station)
    renewal = _renewal_for(state.renewals if state is not None else None, use, payload)
    text = payload["certificateChain"]
    limit = station.device_model.integer("SecurityCtrlr", "MaxCertificateChainSize")
    if renewal is None:
        return _invalid(
            station,
            use,
            "NoSigningRequest",
            f"the station sent no signing request for a {use} it still waits for",
        )
    if len(text) > limit:
        return _invalid(
            station,
            use,
            "TooLarge",
            f"the chain has {len(text)} characters, more than "
            f"SecurityCtrlr.MaxCertificateChainSize ({limit})",
        )
    assert state is not None
    try:
        chain = parse_pem_chain(text)
        if public_key_der(chain[0].certificate.public_key()) != public_key_der(renewal.key):
            raise CertificateError("the certificate is not for the key of the signing request")
        _check_chain(station, chain, state.installed)
    except (CertificateError, TypeError) as exc:
        return _invalid(station, use, "InvalidCertificate", str(exc))
    _install_own(station, state, renewal, chain)
    return Answer(_ACCEPTED)


def _renewal_for(
    renewals: dict[str, Renewal] | None, use: str, payload: Mapping[str, Any]
) -> Renewal | None:
    if not renewals:
        return None
    request_id = payload.get("requestId")
    if request_id is not None:
        for renewal in renewals.values():
            if renewal.request_id == request_id:
                return renewal
        return None
    found = renewals.get(use)
    if found is None and use == "ChargingStationCertificate":
        found = renewals.get(COMBINED)
    return found


def _invalid(station: StationCore, use: str, reason: str, why: str) -> Answer:
    """Refuse a CertificateSigned; a refused station certificate is a security event (A02)."""
    if use == "ChargingStationCertificate":
        station.post(
            SecurityEventOccurred(
                "InvalidChargingStationCertificate", station.clock.timestamp(), why[:255]
            )
        )
    return refused(reason, f"{use} refused: {why}")


def _install_own(
    station: StationCore,
    state: CertificateState,
    renewal: Renewal,
    chain: tuple[SharedCertificate, ...],
) -> None:
    """Install a signed certificate of the station's own, in place of the one it renews."""
    from ....pki import private_key_pem

    key_pem = private_key_pem(renewal.key)
    uses = {
        "ChargingStationCertificate": (("ChargingStationCertificate", None),),
        "V2GCertificate": (("V2GCertificateChain", "V2GCertificate"),),
        "V2G20Certificate": (("V2GCertificateChain", "V2G20Certificate"),),
        COMBINED: (
            ("ChargingStationCertificate", None),
            ("V2GCertificateChain", "V2GCertificate"),
        ),
    }[renewal.use]
    for use, signing_use in uses:
        state.installed[:] = [
            entry
            for entry in state.installed
            if not (entry.use == use and entry.signing_use == signing_use)
        ]
        state.installed.append(Installed(use, chain, key_pem, signing_use))
        if use == "ChargingStationCertificate":
            chain_pem = "".join(certificate.pem for certificate in chain).encode()
            station.client_identity = ClientIdentity(chain_pem, key_pem)
    renewal.scope.cancel()
    if state.renewals is not None and state.renewals.get(renewal.use) is renewal:
        del state.renewals[renewal.use]
    from .renewal import schedule_renewal

    schedule_renewal(station, state)
