"""`csms.security` and URL templates as `fleetsim validate` checks them: each mistake names the
field and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from fleetsim.cli.exit_codes import ExitCode
from fleetsim.cli.main import app


def _validate(tmp_path: Path, csms: str) -> tuple[int, str]:
    path = tmp_path / "s.yaml"
    path.write_text(f"name: s\nstations: {{count: 1}}\ncsms: {csms}\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", str(path)])
    return result.exit_code, result.stdout + result.stderr


@pytest.mark.parametrize(
    "csms",
    [
        "{url: 'wss://h/ocpp/{station_id}/'}",
        "{url: 'wss://h/ocpp?id={station_id}'}",
        "{url: 'wss://h/ocpp', security: {profile: 3, client_cert: 'c/{station_id}.pem'}}",
        "{url: 'wss://h/ocpp', password: pw, security: {profile: 2}}",
        "{security: {profile: 3}}",
    ],
)
def test_good_settings_pass(tmp_path: Path, csms: str) -> None:
    code, output = _validate(tmp_path, csms)
    assert code == ExitCode.OK, output


@pytest.mark.parametrize(
    ("csms", "line"),
    [
        (
            "{url: 'ws://h/ocpp/{station}'}",
            "s.yaml:3 csms.url: 'ws://h/ocpp/{station}': {station} is not a placeholder fleetsim "
            "fills in; write {station_id} where the station id goes",
        ),
        (
            "{url: 'ws://{station_id}.h/ocpp'}",
            "s.yaml:3 csms.url: 'ws://{station_id}.h/ocpp' puts {station_id} in the host; put it "
            "in the path or the query",
        ),
        (
            "{url: 'ws://h/ocpp', security: {profile: 2}}",
            "s.yaml:3 csms.security.profile: security profile 2 runs over TLS, but the URL is "
            "ws://; use a wss:// URL, or profile 1",
        ),
        (
            "{url: 'wss://h/ocpp', security: {profile: 2, client_cert: c.pem}}",
            "s.yaml:3 csms.security.client_cert: security profile 2 presents no client "
            "certificate; set profile: 3, or remove client_cert",
        ),
        (
            "{url: 'wss://h/ocpp', security: {client_key: k.pem}}",
            "s.yaml:3 csms.security.client_cert: client_key needs the certificate it belongs "
            "to; give client_cert too",
        ),
        (
            "{url: 'wss://h/ocpp', security: {profile: 3}}",
            "s.yaml:3 csms.security.client_cert: security profile 3 needs each station's client "
            "certificate; give client_cert (and client_key), e.g. certs/{station_id}.pem",
        ),
        (
            "{url: 'ws://h/ocpp', security: {ca_file: ca.pem}}",
            "s.yaml:3 csms.security.ca_file: a ws:// URL uses no TLS, so no CA file; use wss:// "
            "or remove ca_file",
        ),
        (
            "{security: {profile: 4}}",
            "s.yaml:3 csms.security.profile: Input should be 1, 2 or 3",
        ),
    ],
)
def test_each_mistake_names_the_field_and_the_fix(tmp_path: Path, csms: str, line: str) -> None:
    code, output = _validate(tmp_path, csms)
    assert code == ExitCode.BAD_SCENARIO
    assert line in output, output
