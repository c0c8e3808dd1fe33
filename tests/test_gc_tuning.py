"""The collector after start-up: what is alive is frozen, young collections are rarer."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from fleetsim.simulator.gc_tuning import GEN0_THRESHOLD, tune_collector


@pytest.fixture
def _restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("_restored_collector")
def test_tuning_freezes_the_live_objects_and_raises_the_young_threshold() -> None:
    stations = [object() for _ in range(1000)]
    tune_collector()
    assert gc.get_freeze_count() >= len(stations)
    assert gc.get_threshold()[0] == GEN0_THRESHOLD
