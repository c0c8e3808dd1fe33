"""Where a py-spy profile's CPU went, by package and by function: the README's profile tables.

`busy_fleet.py --py-spy FILE` records a fleetsim client in speedscope format; this reads the
file and prints the share of samples whose innermost Python frame (self time) lies in each package
(fleetsim's own layers, trio, simpy, the standard library ...) and the functions with the most
self time.  py-spy samples Python frames only, so time in a compiled extension (orjson, the
schema validator) or a system call counts towards the Python line that called it.

    python bench/profile_summary.py bench/results/profile-10k.speedscope.json --top 25
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

#: (marker in a frame's file path, the name it is counted under), first match wins.
_GROUPS = (
    ("/simulator/transport/", "fleetsim transport (WebSocket client)"),
    ("/simulator/ocpp/", "fleetsim OCPP-J (frames, schemas, RPC)"),
    ("/simulator/station/", "fleetsim station logic"),
    ("/simulator/", "fleetsim engine (clock, pump, stats, run)"),
    ("/ev_models/", "fleetsim EV models"),
    ("/grid_models/", "fleetsim grid models"),
    ("/trio/", "trio"),
    ("/trio_websocket/", "trio-websocket"),
    ("/wsproto/", "wsproto"),
    ("/simpy/", "simpy"),
    ("/prometheus_client/", "prometheus-client"),
    ("/numpy/", "numpy"),
    ("/site-packages/", "other packages"),
    ("/lib/python3", "Python standard library"),
)


def _group(path: str, name: str) -> str:
    for marker, group in _GROUPS:
        if marker in path:
            return group
    return f"other ({path or name})"


def summarize(
    path: Path, top: int
) -> tuple[float, list[tuple[str, float]], list[tuple[str, float]]]:
    """(seconds sampled, [(group, share)], [(function, share)]) of a py-spy speedscope file
    (py-spy weighs each sample by the seconds it stands for)."""
    document = json.loads(path.read_text())
    frames = document["shared"]["frames"]
    by_group: Counter[str] = Counter()
    by_function: Counter[str] = Counter()
    total = 0.0
    for profile in document["profiles"]:
        weights = profile.get("weights") or [1] * len(profile["samples"])
        for stack, weight in zip(profile["samples"], weights, strict=True):
            if not stack:
                continue
            frame = frames[stack[-1]]
            file = frame.get("file") or ""
            by_group[_group(file, frame["name"])] += weight
            short = "/".join(file.split("/")[-2:]) if file else "?"
            by_function[f"{frame['name']} ({short}:{frame.get('line', '?')})"] += weight
            total += weight
    groups = [(name, count / total) for name, count in by_group.most_common()]
    functions = [(name, count / total) for name, count in by_function.most_common(top)]
    return total, groups, functions


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("profile", type=Path, help="a speedscope file written by py-spy")
    parser.add_argument("--top", type=int, default=20, help="functions to list")
    args = parser.parse_args()
    total, groups, functions = summarize(args.profile, args.top)
    print(f"{total:.1f} s of samples; self time by package:")
    for name, share in groups:
        print(f"  {share:6.1%}  {name}")
    print(f"top {len(functions)} functions by self time:")
    for name, share in functions:
        print(f"  {share:6.1%}  {name}")


if __name__ == "__main__":
    main()
