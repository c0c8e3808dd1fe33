"""The handshake decisions, without a socket: station id, subprotocol, Basic auth."""

from __future__ import annotations

import base64

import pytest

from fleetsim.simulator.csms.handshake import (
    basic_auth_credentials,
    certificate_common_name,
    choose_version,
    is_authorized,
    station_id_from_path,
)


@pytest.mark.parametrize(
    ("path", "station_id"),
    [
        ("/ocpp/CP0001", "CP0001"),
        ("/CP0001", "CP0001"),
        ("/a/b/c/CP%2F01%20x", "CP/01 x"),
        ("/ocpp/CP0001?token=1", "CP0001"),
        ("/ocpp/CP0001/", "CP0001"),
        ("/ocpp/CP%2F01/", "CP/01"),
        ("/ocpp?id=CP0001", "CP0001"),
        ("/ocpp/?id=CP%200001&x=1", "CP 0001"),
        ("/ocpp?stationId=CP0001", "CP0001"),
        ("/ocpp?id=", None),
        ("/ocpp/", None),
        ("/ocpp//", None),
        ("/", None),
        ("/ocpp/%FF", None),
        ("/ocpp?id=%FF", None),
    ],
)
def test_the_station_id_is_the_last_path_segment_url_decoded(
    path: str, station_id: str | None
) -> None:
    assert station_id_from_path(path) == station_id


@pytest.mark.parametrize(
    ("offered", "version"),
    [
        (["ocpp2.1"], "2.1"),
        (["ocpp2.0.1"], "2.0.1"),
        (["ocpp2.0.1", "ocpp2.1"], "2.1"),
        (["ocpp1.6", "ocpp2.0.1"], "2.0.1"),
        (["ocpp1.6"], None),
        ([], None),
    ],
)
def test_the_csms_prefers_ocpp_2_1_whatever_the_order_offered(
    offered: list[str], version: str | None
) -> None:
    assert choose_version(offered) == version


def basic(user: str, password: str) -> list[tuple[bytes, bytes]]:
    token = base64.b64encode(f"{user}:{password}".encode())
    return [(b"host", b"x"), (b"authorization", b"Basic " + token)]


def test_basic_auth_credentials_are_read_from_the_header() -> None:
    assert basic_auth_credentials(basic("CP1", "s3cret:with:colons")) == (
        "CP1",
        "s3cret:with:colons",
    )
    assert basic_auth_credentials([]) is None
    assert basic_auth_credentials([(b"Authorization", b"Bearer abc")]) is None
    assert basic_auth_credentials([(b"Authorization", b"Basic !!notbase64")]) is None


@pytest.mark.parametrize(
    ("station_id", "headers", "passwords", "authorized"),
    [
        ("CP1", [], None, True),
        ("CP1", basic("CP1", "pw"), "pw", True),
        ("CP1", basic("CP1", "wrong"), "pw", False),
        ("CP1", [], "pw", False),
        ("CP1", basic("CP2", "pw"), "pw", False),  # the user must be the station id
        ("CP1", basic("CP1", "one"), {"CP1": "one", "CP2": "two"}, True),
        ("CP2", basic("CP2", "one"), {"CP1": "one", "CP2": "two"}, False),
        ("CP3", basic("CP3", "one"), {"CP1": "one"}, False),  # unknown station
    ],
)
def test_basic_auth_checks_user_and_password(
    station_id: str,
    headers: list[tuple[bytes, bytes]],
    passwords: str | dict[str, str] | None,
    authorized: bool,
) -> None:
    assert is_authorized(station_id, headers, passwords) is authorized


def test_the_common_name_is_read_from_the_peer_certificate() -> None:
    certificate = {
        "subject": ((("organizationName", "fleetsim"),), (("commonName", "CP0001"),)),
    }
    assert certificate_common_name(certificate) == "CP0001"
    assert certificate_common_name({"subject": ((("organizationName", "x"),),)}) is None
    assert certificate_common_name(None) is None
    assert certificate_common_name({}) is None
