"""The EV catalogue: enough models, every figure sourced, overrides that say what is wrong."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fleetsim.ev_models import CatalogueError, EvModel, load_catalogue
from fleetsim.ev_models.catalogue import FIGURE_GROUPS

CATALOGUE = load_catalogue()


def test_the_catalogue_spans_cars_vans_and_heavy_vehicles() -> None:
    assert len(CATALOGUE) >= 12
    kinds = [model.kind for model in CATALOGUE.values()]
    assert kinds.count("car") >= 4
    assert "van" in kinds
    assert {"bus", "truck"} & set(kinds)
    assert any(m.kind == "car" and m.dc_max_voltage_v >= 700 for m in CATALOGUE.values())
    assert any(m.bidirectional for m in CATALOGUE.values())
    assert any(m.iso15118_20 for m in CATALOGUE.values())
    assert all(name == model.name for name, model in CATALOGUE.items())


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_every_figure_group_of_every_model_has_a_source(name: str) -> None:
    model = CATALOGUE[name]
    missing = set(FIGURE_GROUPS) - model.covered_figures()
    assert not missing, f"{name}: no source for {sorted(missing)}"
    for source in model.sources:
        assert "http" in source.cite or "stimate" in source.cite, source.cite


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_every_dc_curve_starts_at_its_peak_and_tapers(name: str) -> None:
    curve = CATALOGUE[name].dc_curve
    assert curve[0][0] == 0.0
    assert curve[-1][1] < curve[0][1] <= CATALOGUE[name].max_dc_w


def test_an_override_changes_fields_of_a_model_in_either_unit() -> None:
    changed = load_catalogue(
        {
            "vw-id3-pro-58kwh": {"max_dc_kw": 120, "dc_curve_kw": [[0.0, 120], [0.5, 60]]},
            "fiat-500e-42kwh": {"usable_battery_wh": 40_000},
        }
    )
    assert changed["vw-id3-pro-58kwh"].max_dc_w == 120_000.0
    assert changed["vw-id3-pro-58kwh"].dc_curve == ((0.0, 120_000.0), (0.5, 60_000.0))
    assert changed["vw-id3-pro-58kwh"].usable_battery_wh == 58_000.0
    assert changed["fiat-500e-42kwh"].usable_battery_wh == 40_000.0
    assert load_catalogue()["vw-id3-pro-58kwh"].max_dc_w == 100_000.0


def test_an_override_can_add_a_model() -> None:
    added = load_catalogue(
        {
            "test-van": {
                "kind": "van",
                "usable_battery_wh": 50_000,
                "max_ac_w": 11_000,
                "ac_phases": 3,
                "max_dc_w": 50_000,
                "dc_curve": [[0.0, 50_000], [0.8, 20_000]],
                "ac_efficiency": 0.9,
                "dc_efficiency": 0.95,
                "iso15118_20": False,
                "bidirectional": False,
            }
        }
    )
    assert added["test-van"].max_discharge_w == 0.0
    assert added["test-van"].sources == ()
    assert len(added) == len(CATALOGUE) + 1


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"max_dc_kw": -5}, "'vw-id3-pro-58kwh': max_dc_w must be a positive number"),
        ({"max_dc_kilowatts": 5}, "'vw-id3-pro-58kwh': unknown field 'max_dc_kilowatts'"),
        ({"max_dc_w": 1, "max_dc_kw": 1}, "give 'max_dc_w' or 'max_dc_kw', not both"),
        ({"ac_efficiency": 1.2}, "ac_efficiency must be in \\(0, 1\\]"),
        ({"ac_phases": 2}, "ac_phases must be 1 or 3"),
        ({"dc_curve_kw": [[0.1, 50]]}, "dc_curve must start at SoC 0.0"),
        ({"dc_curve_kw": [[0.0, 50], [0.5, 60]]}, "taper"),
        ({"dc_curve_kw": [[0.0, 50], [0.6, 40], [0.4, 30]]}, "breakpoints must increase"),
        ({"dc_curve_kw": [[0.0, 500]]}, "above max_dc_w"),
        ({"bidirectional": True}, "max_discharge_w must be positive for a bidirectional"),
        ({"kind": "boat"}, "kind must be one of car, van, bus, truck"),
        ({"max_dc_kw": "fast"}, "max_dc_kw must be a number"),
    ],
)
def test_a_bad_override_names_the_model_and_the_field(
    override: dict[str, object], message: str
) -> None:
    with pytest.raises(CatalogueError, match=message) as caught:
        load_catalogue({"vw-id3-pro-58kwh": override})
    assert str(caught.value).startswith("override: EV model 'vw-id3-pro-58kwh': ")


def test_a_new_model_must_give_every_figure() -> None:
    with pytest.raises(CatalogueError, match="'new-car': missing field\\(s\\) kind, "):
        load_catalogue({"new-car": {"max_ac_kw": 11}})


def test_models_are_frozen_and_validated_when_built() -> None:
    model = CATALOGUE["renault-zoe-r135-ze50"]
    with pytest.raises(AttributeError):
        model.max_dc_w = 1.0  # type: ignore[misc]
    with pytest.raises(CatalogueError, match="dc_efficiency"):
        replace(model, dc_efficiency=0.0)
    assert isinstance(replace(model, max_ac_w=7_400.0), EvModel)
