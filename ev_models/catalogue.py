"""The EV model catalogue: published battery and charging figures, one frozen record per model.

The figures live in `data/catalogue.yaml`, each model with the sources they come from, so a
reader can check a number without reading code.  The YAML writes power in kW and energy in kWh,
as manufacturers and charging tests publish them; `EvModel` holds SI units (W, Wh) like the
rest of fleetsim.  Every field can be written either way: `max_dc_w: 150000` and
`max_dc_kw: 150` mean the same, which is what lets a scenario's `extra_models` use the
`EvModel` field names while the catalogue stays readable.

AC charging has no published curve per model.  `ac_curve` assumes the on-board charger holds
its limit up to 95 % SoC and tapers to 30 % of it at 100 %: AC power is small next to what the
cells accept, so only the final balancing phase slows it.
"""

from __future__ import annotations

import functools
import importlib.resources
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

import yaml

__all__ = [
    "AC_TAPER_END_FRACTION",
    "AC_TAPER_START_SOC",
    "FIGURE_GROUPS",
    "CatalogueError",
    "EvKind",
    "EvModel",
    "Source",
    "ac_curve",
    "load_catalogue",
]

EvKind = Literal["car", "van", "bus", "truck"]
_KINDS: tuple[str, ...] = get_args(EvKind)

#: The groups of figures a source can back; the catalogue test wants each one covered.
FIGURE_GROUPS = ("battery", "ac", "dc", "dc_curve", "efficiency", "iso15118", "bidirectional")

#: `ac_curve`: the on-board charger holds its limit up to this SoC ...
AC_TAPER_START_SOC = 0.95
#: ... and its power falls linearly to this fraction of the limit at SoC 1.0.
AC_TAPER_END_FRACTION = 0.30
#: The taper is a step table (SoC stays linear in time within a step) of this many steps.
_AC_TAPER_STEPS = 5


class CatalogueError(ValueError):
    """A catalogue entry or an override that cannot become an `EvModel`; says what to fix."""


@dataclass(frozen=True, slots=True)
class Source:
    """Where some figures of a model come from.

    `figures` names groups of `FIGURE_GROUPS`; `cite` names the publication and says when a
    figure is an estimate rather than a published value.
    """

    figures: tuple[str, ...]
    cite: str


@dataclass(frozen=True, slots=True)
class EvModel:
    """One EV model's battery and charging capabilities, in W, Wh and SoC fractions (0..1).

    `dc_curve` is a step table: for SoC in [soc_i, soc_{i+1}) the EV accepts at most W_i, the
    last step holding up to SoC 1.0.  Steps rather than linear interpolation keep the power
    constant between breakpoints, so a session's SoC is linear in time between them and its
    next event can be solved exactly.  Efficiencies are grid to battery; the same figure is used
    battery to grid when a bidirectional EV discharges.  `max_ac_w` is 0 for an EV with no AC
    inlet (heavy trucks that charge on CCS or MCS only).
    """

    name: str
    kind: EvKind
    usable_battery_wh: float
    max_ac_w: float
    ac_phases: int
    max_dc_w: float
    dc_curve: tuple[tuple[float, float], ...]
    ac_efficiency: float
    dc_efficiency: float
    iso15118_20: bool
    bidirectional: bool
    max_discharge_w: float
    sources: tuple[Source, ...] = ()
    #: Highest DC voltage the EV accepts; ISO 15118 and OCPP ask for it (evMaxVoltage).
    dc_max_voltage_v: float = 450.0
    #: Energy of the pack a battery-swap station exchanges (block S), in Wh; None for an EV
    #: whose battery cannot be swapped.  Swap EVs go to swap stations, never to the default
    #: mix of a charging site.
    swap_pack_wh: float | None = None

    def __post_init__(self) -> None:
        def fail(field: str, problem: str) -> CatalogueError:
            return CatalogueError(f"EV model {self.name!r}: {field} {problem}")

        if not self.name:
            raise CatalogueError("an EV model needs a non-empty name")
        if self.kind not in _KINDS:
            raise fail("kind", f"must be one of {', '.join(_KINDS)}, got {self.kind!r}")
        for field in ("usable_battery_wh", "max_dc_w", "dc_max_voltage_v"):
            value = getattr(self, field)
            if not (_is_number(value) and value > 0):
                raise fail(field, f"must be a positive number, got {value!r}")
        if not (_is_number(self.max_ac_w) and self.max_ac_w >= 0):
            raise fail("max_ac_w", f"must be a number >= 0 (0: no AC inlet), got {self.max_ac_w!r}")
        if type(self.ac_phases) is not int or self.ac_phases not in (1, 3):
            raise fail("ac_phases", f"must be 1 or 3, got {self.ac_phases!r}")
        for field in ("ac_efficiency", "dc_efficiency"):
            value = getattr(self, field)
            if not (_is_number(value) and 0 < value <= 1):
                raise fail(field, f"must be in (0, 1], got {value!r}")
        for field in ("iso15118_20", "bidirectional"):
            if not isinstance(getattr(self, field), bool):
                raise fail(field, f"must be true or false, got {getattr(self, field)!r}")
        if not _is_number(self.max_discharge_w) or self.max_discharge_w < 0:
            raise fail("max_discharge_w", f"must be a number >= 0, got {self.max_discharge_w!r}")
        if self.bidirectional and self.max_discharge_w <= 0:
            raise fail("max_discharge_w", "must be positive for a bidirectional model")
        if not self.bidirectional and self.max_discharge_w != 0:
            raise fail(
                "max_discharge_w",
                f"must be 0 unless the model is bidirectional, got {self.max_discharge_w!r}",
            )
        swap_wh = self.swap_pack_wh
        if swap_wh is not None and not (_is_number(swap_wh) and swap_wh > 0):
            raise fail("swap_pack_wh", f"must be a positive number or absent, got {swap_wh!r}")
        self._check_curve(fail)
        for source in self.sources:
            unknown = [g for g in source.figures if g not in FIGURE_GROUPS]
            if unknown or not source.figures or not source.cite:
                raise fail(
                    "sources",
                    f"entries need a cite and figures from {', '.join(FIGURE_GROUPS)}; "
                    f"got {source!r}",
                )

    def _check_curve(self, fail: Callable[[str, str], CatalogueError]) -> None:
        curve = self.dc_curve
        if not curve:
            raise fail("dc_curve", "needs at least one (soc, W) breakpoint")
        if curve[0][0] != 0.0:
            raise fail("dc_curve", f"must start at SoC 0.0, starts at {curve[0][0]!r}")
        previous_soc = -1.0
        previous_w = math.inf
        for soc, power_w in curve:
            if not (_is_number(soc) and 0.0 <= soc < 1.0):
                raise fail("dc_curve", f"SoC breakpoints must be in [0, 1), got {soc!r}")
            if soc <= previous_soc:
                raise fail(
                    "dc_curve", f"SoC breakpoints must increase, got {soc!r} after {previous_soc!r}"
                )
            if not (_is_number(power_w) and power_w > 0):
                raise fail("dc_curve", f"power must be positive, got {power_w!r} at SoC {soc!r}")
            if power_w > previous_w:
                raise fail(
                    "dc_curve",
                    f"must be flat to the knee and taper above it; {power_w!r} W at SoC {soc!r} "
                    f"is more than the {previous_w!r} W before it",
                )
            previous_soc, previous_w = soc, power_w
        if curve[0][1] > self.max_dc_w:
            raise fail("dc_curve", f"peaks at {curve[0][1]!r} W, above max_dc_w {self.max_dc_w!r}")

    def covered_figures(self) -> frozenset[str]:
        """The figure groups at least one source backs."""
        return frozenset(group for source in self.sources for group in source.figures)


def _at(where: str, name: str) -> str:
    """The start of an error message: which file or override, which model."""
    return f"{where}: EV model {name!r}: "


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@functools.lru_cache(maxsize=256)
def ac_curve(model: EvModel) -> tuple[tuple[float, float], ...]:
    """The AC step table (soc, W) of `model`: flat at `max_ac_w` up to 95 % SoC, then a taper.

    Published AC figures are limits of the on-board charger, not curves, so the shape is an
    assumption: the battery accepts an AC charger's power until its cells need balancing, and
    the BMS then reduces the current.  The taper from 100 % at SoC 0.95 to 30 % at SoC 1.0 is
    written as five steps whose powers are the line's values at each step's middle, so a full
    taper delivers the same energy as the line while SoC stays linear within a step.
    """
    limit_w = model.max_ac_w
    width = (1.0 - AC_TAPER_START_SOC) / _AC_TAPER_STEPS
    steps = [(0.0, limit_w)]
    for index in range(_AC_TAPER_STEPS):
        middle = (index + 0.5) / _AC_TAPER_STEPS
        fraction = 1.0 - (1.0 - AC_TAPER_END_FRACTION) * middle
        steps.append((round(AC_TAPER_START_SOC + index * width, 6), limit_w * fraction))
    return tuple(steps)


# -- loading ------------------------------------------------------------------------------------

#: field -> (the alias in kW/kWh, its scale to W/Wh)
_UNIT_ALIASES: dict[str, tuple[str, float]] = {
    "usable_battery_wh": ("usable_battery_kwh", 1000.0),
    "max_ac_w": ("max_ac_kw", 1000.0),
    "max_dc_w": ("max_dc_kw", 1000.0),
    "max_discharge_w": ("max_discharge_kw", 1000.0),
    "dc_curve": ("dc_curve_kw", 1000.0),
    "swap_pack_wh": ("swap_pack_kwh", 1000.0),
}
_FIELDS = (
    "kind",
    "usable_battery_wh",
    "max_ac_w",
    "ac_phases",
    "max_dc_w",
    "dc_curve",
    "ac_efficiency",
    "dc_efficiency",
    "iso15118_20",
    "bidirectional",
    "max_discharge_w",
    "sources",
    "dc_max_voltage_v",
    "swap_pack_wh",
)
_FLOAT_FIELDS = (
    "usable_battery_wh",
    "max_ac_w",
    "max_dc_w",
    "ac_efficiency",
    "dc_efficiency",
    "max_discharge_w",
    "dc_max_voltage_v",
    "swap_pack_wh",
)
_OPTIONAL = frozenset({"sources", "dc_max_voltage_v", "max_discharge_w", "swap_pack_wh"})
_ALIAS_TO_FIELD = {alias: (field, scale) for field, (alias, scale) in _UNIT_ALIASES.items()}


def _normalise(name: str, entry: Mapping[str, Any], where: str) -> dict[str, Any]:
    """`entry` with every key turned into an `EvModel` field name and every value into SI."""
    if not isinstance(entry, Mapping):
        raise CatalogueError(_at(where, name) + f"expected a mapping of fields, got {entry!r}")
    fields: dict[str, Any] = {}
    for key, value in entry.items():
        if key in _ALIAS_TO_FIELD:
            field, scale = _ALIAS_TO_FIELD[key]
            value = _scaled(name, key, value, scale, where)
        elif key in _FIELDS:
            field = key
        else:
            known = sorted([*_FIELDS, *_ALIAS_TO_FIELD])
            raise CatalogueError(
                _at(where, name) + f"unknown field {key!r}; known fields: {', '.join(known)}"
            )
        if field in fields:
            alias = _UNIT_ALIASES[field][0]
            raise CatalogueError(_at(where, name) + f"give {field!r} or {alias!r}, not both")
        fields[field] = value
    return fields


def _scaled(name: str, key: str, value: Any, scale: float, where: str) -> Any:
    if key == "dc_curve_kw":
        return [
            _curve_point(name, key, point, scale, where)
            for point in _as_list(name, key, value, where)
        ]
    if not _is_number(value):
        raise CatalogueError(_at(where, name) + f"{key} must be a number, got {value!r}")
    return value * scale


def _as_list(name: str, key: str, value: Any, where: str) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise CatalogueError(
            _at(where, name) + f"{key} must be a list of [soc, power] pairs, got {value!r}"
        )
    return list(value)


def _curve_point(name: str, key: str, point: Any, scale: float, where: str) -> tuple[float, float]:
    if not (
        isinstance(point, list | tuple) and len(point) == 2 and all(_is_number(v) for v in point)
    ):
        raise CatalogueError(
            _at(where, name) + f"{key} must be a list of [soc, power] pairs, got {point!r}"
        )
    return (float(point[0]), float(point[1]) * scale)


def _build(name: str, fields: Mapping[str, Any], where: str) -> EvModel:
    missing = [f for f in _FIELDS if f not in fields and f not in _OPTIONAL]
    if missing:
        raise CatalogueError(
            _at(where, name) + f"missing field(s) {', '.join(missing)} "
            "(a new model needs every figure; an existing one can change just a few)"
        )
    values = dict(fields)
    curve = values["dc_curve"]
    values["dc_curve"] = tuple(
        _curve_point(name, "dc_curve", point, 1.0, where)
        for point in _as_list(name, "dc_curve", curve, where)
    )
    values["sources"] = tuple(_source(name, s, where) for s in values.get("sources") or ())
    values.setdefault("max_discharge_w", 0.0)
    for field in _FLOAT_FIELDS:
        if field in values and _is_number(values[field]):
            values[field] = float(values[field])
    try:
        return EvModel(name=name, **values)
    except CatalogueError as exc:
        raise CatalogueError(f"{where}: {exc}") from None
    except TypeError as exc:
        raise CatalogueError(_at(where, name) + f"{exc}") from exc


def _source(name: str, raw: Any, where: str) -> Source:
    if isinstance(raw, Source):
        return raw
    if not (isinstance(raw, Mapping) and set(raw) == {"figures", "cite"}):
        raise CatalogueError(
            _at(where, name) + f"each source needs exactly 'figures' and 'cite', got {raw!r}"
        )
    figures = raw["figures"]
    if isinstance(figures, str) or not isinstance(figures, list | tuple):
        raise CatalogueError(_at(where, name) + f"source figures must be a list, got {figures!r}")
    return Source(tuple(str(f) for f in figures), str(raw["cite"]))


def _read_yaml() -> dict[str, Any]:
    resource = importlib.resources.files(__package__ or __name__) / "data" / "catalogue.yaml"
    document = yaml.safe_load(resource.read_text(encoding="utf-8"))
    if not isinstance(document, Mapping) or not isinstance(document.get("models"), Mapping):
        raise CatalogueError(f"{resource}: expected a top-level 'models' mapping")
    return dict(document["models"])


def load_catalogue(overrides: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, EvModel]:
    """The catalogue's models by name, with `overrides` applied.

    An override for a known name changes only the fields it gives; one for a new name adds a
    model and must give every figure.  Fields take the `EvModel` names (W, Wh) or the YAML's
    kW/kWh aliases.  Errors name the model and the field.
    """
    raw = _read_yaml()
    merged: dict[str, tuple[dict[str, Any], str]] = {
        name: (_normalise(name, entry, "catalogue.yaml"), "catalogue.yaml")
        for name, entry in raw.items()
    }
    for name, change in (overrides or {}).items():
        fields = _normalise(name, change, "override")
        if name in merged:
            base, _ = merged[name]
            merged[name] = ({**base, **fields}, "override")
        else:
            merged[name] = (fields, "override")
    return {name: _build(name, fields, where) for name, (fields, where) in merged.items()}
