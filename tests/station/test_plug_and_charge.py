"""C07 Plug & Charge: an ISO 15118 EV without a contract certificate gets one through the
station, the station checks it with the CSMS (OCSP) and authorizes its eMAID with the
certificate's hash data before the transaction runs for it."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import pytest
import trio
from cryptography.hazmat.primitives import serialization
from trio.testing import MockClock

from fleetsim.simulator.csms import CsmsConfig
from fleetsim.simulator.ocpp import OcppVersion
from tests.helpers import STATION_ID, TEST_EV, busy_site, station_on_memory_link

ISO_EV = {**TEST_EV, "iso15118_20": True}
#: How the station asks whether the contract is revoked, by version.
STATUS_ACTION = {"2.1": "GetCertificateChainStatus", "2.0.1": "GetCertificateStatus"}


def pnc_site(share: float = 1.0) -> dict[str, Any]:
    scenario = busy_site(dwell_s=1800, soc_start=0.2, target_soc=0.8)
    scenario["ev_fleet"] = {
        **scenario["ev_fleet"],
        "extra_models": {"test-ev": ISO_EV},
        "iso15118_share": 1.0,
        "plug_and_charge_share": share,
    }
    return scenario


def _is_emaid(payload: Mapping[str, Any]) -> bool:
    return payload.get("idToken", {}).get("type") == "eMAID"


@pytest.mark.parametrize("version", ["2.1", "2.0.1"])
async def test_a_plug_and_charge_ev_gets_checks_and_authorizes_its_contract(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(scenario=pnc_site(), ocpp_version=version) as (_, csms):
        with trio.fail_after(4 * 3600):
            install = await csms.wait_for_message(STATION_ID, "Get15118EVCertificate")
            status = await csms.wait_for_message(STATION_ID, STATUS_ACTION[version])
            authorize = await csms.wait_for_message(STATION_ID, "Authorize", _is_emaid)
            started = await csms.wait_for_message(
                STATION_ID, "TransactionEvent", lambda p: _is_emaid(p) and "idToken" in p
            )
        messages = [m.action for m in csms.station(STATION_ID).messages_since(0)]
        order = [
            messages.index(action)
            for action in ("Get15118EVCertificate", STATUS_ACTION[version], "Authorize")
        ]
        assert order == sorted(order)
        assert install["action"] == "Install"
        authority = csms.certificates.contract_authority
        key_bits = authority.certificate.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        [contract] = authorize["iso15118CertificateHashData"]
        assert contract["issuerKeyHash"] == hashlib.sha256(key_bits).hexdigest()
        assert (
            contract["issuerNameHash"]
            == hashlib.sha256(authority.certificate.subject.public_bytes()).hexdigest()
        )
        if version == "2.0.1":
            assert status["ocspRequestData"] == contract
        else:
            [asked] = status["certificateStatusRequests"]
            without_url = {k: v for k, v in contract.items() if k != "responderURL"}
            assert asked["certificateHashData"] == without_url
        assert started["idToken"] == authorize["idToken"]


def _revoked(station_id: str, payload: Mapping[str, Any]) -> Mapping[str, Any]:
    return {"status": "Failed", "statusInfo": {"reasonCode": "NoOCSP", "additionalInfo": "down"}}


def _chain_revoked(station_id: str, payload: Mapping[str, Any]) -> Mapping[str, Any]:
    return {
        "certificateStatus": [
            {**request, "status": "Revoked", "nextUpdate": "2026-01-16T12:00:00Z"}
            for request in (
                {"certificateHashData": r["certificateHashData"], "source": r["source"]}
                for r in payload["certificateStatusRequests"]
            )
        ]
    }


@pytest.mark.parametrize("version", ["2.1", "2.0.1"])
async def test_without_a_good_status_the_contract_is_not_used(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    config = CsmsConfig(
        response_overrides={
            "GetCertificateStatus": _revoked,
            "GetCertificateChainStatus": _chain_revoked,
        }
    )
    async with station_on_memory_link(
        csms_config=config, scenario=pnc_site(), ocpp_version=version
    ) as (_, csms):
        with trio.fail_after(4 * 3600):
            await csms.wait_for_message(STATION_ID, STATUS_ACTION[version])
        with trio.move_on_after(1800):
            await csms.wait_for_message(STATION_ID, "Authorize", _is_emaid)
            pytest.fail("the contract was authorized without a good OCSP status")
        started = [
            m.payload
            for m in csms.station(STATION_ID).messages_since(0)
            if m.action == "TransactionEvent" and _is_emaid(m.payload)
        ]
        assert not started
