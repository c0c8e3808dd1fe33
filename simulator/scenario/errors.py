"""`ScenarioError`, and pydantic's errors worded for someone editing the YAML.

A problem is one line that names where it is (file and line, or the command line) and the
field, in the dotted form a reader finds in the file (`stations.evses[1].phases`), then says
what is wrong and, where it can, how to fix it.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Sequence
from typing import Annotated, Any, Union, get_args, get_origin

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
        kept.append((_untagged(loc, root_model), _message(error, root_model)))
    return kept


def _untagged(loc: Loc, root_model: type[BaseModel]) -> Loc:
    """`loc` without the tag pydantic puts after the index of a tagged union's item, where the
    file has no key (`faults[1].drop.at` is `faults[1].at`)."""
    for at in range(1, len(loc) - 1):
        if isinstance(loc[at], int) and isinstance(loc[at + 1], str):
            items = _annotation_at(root_model, loc[: at + 1])
            if items is not None and _tagged_member(items, str(loc[at + 1])) is not None:
                return (*loc[: at + 1], *loc[at + 2 :])
    return loc


def _annotation_at(root_model: type[BaseModel], loc: Sequence[str | int]) -> Any:
    """The annotation of the value at `loc` (model fields and list items only), or None."""
    annotation: Any = root_model
    for element in loc:
        annotation = _unwrap(annotation)
        if isinstance(element, int):
            if get_origin(annotation) not in (tuple, list):
                return None
            annotation = get_args(annotation)[0]
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(element)
            if field is None:
                return None
            annotation = field.annotation
        else:
            return None
    return annotation


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
        elif _tagged_member(annotation, element) is not None:
            annotation = _tagged_member(annotation, element)
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(element)
            if field is None:
                return []
            annotation = field.annotation
        else:
            return []
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        # The keys as the file spells them (`for`, not the field `for_`).
        return [field.alias or name for name, field in annotation.model_fields.items()]
    return []


def _tagged_member(annotation: Any, tag: str) -> Any:
    """The model of a tagged union (`Annotated[A | B, Field(discriminator="kind")]`) whose
    `kind` is `tag`, or None."""
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) not in (Union, types.UnionType):
        return None
    for member in get_args(annotation):
        if isinstance(member, type) and issubclass(member, BaseModel):
            kind = member.model_fields.get("kind")
            if kind is not None and tag in get_args(kind.annotation):
                return member
    return None


def _unwrap(annotation: Any) -> Any:
    """`X | None` as X."""
    if get_origin(annotation) in (Union, types.UnionType):
        members = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(members) == 1:
            return members[0]
    return annotation
