"""CPU time and memory of processes, read from /proc, and the figures of a measured window:
what every benchmark here measures.

CPU is measured as CPU time (user + system, all threads), not as wall time, so a benchmark's
figures depend little on what else the machine is doing.  A process tree is a process and its
descendants: a `fleetsim run --workers N` client, or `fleetsim csms --processes K`.
"""

from __future__ import annotations

import os
import resource
from typing import Any

__all__ = [
    "cpu_s",
    "own_cpu_s",
    "round_trip_figures",
    "cpu_split_s",
    "machine_ticks",
    "memory_kb",
    "rss_kb",
    "tree",
    "tree_cpu_split_s",
    "tree_memory_kb",
]

_CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def cpu_split_s(pid: int | str = "self") -> tuple[float, float]:
    """User and system CPU seconds of process `pid` (its threads included)."""
    with open(f"/proc/{pid}/stat") as stat:
        # The command name may hold spaces; the fields after its closing parenthesis do not.
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / _CLOCK_TICKS_PER_S, int(fields[12]) / _CLOCK_TICKS_PER_S


def cpu_s(pid: int | str = "self") -> float:
    """User plus system CPU seconds of process `pid` (its threads included)."""
    return sum(cpu_split_s(pid))


def own_cpu_s() -> float:
    """This process's user plus system CPU seconds, to the microsecond (getrusage), for the
    short windows a client measures itself over."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def memory_kb(pid: int | str = "self") -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak) of process `pid`, in KB."""
    found: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                found[name] = int(rest.split()[0])
    return found


def rss_kb(pid: int | str = "self") -> int:
    """VmRSS of process `pid`, in KB."""
    return memory_kb(pid).get("VmRSS", 0)


def tree(pid: int) -> list[int]:
    """`pid` and its living descendants."""
    found = [pid]
    for member in found:
        try:
            for task in os.listdir(f"/proc/{member}/task"):
                with open(f"/proc/{member}/task/{task}/children") as children:
                    found.extend(int(child) for child in children.read().split())
        except FileNotFoundError:
            continue  # it ended meanwhile
    return found


def tree_cpu_split_s(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of `pid` and its living descendants."""
    user_s = system_s = 0.0
    for member in tree(pid):
        try:
            member_user_s, member_system_s = cpu_split_s(member)
        except FileNotFoundError:
            continue
        user_s += member_user_s
        system_s += member_system_s
    return user_s, system_s


def tree_memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM summed over `pid` and its living descendants, in KB."""
    total = {"VmRSS": 0, "VmHWM": 0}
    for member in tree(pid):
        try:
            memory = memory_kb(member)
        except FileNotFoundError:
            continue
        for name in total:
            total[name] += memory.get(name, 0)
    return total


def machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all cores since boot, from /proc/stat."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # guest time is already in user
    return total - idle, total


def round_trip_figures(
    round_trips: int, cpu_s: float, wall_s: float, latencies_s: list[float]
) -> dict[str, Any]:
    """What a client reports of its window: round trips (per second), its CPU per round trip
    and in % of a core, and the median and 99th percentile of `latencies_s` (sorted) in ms."""
    return {
        "round_trips": round_trips,
        "round_trips_per_s": round_trips / wall_s,
        "cpu_us_per_round_trip": cpu_s / max(round_trips, 1) * 1e6,
        "cpu_percent": cpu_s / wall_s * 100,
        "p50_ms": latencies_s[len(latencies_s) // 2] * 1000 if latencies_s else None,
        "p99_ms": latencies_s[int(len(latencies_s) * 0.99)] * 1000 if latencies_s else None,
    }
