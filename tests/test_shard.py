"""`--shard I/N`: disjoint blocks that together make exactly the fleet."""

from __future__ import annotations

import pytest

from fleetsim.simulator.scenario import Scenario
from fleetsim.simulator.shard import Shard, parse_shard


@pytest.mark.parametrize(
    ("stations", "count"),
    [(s, n) for s in (1, 7, 30, 1000, 200_001) for n in (1, 2, 3, 8, 64) if n <= s],
)
def test_shards_are_disjoint_and_cover_every_station(stations: int, count: int) -> None:
    blocks = [Shard(index, count).block(5, stations) for index in range(count)]
    seen = [index for block in blocks for index in block]
    assert seen == list(range(5, 5 + stations))
    assert max(len(b) for b in blocks) - min(len(b) for b in blocks) <= 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("3/3", "shard index 3 is outside 0..2 (shards count from 0)"),
        ("1/0", "a fleet has at least 1 shard, not 0"),
        ("one/3", "--shard takes I/N, such as 0/4 for the first of four, not 'one/3'"),
    ],
)
def test_bad_shards_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError) as error:
        parse_shard(text)
    assert str(error.value) == message


def test_a_shard_keeps_each_station_on_its_own_site() -> None:
    scenario = Scenario.model_validate(
        {
            "name": "sites",
            "stations": {"count": 10},
            "sites": [
                {"name": "a", "stations": 4, "capacity_kw": 100},
                {"name": "b", "kind": "depot"},
            ],
        }
    )
    layouts = [
        [
            (site.name, site.kind, indices)
            for site, indices in scenario.for_block(Shard(index, 3).block(1, 10)).site_layout()
        ]
        for index in range(3)
    ]
    assert layouts == [
        [("a", "public", range(1, 4))],
        [("a", "public", range(4, 5)), ("b", "depot", range(5, 7))],
        [("b", "depot", range(7, 11))],
    ]
