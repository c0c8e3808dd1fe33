"""The registry: every block of `blocks.BLOCKS` merged into the tables a station dispatches by.

Merging happens once per process (the blocks are module constants) and the device model once
per station configuration, so a fleet of 30,000 stations shares one `StationSpec`.  Merging
refuses a block list in which two blocks claim the same action, trigger, variable or hook:
that would make which one answers depend on the order of a list.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .blocks import BLOCKS
from .components import component_variables
from .config import StationConfig
from .core import Block, Event, Handler, LimitShaper, Reaction, Trigger
from .device_model import DeviceModelSpec, VariableKey, VariableSpec

__all__ = [
    "Registry",
    "RegistryError",
    "StationSpec",
    "default_registry",
    "station_spec",
    "with_scenario_values",
]


class RegistryError(ValueError):
    """Two blocks claim the same thing, or a block claims something malformed."""


#: What merging says when two blocks claim one action, trigger or hook.
_CLAIMED_TWICE = {
    "action": "{key} is claimed by block {first.name} ({first.letter}) and by block "
    "{second.name} ({second.letter})",
    "trigger": "TriggerMessage {key} is claimed by block {first.name} and by block {second.name}",
    "hook": "the {key} hook is provided by block {first.name} and by block {second.name}",
}


@dataclass(frozen=True)
class Registry:
    """What a list of blocks answers, triggers, owns and reacts to, merged."""

    blocks: tuple[Block[Any], ...]
    handlers: Mapping[str, Handler]
    #: Which block answers each action.
    handler_owner: Mapping[str, Block[Any]]
    triggers: Mapping[str, Trigger]
    reactions: Mapping[type[Event], tuple[Reaction, ...]]
    hooks: Mapping[str, Any]
    #: Every block's `shape_limit`, in the registry's order, with the name of the block whose
    #: state it needs (`Block.needs_state`; None: it runs on every station).
    limit_shapers: tuple[tuple[str | None, LimitShaper], ...] = ()
    #: Hook name -> the name of the block whose state it needs (`Block.needs_state`).
    hook_needs_state: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def merge(cls, blocks: Sequence[Block[Any]]) -> Registry:
        handlers: dict[str, Handler] = {}
        owners: dict[str, Block[Any]] = {}
        triggers: dict[str, Trigger] = {}
        reactions: dict[type[Event], list[Reaction]] = {}
        hooks: dict[str, Any] = {}
        shapers: list[tuple[str | None, LimitShaper]] = []
        hook_needs_state: dict[str, str] = {}
        names: set[str] = set()
        claimed: dict[tuple[str, str], Block[Any]] = {}

        def claim(kind: str, key: str, block: Block[Any]) -> None:
            other = claimed.setdefault((kind, key), block)
            if other is not block:
                raise RegistryError(_CLAIMED_TWICE[kind].format(key=key, first=other, second=block))

        for block in blocks:
            if block.name in names:
                raise RegistryError(f"two blocks are named {block.name!r}")
            names.add(block.name)
            for action, handler in block.handlers.items():
                claim("action", action, block)
                handlers[action] = handler
                owners[action] = block
            for requested, trigger in block.triggers.items():
                claim("trigger", requested, block)
                triggers[requested] = trigger
            for event_type, reaction in block.reactions.items():
                reactions.setdefault(event_type, []).append(reaction)
            for hook_name, hook in block.hooks.items():
                claim("hook", hook_name, block)
                hooks[hook_name] = hook
                if block.needs_state:
                    hook_needs_state[hook_name] = block.name
            if block.shape_limit is not None:
                shapers.append((block.name if block.needs_state else None, block.shape_limit))
        return cls(
            blocks=tuple(blocks),
            handlers=handlers,
            handler_owner=owners,
            triggers=triggers,
            reactions={kind: tuple(found) for kind, found in reactions.items()},
            hooks=hooks,
            limit_shapers=tuple(shapers),
            hook_needs_state=hook_needs_state,
        )

    def variables(self, config: StationConfig) -> list[VariableSpec]:
        """The station's components and every block's variables, each defined once."""
        found = component_variables(config)
        owners: dict[VariableKey, str] = {spec.key: "the station" for spec in found}
        for block in self.blocks:
            if block.variables is None:
                continue
            for spec in block.variables(config):
                if spec.key in owners:
                    raise RegistryError(
                        f"device model variable {spec.key} is declared by {owners[spec.key]} "
                        f"and by block {block.name}"
                    )
                owners[spec.key] = f"block {block.name}"
                found.append(spec)
        if config.variable_values:
            found = with_scenario_values(found, config.variable_values)
        return found


#: `Component.Variable` or `Component.Variable[Instance]`, as a scenario names a variable.
_VARIABLE_NAME = re.compile(
    r"^(?P<component>[A-Za-z0-9_]+)\.(?P<variable>[A-Za-z0-9_]+)"
    r"(?:\[(?P<instance>[A-Za-z0-9_.]+)\])?$"
)


def with_scenario_values(
    variables: list[VariableSpec], values: Sequence[tuple[str, str]]
) -> list[VariableSpec]:
    """`variables` with the defaults the scenario sets (stations.variables).

    A scenario may set what the CSMS may set, and the read-only values station code acts on
    (`VariableSpec.configurable`), checked as SetVariables would check them; the rest are
    facts about the station (its model, its EVSEs) that come from the scenario's other fields.
    """
    by_key = {spec.key: index for index, spec in enumerate(variables)}
    found = list(variables)
    for name, value in values:
        match = _VARIABLE_NAME.match(name)
        if match is None:
            raise RegistryError(
                f"stations.variables: {name!r} is not a variable name; write "
                "Component.Variable or Component.Variable[Instance], e.g. "
                "OCPPCommCtrlr.HeartbeatInterval or DeviceDataCtrlr.ItemsPerMessage[GetReport]"
            )
        key = (match["component"], None, None, None, match["variable"], match["instance"])
        index = by_key.get(key)
        if index is None:
            raise RegistryError(f"stations.variables: the device model has no variable {name}")
        spec = found[index]
        if spec.reader is not None or (spec.mutability == "ReadOnly" and not spec.configurable):
            raise RegistryError(
                f"stations.variables: {name} is read-only and describes the station itself; "
                "set it through the scenario's station fields, if at all"
            )
        problem = spec.check_value(value)
        if problem is not None:
            raise RegistryError(f"stations.variables: {name}: {problem}")
        found[index] = dataclasses.replace(spec, default=value)
    return found


@dataclass(frozen=True)
class StationSpec:
    """What every station of one configuration shares: the registry and the device model."""

    config: StationConfig
    registry: Registry
    device_model: DeviceModelSpec


@functools.cache
def default_registry() -> Registry:
    """The registry of every block fleetsim has (`blocks.BLOCKS`)."""
    return Registry.merge(BLOCKS)


@functools.cache
def station_spec(config: StationConfig) -> StationSpec:
    """The shared spec of the stations built from `config`, built on first use."""
    registry = default_registry()
    return StationSpec(config, registry, DeviceModelSpec(registry.variables(config)))
