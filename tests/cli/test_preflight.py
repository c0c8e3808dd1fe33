"""`fleetsim run` refuses, before it starts, a fleet this machine cannot run: exit code 2 and a
message that blames this machine, not the CSMS, and says what to change."""

from __future__ import annotations

import errno
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fleetsim.cli.exit_codes import ExitCode
from fleetsim.cli.main import app
from fleetsim.simulator import limits
from fleetsim.simulator.limits import MachineLimits

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _in_repository_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def _absent_address() -> str:
    for candidate in ("10.99.99.99", "192.0.2.199", "198.51.100.99", "203.0.113.99"):
        with socket.socket() as probe:
            try:
                probe.bind((candidate, 0))
            except OSError as exc:
                if exc.errno == errno.EADDRNOTAVAIL:
                    return candidate
    pytest.skip("this machine has every candidate address")


def test_a_source_address_this_machine_lacks_exits_2_naming_it() -> None:
    absent = _absent_address()
    result = CliRunner().invoke(
        app,
        [
            "run",
            "scenarios/quickstart.yaml",
            "--stations",
            "2",
            "--duration",
            "30",
            "--no-progress",
            "--source-address",
            f"127.0.0.2,{absent}",
        ],
    )
    assert result.exit_code == ExitCode.BAD_SCENARIO, result.output
    assert result.output.startswith(
        f"--source-address: {absent} is not an address of this machine (bind failed: "
        "EADDRNOTAVAIL); list them with `ip -brief address`, or add it"
    )
    assert "CSMS accepted none" not in result.output  # the run never started


def test_a_fleet_over_every_limit_exits_2_with_all_of_them_and_one_remedy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    machine = MachineLimits(
        open_files=20_000, ports_per_address=28_232, memory_available_bytes=2 * 1024**3
    )
    monkeypatch.setattr(limits.MachineLimits, "of_this_machine", classmethod(lambda cls: machine))
    result = CliRunner().invoke(
        app,
        ["run", "scenarios/quickstart.yaml", "--stations", "60000", "--no-progress"],
    )
    assert result.exit_code == ExitCode.BAD_SCENARIO, result.output
    assert result.output.splitlines() == [
        "60,000 stations do not fit this machine as asked; they exceed 3 limits:",
        "  open files: the process would need 120,064 (both ends of every connection, as the "
        "embedded CSMS runs in that process), but a process may open 20,000 (the hard limit, "
        "`ulimit -Hn`, which only root raises)",
        "  local ports: every station needs one towards the CSMS, 60,000 in all, but 1 source "
        "address has 28,232 (net.ipv4.ip_local_port_range)",
        "  memory: about 4,787 MiB (40 KiB per station and as much for its CSMS connection, "
        "100 MiB per process), but the machine has 2,048 MiB available (MemAvailable in "
        "/proc/meminfo)",
        # 2 workers and 2 embedded-CSMS processes of 100 MiB leave 1,648 MiB: 21,094 stations
        # of 80 KiB; 60,000 over 3 machines.
        "Memory cannot be met on this machine, whatever --workers and --source-address: at "
        "most 21,094 stations fit in its 2,048 MiB. Run the fleet on 3 machines like this one, "
        "machine I with --shard I/3 (I from 0 to 2, about 20,000 stations each), each with "
        "--workers 2.",
    ]
