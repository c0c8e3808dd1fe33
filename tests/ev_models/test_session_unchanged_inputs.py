"""An input set again to the value it has changes nothing, folds nothing, and still refuses
time going backwards: visit tasks re-apply their limits at every meter value."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from fleetsim.ev_models import EvSession, load_catalogue

ID3 = load_catalogue()["vw-id3-pro-58kwh"]


def _session() -> EvSession:
    session = EvSession(
        ID3,
        supply="DC",
        evse_max_w=150_000.0,
        evse_phases=3,
        soc=0.1,
        target_soc=0.9,
        min_soc=0.2,
        now_s=0.0,
    )
    session.set_enabled(True, 0.0)
    return session


def test_reapplying_every_input_keeps_the_state_and_the_readings() -> None:
    touched = _session()
    untouched = _session()
    for now_s in (10.0, 20.0, 30.0):
        touched.set_enabled(True, now_s)
        touched.set_limit(None, now_s)
        touched.set_setpoint(None, now_s)
        touched.set_share(None, now_s)
        touched.set_droop(0.0, now_s)
    assert touched._t_s == 0.0  # nothing was folded
    assert touched.power_w == untouched.power_w
    assert touched.next_change_s() == untouched.next_change_s()
    assert touched.imported_wh_at(40.0) == untouched.imported_wh_at(40.0)
    assert touched.soc_at(40.0) == untouched.soc_at(40.0)


def test_a_changed_input_after_unchanged_ones_folds_from_the_last_real_change() -> None:
    session = _session()
    reference = _session()
    session.set_limit(None, 15.0)
    session.set_limit(20_000.0, 30.0)
    reference.set_limit(20_000.0, 30.0)
    assert session.power_w == reference.power_w == 20_000.0
    assert session.imported_wh_at(60.0) == pytest.approx(reference.imported_wh_at(60.0))


@pytest.mark.parametrize(
    "reapply",
    [
        lambda s, t: s.set_enabled(True, t),
        lambda s, t: s.set_limit(None, t),
        lambda s, t: s.set_setpoint(None, t),
        lambda s, t: s.set_share(None, t),
        lambda s, t: s.set_droop(0.0, t),
    ],
)
def test_an_unchanged_input_still_refuses_time_going_backwards(
    reapply: Callable[[EvSession, float], None],
) -> None:
    session = _session()
    session.set_limit(50_000.0, 100.0)
    with pytest.raises(ValueError, match="backwards"):
        reapply(session, 50.0)
    # The same instant read through floating point is accepted, as a fold accepts it.
    reapply(session, 100.0 - 1e-9)
