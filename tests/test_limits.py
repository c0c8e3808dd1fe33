"""The pre-flight check: a fleet the machine cannot hold is refused at once, naming every limit
it exceeds, with one remedy that meets them all."""

from __future__ import annotations

import dataclasses
import re
import resource
import time
from pathlib import Path

import pytest

from fleetsim.simulator.limits import (
    FleetLayout,
    MachineLimits,
    PreflightError,
    check_fleet_fits,
    ephemeral_port_count,
    exceeded_limits,
)

ROOT = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024
#: A 2-core test machine as the issue describes it: 20,000 open files, Linux's default port
#: range, and 24 GiB available.
MACHINE = MachineLimits(
    open_files=20_000, ports_per_address=28_232, memory_available_bytes=24 * 1024 * MIB
)
ROOMY = MachineLimits(open_files=20_000, ports_per_address=28_232, memory_available_bytes=None)


def _refusal(stations: int, machine: MachineLimits = MACHINE, **layout: object) -> str:
    with pytest.raises(PreflightError) as error:
        check_fleet_fits(stations, machine=machine, **layout)  # type: ignore[arg-type]
    return str(error.value)


def test_the_soft_open_file_limit_is_raised_to_the_hard_one() -> None:
    check_fleet_fits(10, embedded_csms=False)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert soft == hard or hard == resource.RLIM_INFINITY


def test_a_fleet_that_fits_passes_and_exceeds_nothing() -> None:
    check_fleet_fits(9_000, embedded_csms=True, machine=MACHINE)
    check_fleet_fits(56_000, embedded_csms=False, processes=3, source_addresses=2, machine=MACHINE)
    assert exceeded_limits(FleetLayout(9_968, embedded_csms=True), MACHINE) == []


def test_open_files_only_advise_the_workers_that_hold_them() -> None:
    message = _refusal(15_000, embedded_csms=True)
    assert message.splitlines() == [
        "15,000 stations do not fit this machine as asked; they exceed one limit:",
        "  open files: the process would need 30,064 (both ends of every connection, as the "
        "embedded CSMS runs in that process), but a process may open 20,000 (the hard limit, "
        "`ulimit -Hn`, which only root raises)",
        # Two workers put the embedded CSMS in processes of its own: 15,064 files each.
        "Run it with --workers 2.",
    ]
    check_fleet_fits(15_000, embedded_csms=True, processes=2, machine=MACHINE)


def test_open_files_of_workers_count_per_worker() -> None:
    message = _refusal(25_000, embedded_csms=False, processes=1)
    assert "open files: the process would need 25,064, but a process may open 20,000" in message
    assert message.endswith("Run it with --workers 2.")
    # 20,000 / 19,936 per process: one more worker than asked.
    message = _refusal(60_000, embedded_csms=False, processes=3, source_addresses=3)
    assert "(the fleet in 3 worker processes)" in message
    assert "open files: each of the worker processes would need 20,064" in message
    assert message.endswith("Run it with --workers 4.")


def test_local_ports_only_advise_the_source_addresses_that_hold_them() -> None:
    message = _refusal(50_000, embedded_csms=False, processes=3)
    assert message.splitlines() == [
        "50,000 stations (the fleet in 3 worker processes) do not fit this machine as asked; "
        "they exceed one limit:",
        "  local ports: every station needs one towards the CSMS, 50,000 in all, but 1 source "
        "address has 28,232 (net.ipv4.ip_local_port_range)",
        "Run it with --source-address giving 2 local addresses of the machine.",
    ]
    message = _refusal(60_000, embedded_csms=True, processes=4, source_addresses=2)
    assert "but 2 source addresses have 56,464 (28,232 each)" in message
    assert message.endswith(
        "Run it with --source-address giving 3 local addresses of the machine, such as "
        "127.0.0.2-127.0.0.4 for the embedded CSMS."
    )


def test_memory_only_with_too_many_workers_advises_fewer() -> None:
    small = MachineLimits(20_000, 28_232, 4 * 1024 * MIB)
    message = _refusal(2_000, small, embedded_csms=False, processes=400)
    assert message.splitlines() == [
        "2,000 stations (the fleet in 400 worker processes) do not fit this machine as asked; "
        "they exceed one limit:",
        # 400 processes of 100 MiB and 2,000 stations of 40 KiB
        "  memory: about 40,078 MiB (40 KiB per station, 100 MiB per process), but the machine "
        "has 4,096 MiB available (MemAvailable in /proc/meminfo)",
        "Run it with --workers 1.",
    ]


def test_memory_this_machine_cannot_meet_says_so_with_the_largest_fleet_that_fits() -> None:
    tiny = MachineLimits(20_000, 28_232, 200 * MIB)
    message = _refusal(10_000, tiny, embedded_csms=False)
    # (200 MiB - 100 MiB for the process) / 40 KiB per station = 2,560 stations
    assert message.splitlines() == [
        "10,000 stations do not fit this machine as asked; they exceed one limit:",
        "  memory: about 490 MiB (40 KiB per station, 100 MiB per process), but the machine "
        "has 200 MiB available (MemAvailable in /proc/meminfo)",
        "Memory cannot be met on this machine, whatever --workers and --source-address: at "
        "most 2,560 stations fit in its 200 MiB. Run the fleet on 4 machines like this one, "
        "machine I with --shard I/4 (I from 0 to 3, about 2,500 stations each).",
    ]
    check_fleet_fits(2_560, embedded_csms=False, machine=tiny)
    with pytest.raises(PreflightError):
        check_fleet_fits(2_561, embedded_csms=False, machine=tiny)


def test_memory_below_one_process_says_to_free_memory() -> None:
    message = _refusal(10, MachineLimits(20_000, 28_232, 50 * MIB), embedded_csms=False)
    assert message.endswith(
        "Memory cannot be met on this machine at all: its 50 MiB available do not hold one "
        "fleetsim process with a station; free memory first, or run the fleet on other "
        "machines with --shard I/N."
    )


def _remedy_numbers(message: str) -> tuple[int, int, int, int, int]:
    """(largest fleet that fits, machines, stations per machine, workers, source addresses)."""
    found = re.search(
        r"at most ([\d,]+) stations fit in its [\d,]+ MiB\. Run the fleet on ([\d,]+) machines "
        r"like this one, machine I with --shard I/\d+ \(I from 0 to \d+, about ([\d,]+) "
        r"stations each\), each with --workers (\d+) and --source-address giving (\d+) local "
        r"addresses of the machine",
        message,
    )
    assert found is not None, message
    most, machines, each, workers, addresses = (int(g.replace(",", "")) for g in found.groups())
    return most, machines, each, workers, addresses


@pytest.mark.parametrize("embedded_csms", [False, True])
def test_ten_million_stations_name_all_three_limits_and_one_remedy_for_them(
    embedded_csms: bool,
) -> None:
    message = _refusal(10_000_000, embedded_csms=embedded_csms)
    lines = message.splitlines()
    assert lines[0] == "10,000,000 stations do not fit this machine as asked; they exceed 3 limits:"
    assert lines[1].startswith("  open files: the process would need ")
    assert lines[2] == (
        "  local ports: every station needs one towards the CSMS, 10,000,000 in all, but 1 "
        "source address has 28,232 (net.ipv4.ip_local_port_range)"
    )
    assert lines[3].startswith("  memory: about ")
    assert lines[3].endswith(
        "but the machine has 24,576 MiB available (MemAvailable in /proc/meminfo)"
    )
    assert "--workers 502" not in message
    most, machines, each, workers, addresses = _remedy_numbers(lines[4])
    # The remedy meets every limit on each machine, and the largest fleet is the largest.
    assert machines * each >= 10_000_000 and each <= most
    check_fleet_fits(
        each,
        embedded_csms=embedded_csms,
        processes=workers,
        source_addresses=addresses,
        machine=MACHINE,
    )
    assert exceeded_limits(FleetLayout(each, 1, addresses, embedded_csms), MACHINE)
    assert exceeded_limits(FleetLayout(each, workers - 1, addresses, embedded_csms), MACHINE)
    assert exceeded_limits(FleetLayout(each, workers, addresses - 1, embedded_csms), MACHINE)
    largest = FleetLayout(most, workers, -(-most // 28_232), embedded_csms)
    assert not exceeded_limits(largest, MACHINE)
    assert exceeded_limits(
        FleetLayout(most + 1, workers, largest.source_addresses, embedded_csms), MACHINE
    )
    if not embedded_csms:
        # By hand: 28 processes of 100 MiB leave 22,833,790,976 bytes, 557,465 stations of
        # 40 KiB (28 x 19,936 open files hold 558,208); 10,000,000 / 557,465 -> 18 machines of
        # 555,556 stations, each in 28 processes over 20 x 28,232 ports.
        assert (most, machines, each, workers, addresses) == (557_465, 18, 555_556, 28, 20)


def test_a_shard_that_does_not_fit_gives_the_shards_of_the_whole_fleet() -> None:
    message = _refusal(10_000_000, embedded_csms=False, shards=4, fleet_stations=40_000_000)
    assert "Run the whole fleet of 40,000,000 stations on 72 machines like this one" in message
    assert "machine I with --shard I/72 (I from 0 to 71" in message


def test_the_ephemeral_port_range_is_read_from_the_kernel(tmp_path: Path) -> None:
    ports = tmp_path / "ip_local_port_range"
    ports.write_text("32768\t60999\n")
    assert ephemeral_port_count(ports) == 28_232
    assert ephemeral_port_count(tmp_path / "missing") is None


def test_the_machine_limits_come_from_proc(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:  4096000 kB\nMemFree:  100000 kB\nMemAvailable:  409600 kB\n")
    ports = tmp_path / "ip_local_port_range"
    ports.write_text("1024 65535\n")
    machine = MachineLimits.of_this_machine(meminfo=meminfo, port_range=ports)
    assert (machine.ports_per_address, machine.memory_available_bytes) == (64_512, 400 * MIB)
    assert machine.open_files == resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def test_unknown_memory_and_ports_skip_those_checks(tmp_path: Path) -> None:
    unknown = MachineLimits.of_this_machine(
        meminfo=tmp_path / "missing", port_range=tmp_path / "missing"
    )
    assert unknown.memory_available_bytes is None and unknown.ports_per_address is None
    assert exceeded_limits(FleetLayout(1_000_000, processes=100), unknown) == []


@pytest.fixture
def this_machine_is_the_test_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(MachineLimits, "of_this_machine", classmethod(lambda cls, **_: MACHINE))


@pytest.mark.usefixtures("this_machine_is_the_test_machine")
def test_ten_million_stations_are_refused_before_anything_per_station(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`fleetsim run --stations 10000000` spent 17 s formatting station ids before the limits
    refused the fleet; now the refusal comes from a few ids, in well under a second of CPU."""
    from fleetsim.simulator import api
    from fleetsim.simulator.scenario import patterns

    def every_index(pattern: str, indices: range) -> None:
        raise AssertionError(f"formatted every one of {len(indices):,} ids of {pattern!r}")

    monkeypatch.setattr(patterns, "survey_every_index", every_index)
    request = api.RunRequest(
        scenario_path=ROOT / "scenarios" / "reference-load.yaml",
        overrides=api.ScenarioOverrides(stations=10_000_000),
    )
    api.plan_run(dataclasses.replace(request, overrides=api.ScenarioOverrides(stations=10)))
    started_s = time.process_time()
    with pytest.raises(api.RunRefused) as refused:
        api.plan_run(request)
    assert time.process_time() - started_s < 3.0
    assert str(refused.value) == _refusal(10_000_000, embedded_csms=True)


@pytest.mark.usefixtures("this_machine_is_the_test_machine")
def test_a_fast_run_is_refused_the_memory_it_cannot_have() -> None:
    """--fast has no sockets, so neither open files nor ports bind it, but ten million stations
    in its one process would fill the memory until the system killed it."""
    from fleetsim.simulator import api

    request = api.RunRequest(
        scenario_path=ROOT / "scenarios" / "reference-load.yaml",
        overrides=api.ScenarioOverrides(stations=10_000_000),
        in_memory=True,
    )
    with pytest.raises(api.RunRefused) as refused:
        api.plan_run(request)
    lines = str(refused.value).splitlines()
    assert lines[0] == (
        "10,000,000 stations do not fit this machine as asked; they exceed one limit:"
    )
    assert lines[1].startswith("  memory: about 781,350 MiB (40 KiB per station and as much")
    assert lines[2].startswith(
        "Memory cannot be met on this machine in one process (--fast runs in one): at most "
    )
    assert "--workers" not in lines[2] and "--source-address" not in lines[2]
    # 15,000 stations over in-memory links hold no socket: what refuses them with sockets
    # passes here.
    api.plan_run(dataclasses.replace(request, overrides=api.ScenarioOverrides(stations=15_000)))
    with pytest.raises(PreflightError, match="open files"):
        check_fleet_fits(15_000, embedded_csms=True, machine=MACHINE)
