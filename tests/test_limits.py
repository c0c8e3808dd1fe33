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


def test_a_fleet_beyond_the_available_memory_is_refused_with_a_remedy(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:  4096000 kB\nMemFree:  100000 kB\nMemAvailable:  409600 kB\n")
    check_fleet_fits(100, embedded_csms_sockets=False, meminfo=meminfo)
    with pytest.raises(PreflightError) as error:
        # four processes of 100 MiB each and 2,000 stations of 40 KiB: 478 MiB
        check_fleet_fits(2_000, embedded_csms_sockets=False, processes=4, meminfo=meminfo)
    message = str(error.value)
    assert "2000 stations need about 478 MiB of memory" in message
    assert "400 MiB available" in message
    assert "--shard I/N" in message


def test_unreadable_meminfo_skips_the_memory_check(tmp_path: Path) -> None:
    check_fleet_fits(1_000, embedded_csms_sockets=False, meminfo=tmp_path / "missing")
