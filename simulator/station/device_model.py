"""The device model (OCPP Part 1 and B05-B07): components, variables and their values.

A fleet of 30,000 stations shares one `DeviceModelSpec`: the list of variables with their types,
limits and defaults, built once from the station configuration.  Each station's `DeviceModel`
keeps only what differs: the values the CSMS has set.  A few variables are not stored at all but
read from the station's live state (`VariableSpec.reader`), such as a connector's
AvailabilityState, so they can never disagree with what the station reports elsewhere.

Values are strings, as OCPP carries them; `DeviceModel.integer` and friends convert on read.

A variable whose new value only takes effect after a reboot (`VariableSpec.reboot_required`,
such as the network connection priority) keeps the value in effect until then: SetVariables
answers RebootRequired and the new value waits in `DeviceModel.pending` until
`apply_pending` (the provisioning block calls it when the station comes up again).

`on_change` is called with a variable's key whenever the value in effect of a stored variable
changes: when the CSMS sets it, and when a pending value takes effect after a reboot.  Variables
read live (`reader`) change with the station's state and are not announced there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ATTRIBUTE_TYPES",
    "AttributeResult",
    "DeviceModel",
    "DeviceModelSpec",
    "VariableKey",
    "VariableSpec",
    "names_variable",
]

#: (component name, component instance, evse id, connector id, variable name, variable instance)
VariableKey = tuple[str, str | None, int | None, int | None, str, str | None]

#: The attribute types of OCPP's AttributeEnumType.
ATTRIBUTE_TYPES = ("Actual", "Target", "MinSet", "MaxSet")


@dataclass(frozen=True, slots=True)
class VariableSpec:
    """One variable of the device model, as every station of the fleet has it."""

    component: str
    variable: str
    data_type: str
    default: str
    mutability: str = "ReadWrite"
    component_instance: str | None = None
    evse_id: int | None = None
    connector_id: int | None = None
    variable_instance: str | None = None
    unit: str | None = None
    min_limit: float | None = None
    max_limit: float | None = None
    values_list: tuple[str, ...] = ()
    #: Reads the live value from the station instead of a stored one.
    reader: Callable[[Any], str] | None = None
    #: Whether a monitor may be set on the variable (variableCharacteristics.supportsMonitoring);
    #: None: a stored value may be watched (it changes only when set), a live one (`reader`)
    #: only where its owner says the station sees it change.
    supports_monitoring: bool | None = None
    #: Whether a new value takes effect only after the next reboot (SetVariables answers
    #: RebootRequired and the value in effect stays until then).
    reboot_required: bool = False
    #: Read-only attributes besides Actual, as (type, value): the MaxSet of an EVSE's power.
    other_attributes: tuple[tuple[str, str], ...] = ()
    #: Whether a scenario may set the value although the CSMS may not (a read-only variable
    #: that station code reads, such as DeviceDataCtrlr.ItemsPerMessage).
    configurable: bool = False
    #: A rule of the variable's own beyond its data type (SecurityCtrlr.BasicAuthPassword's
    #: passwordString): why a value breaks it, or None.
    check: Callable[[str], str | None] | None = None

    @property
    def key(self) -> VariableKey:
        return (
            self.component,
            self.component_instance,
            self.evse_id,
            self.connector_id,
            self.variable,
            self.variable_instance,
        )

    def component_json(self) -> dict[str, Any]:
        component: dict[str, Any] = {"name": self.component}
        if self.component_instance is not None:
            component["instance"] = self.component_instance
        if self.evse_id is not None:
            evse: dict[str, Any] = {"id": self.evse_id}
            if self.connector_id is not None:
                evse["connectorId"] = self.connector_id
            component["evse"] = evse
        return component

    @property
    def monitorable(self) -> bool:
        """Whether a monitor may be set on the variable (see `supports_monitoring`)."""
        if self.supports_monitoring is not None:
            return self.supports_monitoring
        return self.reader is None and self.mutability != "WriteOnly"

    def variable_json(self) -> dict[str, Any]:
        variable: dict[str, Any] = {"name": self.variable}
        if self.variable_instance is not None:
            variable["instance"] = self.variable_instance
        return variable

    def characteristics_json(self) -> dict[str, Any]:
        characteristics: dict[str, Any] = {
            "dataType": self.data_type,
            "supportsMonitoring": self.monitorable,
        }
        if self.unit is not None:
            characteristics["unit"] = self.unit
        if self.min_limit is not None:
            characteristics["minLimit"] = self.min_limit
        if self.max_limit is not None:
            characteristics["maxLimit"] = self.max_limit
        if self.values_list:
            characteristics["valuesList"] = ",".join(self.values_list)
        return characteristics

    def check_value(self, value: str) -> str | None:
        """Why `value` cannot be set (a reason for SetVariableResult), or None if it can."""
        shown = value if len(value) <= 40 else value[:40] + "..."
        if self.data_type == "integer" or self.data_type == "decimal":
            try:
                number = int(value) if self.data_type == "integer" else float(value)
            except ValueError:
                kind = "an integer" if self.data_type == "integer" else "a number"
                return f"{shown!r} is not {kind}"
            if self.min_limit is not None and number < self.min_limit:
                return f"{value} is below the minimum {self.min_limit:g}"
            if self.max_limit is not None and number > self.max_limit:
                return f"{value} is above the maximum {self.max_limit:g}"
        elif self.data_type == "boolean":
            if value not in ("true", "false"):
                return f"{shown!r} is not true or false"
        elif self.data_type == "OptionList":
            if value not in self.values_list:
                return f"{shown!r} is not one of {','.join(self.values_list)}"
        elif self.data_type in ("MemberList", "SequenceList"):
            members = [member for member in value.split(",") if member]
            unknown = [member for member in members if member not in self.values_list]
            if unknown:
                return f"{','.join(unknown)[:40]} not in {','.join(self.values_list)}"
        if self.check is not None:
            return self.check(value)
        return None


def _members(value: str) -> tuple[str, ...]:
    return tuple(member for member in value.split(",") if member)


#: How `DeviceModel.integer`, `boolean` and `members` convert a stored string.
_CONVERSIONS: dict[str, Callable[[str], Any]] = {
    "int": int,
    "bool": lambda value: value == "true",
    "members": _members,
}


@dataclass(frozen=True, slots=True)
class AttributeResult:
    """The outcome of reading or writing one variable attribute."""

    status: str
    value: str | None = None
    reason: str | None = None


class DeviceModelSpec:
    """The variables every station of a fleet shares, indexed for lookup."""

    def __init__(self, variables: Iterable[VariableSpec]) -> None:
        self.variables: tuple[VariableSpec, ...] = tuple(variables)
        self._by_key: dict[VariableKey, VariableSpec] = {}
        #: Defaults already converted, by conversion and key: station code reads the same few
        #: variables (TxUpdatedInterval, the measurands, MessageAttempts) for every message,
        #: and a fleet shares one spec, so each is converted once for all stations.  A
        #: variable read live from the station is cached as None (it has no fixed default).
        self.int_defaults: dict[VariableKey, int | None] = {}
        self.bool_defaults: dict[VariableKey, bool | None] = {}
        self.members_defaults: dict[VariableKey, tuple[str, ...] | None] = {}
        self._parsed_defaults: dict[str, dict[VariableKey, Any]] = {
            "int": self.int_defaults,
            "bool": self.bool_defaults,
            "members": self.members_defaults,
        }
        self._components: set[tuple[str, str | None, int | None, int | None]] = set()
        for spec in self.variables:
            if spec.key in self._by_key:
                raise ValueError(f"device model variable defined twice: {spec.key}")
            self._by_key[spec.key] = spec
            self._components.add(spec.key[:4])

    def find(self, key: VariableKey) -> VariableSpec | None:
        return self._by_key.get(key)

    def has_component(self, key: VariableKey) -> bool:
        return key[:4] in self._components

    def parsed_default(self, key: VariableKey, kind: str) -> Any:
        """The default of `key` converted as `kind` (int, bool or members), or None for a
        variable read live from the station (it has no fixed default)."""
        parsed = self._parsed_defaults[kind]
        try:
            return parsed[key]
        except KeyError:
            pass
        spec = self._by_key.get(key)
        if spec is None:
            raise KeyError(f"no device model variable {key}")
        value = None if spec.reader is not None else _CONVERSIONS[kind](spec.default)
        parsed[key] = value
        return value

    def matching(
        self,
        component_variables: Iterable[Mapping[str, Any]] = (),
        component_criteria: Iterable[str] = (),
        values: Callable[[VariableSpec], str] | None = None,
    ) -> list[VariableSpec]:
        """The variables a custom report (B08) names, in the device model's order.

        A ComponentVariableType names a component by name; a field it leaves out (instance,
        EVSE, connector, the variable, the variable's instance) matches any, so
        `{"component": {"name": "EVSE"}}` is every variable of every EVSE.  A criterion
        (Active, Available, Enabled, Problem) keeps the components whose variable of that name
        reads "true" (`values` gives a variable's value in effect).  With both, a variable must
        satisfy both.
        """
        wanted = list(component_variables)
        chosen = [
            spec
            for spec in self.variables
            if not wanted or any(names_variable(item, spec) for item in wanted)
        ]
        criteria = set(component_criteria)
        if not criteria:
            return chosen
        if values is None:
            raise ValueError("component criteria need the values of the variables")
        flagged: set[tuple[str, str | None, int | None, int | None]] = set()
        for spec in self.variables:
            if spec.variable in criteria and values(spec) == "true":
                flagged.add(spec.key[:4])
        return [spec for spec in chosen if spec.key[:4] in flagged]

    def lookup(self, component: Mapping[str, Any], variable: Mapping[str, Any]) -> VariableKey:
        """The key of an OCPP ComponentType/VariableType pair."""
        evse = component.get("evse")
        return (
            component["name"],
            component.get("instance"),
            evse["id"] if evse else None,
            evse.get("connectorId") if evse else None,
            variable["name"],
            variable.get("instance"),
        )


def names_variable(item: Mapping[str, Any], spec: VariableSpec) -> bool:
    """Whether a ComponentVariableType names `spec` (a field left out matches any)."""
    component = item["component"]
    if component["name"] != spec.component:
        return False
    instance = component.get("instance")
    if instance is not None and instance != spec.component_instance:
        return False
    evse = component.get("evse")
    if evse is not None:
        if evse["id"] != spec.evse_id:
            return False
        connector_id = evse.get("connectorId")
        if connector_id is not None and connector_id != spec.connector_id:
            return False
    variable = item.get("variable")
    if variable is None:
        return True
    if variable["name"] != spec.variable:
        return False
    variable_instance = variable.get("instance")
    return variable_instance is None or variable_instance == spec.variable_instance


@dataclass(slots=True)
class DeviceModel:
    """One station's device model: the shared spec plus the values that were changed."""

    spec: DeviceModelSpec
    owner: Any = None
    changed: dict[VariableKey, str] = field(default_factory=dict)
    #: Called with the key after the value in effect of a stored variable changed (the CSMS
    #: set it, or a pending value took effect after a reboot), so its effect applies at once.
    on_change: Callable[[VariableKey], None] | None = None
    #: Values set for variables that take effect after the next reboot; None (no dictionary)
    #: on a station that has none.
    pending: dict[VariableKey, str] | None = None

    def value(self, spec: VariableSpec) -> str:
        if spec.reader is not None:
            return spec.reader(self.owner)
        return self.changed.get(spec.key, spec.default)

    def get_key(self, key: VariableKey) -> str:
        spec = self.spec.find(key)
        if spec is None:
            raise KeyError(f"no device model variable {key}")
        return self.value(spec)

    def get(
        self,
        component: str,
        variable: str,
        *,
        variable_instance: str | None = None,
        evse_id: int | None = None,
        connector_id: int | None = None,
    ) -> str:
        return self.get_key((component, None, evse_id, connector_id, variable, variable_instance))

    def _converted(self, key: VariableKey, kind: str) -> Any:
        """The value of `key` converted as `kind`: the spec's cached default unless this
        station has its own value (or the variable is read live)."""
        changed = self.changed.get(key)
        if changed is None:
            parsed = self.spec.parsed_default(key, kind)
            if parsed is not None:
                return parsed
            changed = self.get_key(key)
        return _CONVERSIONS[kind](changed)

    # `integer`, `boolean` and `members` run for nearly every message a station sends, so
    # each converts this station's own value or takes the spec's converted default in place
    # (`_CONVERSIONS` written out), leaving the first read and live values to `_converted`.

    def integer(self, component: str, variable: str, variable_instance: str | None = None) -> int:
        key = (component, None, None, None, variable, variable_instance)
        changed = self.changed.get(key)
        if changed is not None:
            return int(changed)
        found: int | None = self.spec.int_defaults.get(key)
        if found is not None:
            return found
        value: int = self._converted(key, "int")
        return value

    def boolean(self, component: str, variable: str, variable_instance: str | None = None) -> bool:
        key = (component, None, None, None, variable, variable_instance)
        changed = self.changed.get(key)
        if changed is not None:
            return changed == "true"
        found: bool | None = self.spec.bool_defaults.get(key)
        if found is not None:
            return found
        value: bool = self._converted(key, "bool")
        return value

    def members(self, component: str, variable: str) -> tuple[str, ...]:
        key = (component, None, None, None, variable, None)
        changed = self.changed.get(key)
        if changed is not None:
            return _members(changed)
        found: tuple[str, ...] | None = self.spec.members_defaults.get(key)
        if found is not None:
            return found
        value: tuple[str, ...] = self._converted(key, "members")
        return value

    def store(self, key: VariableKey, value: str) -> None:
        """Keep `value` for `key` without the checks and effects of `write` (what the station
        itself sets, such as the interval a BootNotification answer gives); a value equal to
        the default is not stored, so an untouched station holds nothing of its own."""
        spec = self.spec.find(key)
        if spec is None:
            raise KeyError(f"no device model variable {key}")
        if value == spec.default:
            self.changed.pop(key, None)
        else:
            self.changed[key] = value

    def read(self, key: VariableKey, attribute_type: str = "Actual") -> AttributeResult:
        """GetVariables for one variable (B06)."""
        spec = self.spec.find(key)
        if spec is None:
            status = "UnknownVariable" if self.spec.has_component(key) else "UnknownComponent"
            return AttributeResult(status)
        if attribute_type != "Actual":
            for other_type, other_value in spec.other_attributes:
                if other_type == attribute_type:
                    return AttributeResult("Accepted", other_value)
            return AttributeResult("NotSupportedAttributeType")
        if spec.mutability == "WriteOnly":
            return AttributeResult("Rejected", reason="WriteOnly")
        return AttributeResult("Accepted", self.value(spec))

    def write(
        self, key: VariableKey, value: str, attribute_type: str = "Actual"
    ) -> AttributeResult:
        """SetVariables for one variable (B05); a change takes effect through `on_change`."""
        spec = self.spec.find(key)
        if spec is None:
            status = "UnknownVariable" if self.spec.has_component(key) else "UnknownComponent"
            return AttributeResult(status)
        if attribute_type != "Actual":
            if any(other_type == attribute_type for other_type, _ in spec.other_attributes):
                return AttributeResult("Rejected", reason="ReadOnly")
            return AttributeResult("NotSupportedAttributeType")
        if spec.mutability == "ReadOnly" or spec.reader is not None:
            return AttributeResult("Rejected", reason="ReadOnly")
        problem = spec.check_value(value)
        if problem is not None:
            return AttributeResult("Rejected", reason=problem)
        if spec.reboot_required:
            pending = self.pending
            if value == self.value(spec):
                if pending is not None:
                    pending.pop(spec.key, None)
                return AttributeResult("Accepted")  # already in effect: nothing waits
            if pending is None:
                pending = self.pending = {}
            pending[spec.key] = value
            return AttributeResult("RebootRequired")
        if value == spec.default:
            self.changed.pop(key, None)
        else:
            self.changed[key] = value
        if self.on_change is not None:
            self.on_change(key)
        return AttributeResult("Accepted")

    def pending_value(self, key: VariableKey) -> str | None:
        """The value set for `key` that takes effect after the next reboot, if any."""
        return None if self.pending is None else self.pending.get(key)

    def apply_pending(self) -> list[VariableKey]:
        """Put the values waiting for a reboot into effect (the station has just rebooted);
        the keys whose value changed, each announced through `on_change`."""
        pending = self.pending
        if not pending:
            return []
        self.pending = None
        for key, value in pending.items():
            self.store(key, value)
            if self.on_change is not None:
                self.on_change(key)
        return list(pending)

    def report(self, report_base: str) -> Iterator[dict[str, Any]]:
        """ReportDataType entries for GetBaseReport (B07)."""
        for spec in self.spec.variables:
            if report_base == "ConfigurationInventory" and spec.mutability == "ReadOnly":
                continue
            if report_base == "SummaryInventory" and spec.variable != "AvailabilityState":
                continue
            yield self.report_entry(spec)

    def report_entry(self, spec: VariableSpec) -> dict[str, Any]:
        """The ReportDataType of one variable: its attributes and characteristics."""
        attribute: dict[str, Any] = {"type": "Actual", "mutability": spec.mutability}
        if spec.mutability != "WriteOnly":
            attribute["value"] = self.value(spec)
        attributes = [attribute]
        for other_type, other_value in spec.other_attributes:
            attributes.append({"type": other_type, "value": other_value, "mutability": "ReadOnly"})
        return {
            "component": spec.component_json(),
            "variable": spec.variable_json(),
            "variableAttribute": attributes,
            "variableCharacteristics": spec.characteristics_json(),
        }
