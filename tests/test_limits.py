"""The pre-flight check: a fleet the machine cannot hold is refused at once, with a remedy."""

from __future__ import annotations

import resource
from pathlib import Path

import pytest

from simulator.limits import PreflightError, check_fleet_fits, ephemeral_port_count


def test_the_soft_open_file_limit_is_raised_to_the_hard_one() -> None:
    check_fleet_fits(10, embedded_csms_sockets=False)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert soft == hard or hard == resource.RLIM_INFINITY


def test_a_fleet_beyond_the_open_file_limit_is_refused_with_a_remedy() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    stations = hard  # twice the sockets with the embedded CSMS in the process
    with pytest.raises(PreflightError) as error:
        check_fleet_fits(stations, embedded_csms_sockets=True)
    message = str(error.value)
    assert f"{stations} stations need about {2 * stations + 64} open files" in message
    assert "--shard I/N" in message


def test_the_ephemeral_port_range_is_read_from_the_kernel(tmp_path: Path) -> None:
    ports = tmp_path / "ip_local_port_range"
    ports.write_text("32768\t60999\n")
    assert ephemeral_port_count(ports) == 28_232
    assert ephemeral_port_count(tmp_path / "missing") is None
