"""`ScenarioError`, and pydantic's errors worded for someone editing the YAML.

A problem is one line that names where it is (file and line, or the command line) and the
field, in the dotted form a reader finds in the file (`stations.evses[1].phases`), then says
what is wrong and, where it can, how to fix it.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Sequence
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from .base import Loc

__all__ = ["ScenarioError", "dotted", "user_errors"]


class ScenarioError(Exception):
    """A scenario cannot be used; `problems` holds one line per problem, ready to print.

    Each line names the file and line (or the command line) and the field, then says what is
    wrong: `scenarios/x.yaml:14 stations.count: Input should be greater than or equal to 1`.
    """

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))


def dotted(loc: Sequence[str | int]) -> str:
    """`("stations", "evses", 1, "phases")` as `stations.evses[1].phases`."""
    text = ""
    for element in loc:
        if isinstance(element, int):
            text += f"[{element}]"
        else:
            text += f".{element}" if text else element
    return text or "(top level)"


def user_errors(exc: ValidationError, root_model: type[BaseModel]) -> list[tuple[Loc, str]]:
    """Pydantic's errors as (location, message), worded for someone editing YAML.

    `root_model` is the model that was validated; its fields name the keys an unknown key may
    have meant.  A list whose items failed is also reported by pydantic as too short (the failed
    items do not count); that second error only repeats the first, so it is dropped.
    """
    errors = exc.errors(include_url=False)
    located = [tuple(error["loc"]) for error in errors]
    kept: list[tuple[Loc, str]] = []
    for error, loc in zip(errors, located, strict=True):
        if error["type"] == "too_short" and any(
            len(other) > len(loc) and other[: len(loc)] == loc for other in located
        ):
            continue
        kept.append((loc, _message(error, root_model)))
    return kept


def _message(error: Any, root_model: type[BaseModel]) -> str:
    """Pydantic's message, with a hint of the right key when the key is unknown.

    Sequences are tuples inside the models (so that a frozen scenario is immutable all the way
    down) but lists in YAML, so messages about them say "list".
    """
    kind = error["type"]
    if kind == "extra_forbidden":
        loc = tuple(error["loc"])
        allowed = _field_names_at(root_model, loc[:-1])
        key = str(loc[-1])
        close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
        if close:
            return f"unknown key; did you mean {close[0]}?"
        return "unknown key; expected one of " + ", ".join(allowed)
    if kind == "tuple_type":
        return "Input should be a list"
    if kind in ("too_short", "too_long"):
        context = error["ctx"]
        what = "List" if context["field_type"] == "Tuple" else context["field_type"]
        bound, limit = (
            ("at least", context["min_length"])
            if kind == "too_short"
            else ("at most", context["max_length"])
        )
        items = "item" if limit == 1 else "items"
        return f"{what} should have {bound} {limit} {items}, not {context['actual_length']}"
    message: str = error["msg"]
    return message.removeprefix("Value error, ")


def _field_names_at(root_model: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """The keys the model at `loc` accepts, by following the model classes down from the root."""
    annotation: Any = root_model
    for element in loc:
        annotation = _unwrap(annotation)
        if isinstance(element, int):
            if get_origin(annotation) not in (tuple, list):
                return []
            annotation = get_args(annotation)[0]
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(element)
            if field is None:
                return []
            annotation = field.annotation
        else:
            return []
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    """`X | None` as X."""
    if get_origin(annotation) in (Union, types.UnionType):
        members = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(members) == 1:
            return members[0]
    return annotation
