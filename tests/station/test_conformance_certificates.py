"""Conformance rows of block M (and the last step of A02/A03): InstallCertificate,
GetInstalledCertificateIds, DeleteCertificate and CertificateSigned in the states that change
their answer, with the store read back over OCPP and the TLS identity checked after a signed
certificate."""

from __future__ import annotations

import pytest
from cryptography import x509
from trio.testing import MockClock

from fleetsim.simulator.ocpp import OcppVersion
from tests.helpers import STATION_ID
from tests.station.certificate_steps import (
    SILENT_CA,
    TEST_ROOT_HASH_DATA,
    TEST_ROOT_PEM,
    foreign_certificate,
    root_installed,
    signed_certificate,
)
from tests.station.conformance import ONLY_21, Expect, Outcome, Row, after, cases, request, run_row

ROOT_LISTED = [
    {"certificateType": "CSMSRootCertificate", "certificateHashData": TEST_ROOT_HASH_DATA}
]


async def root_is_listed(outcome: Outcome) -> None:
    answer = await outcome.csms.call(STATION_ID, "GetInstalledCertificateIds", {})
    assert answer.get("certificateHashDataChain") == [
        {**ROOT_LISTED[0], "certificateType": outcome.request["certificateType"]}
    ], answer


async def nothing_is_listed(outcome: Outcome) -> None:
    answer = await outcome.csms.call(STATION_ID, "GetInstalledCertificateIds", {})
    assert answer == {"status": "NotFound"}, answer


async def identity_is_the_signed_chain(outcome: Outcome) -> None:
    identity = outcome.station.client_identity
    assert identity is not None
    sent = x509.load_pem_x509_certificates(outcome.request["certificateChain"].encode())
    assert x509.load_pem_x509_certificates(identity.chain_pem) == sent


async def identity_unchanged(outcome: Outcome) -> None:
    assert outcome.station.client_identity is None


def invalid_certificate_event() -> Expect:
    return Expect(
        "SecurityEventNotification",
        "InvalidChargingStationCertificate",
        lambda payload: payload["type"] == "InvalidChargingStationCertificate",
    )


ROWS = [
    Row(
        "InstallCertificate",
        "no certificate installed",
        request({"certificateType": "CSMSRootCertificate", "certificate": TEST_ROOT_PEM}),
        "Accepted",
        then=root_is_listed,
    ),
    Row(
        "InstallCertificate",
        "an OEM root (2.1)",
        request({"certificateType": "OEMRootCertificate", "certificate": TEST_ROOT_PEM}),
        "Accepted",
        then=root_is_listed,
        versions=ONLY_21,
    ),
    Row(
        "InstallCertificate",
        "text that is no certificate",
        request({"certificateType": "V2GRootCertificate", "certificate": "not a certificate"}),
        "Rejected",
        reason="InvalidCertificate",
        then=nothing_is_listed,
    ),
    Row(
        "GetInstalledCertificateIds",
        "none installed",
        request({}),
        "NotFound",
    ),
    Row(
        "GetInstalledCertificateIds",
        "a CSMS root installed",
        after(root_installed, {"certificateType": ["CSMSRootCertificate"]}),
        "Accepted",
        answer={"certificateHashDataChain": ROOT_LISTED},
    ),
    Row(
        "GetInstalledCertificateIds",
        "a CSMS root installed, V2G roots asked for",
        after(root_installed, {"certificateType": ["V2GRootCertificate"]}),
        "NotFound",
    ),
    Row(
        "DeleteCertificate",
        "the root installed",
        after(root_installed, {"certificateHashData": TEST_ROOT_HASH_DATA}),
        "Accepted",
        then=nothing_is_listed,
    ),
    Row(
        "DeleteCertificate",
        "none installed",
        request({"certificateHashData": TEST_ROOT_HASH_DATA}),
        "NotFound",
    ),
    Row(
        "CertificateSigned",
        "a signing request pending",
        signed_certificate,
        "Accepted",
        then=identity_is_the_signed_chain,
        csms_config=SILENT_CA,
    ),
    Row(
        "CertificateSigned",
        "a certificate for another key",
        foreign_certificate,
        "Rejected",
        reason="InvalidCertificate",
        follow_ups=(invalid_certificate_event(),),
        then=identity_unchanged,
        csms_config=SILENT_CA,
    ),
    Row(
        "CertificateSigned",
        "no signing request",
        request({"certificateChain": TEST_ROOT_PEM}),
        "Rejected",
        reason="NoSigningRequest",
        follow_ups=(invalid_certificate_event(),),
        then=identity_unchanged,
    ),
]


@pytest.mark.parametrize(("row", "version"), cases(ROWS))
async def test_action_in_state(autojump_clock: MockClock, row: Row, version: OcppVersion) -> None:
    await run_row(row, version)
