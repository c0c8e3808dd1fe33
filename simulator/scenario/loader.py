"""`load_scenario`: a YAML file becomes a `Scenario`, or a `ScenarioError` that points at lines.

`load_scenario` parses the YAML once, keeps the node tree for its line marks, and maps each
pydantic error location (`stations.evses[1].phases`) back to the line that holds it.  An unknown
key is reported on its own line; a missing key, or a problem with a whole section, on the line of
the key that opens the section, because that is where a reader adds or fixes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .base import Loc
from .errors import ScenarioError, dotted, user_errors
from .root import Scenario

__all__ = ["load_scenario"]


def load_scenario(path: Path) -> Scenario:
    """Read and validate a scenario file; every problem becomes one line of a `ScenarioError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ScenarioError([f"{path}: no such file"]) from exc
    except IsADirectoryError as exc:
        raise ScenarioError([f"{path}: is a directory, not a scenario file"]) from exc
    except UnicodeDecodeError as exc:
        raise ScenarioError([f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})"]) from exc
    except OSError as exc:
        raise ScenarioError([f"{path}: cannot read the file: {exc.strerror}"]) from exc

    root, data, duplicates = _parse_yaml(path, text)
    if root is None:
        raise ScenarioError(
            [f"{path}: the file is empty; a scenario needs at least name and stations"]
        )
    if not isinstance(data, dict):
        raise ScenarioError(
            [
                f"{path}:{root.start_mark.line + 1} the scenario must be a mapping of keys "
                f"(name: ..., stations: ...), not a {type(data).__name__}"
            ]
        )

    problems = duplicates
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        for loc, message in user_errors(exc, Scenario):
            line = _line_of(root, loc)
            problems.append((line, f"{path}:{line} {dotted(loc)}: {message}"))
    if problems:
        raise ScenarioError([text for _, text in sorted(problems, key=lambda p: p[0])])
    return scenario


def _parse_yaml(path: Path, text: str) -> tuple[yaml.Node | None, Any, list[tuple[int, str]]]:
    """The node tree (for line marks), the data, and the repeated keys, from one safe parse."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None, None, []
        # Before construction, which folds `<<` merge keys into the mapping that uses them.
        duplicates = _duplicate_keys(path, root)
        data = loader.construct_document(root)
        return root, data, duplicates
    except yaml.MarkedYAMLError as exc:
        raise ScenarioError([_yaml_problem(path, exc)]) from exc
    except yaml.YAMLError as exc:
        raise ScenarioError([f"{path}: invalid YAML: {exc}"]) from exc
    finally:
        loader.dispose()


def _yaml_problem(path: Path, exc: yaml.MarkedYAMLError) -> str:
    """The parser's problem at its line and column, with what it was parsing when it matters."""
    mark = exc.problem_mark or exc.context_mark
    where = (
        f"{path}:{mark.line + 1} invalid YAML at column {mark.column + 1}" if mark else str(path)
    )
    problem = exc.problem or exc.context or "cannot parse"
    if not (exc.problem and exc.context):
        return f"{where}: {problem}"
    if problem.startswith("but "):  # "expected a single document in the stream, but found ..."
        return f"{where}: {exc.context}, {problem}"
    context_mark = exc.context_mark
    if context_mark is not None and (mark is None or context_mark.line != mark.line):
        return f"{where}: {problem} ({exc.context} that starts at line {context_mark.line + 1})"
    return f"{where}: {problem} ({exc.context})"


def _duplicate_keys(path: Path, root: yaml.Node) -> list[tuple[int, str]]:
    """YAML keeps the last of two equal keys silently; a scenario author wants to hear of it."""
    problems: list[tuple[int, str]] = []
    seen_nodes: set[int] = set()

    def visit(node: yaml.Node, loc: Loc) -> None:
        if id(node) in seen_nodes:  # an alias, possibly recursive
            return
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first_line: dict[str, int] = {}
            for key, value in node.value:
                if not isinstance(key, yaml.ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
                    continue
                line = key.start_mark.line + 1
                if key.value in first_line:
                    problems.append(
                        (
                            line,
                            f"{path}:{line} {dotted((*loc, key.value))}: duplicate key (first "
                            f"given at line {first_line[key.value]}); YAML keeps only the last, "
                            "so remove one",
                        )
                    )
                else:
                    first_line[key.value] = line
                visit(value, (*loc, key.value))
        elif isinstance(node, yaml.SequenceNode):
            for number, item in enumerate(node.value):
                visit(item, (*loc, number))

    visit(root, ())
    return problems


def _line_of(root: yaml.Node, loc: Sequence[str | int]) -> int:
    """The 1-based line to blame for an error at `loc`.

    The walk follows `loc` as far as the YAML goes.  A value reached through a key is blamed on
    the key's line (the same line for a scalar; the line that opens a section for a mapping or
    a list), so an unknown key is reported on its own line, a missing key at the key of its
    section, and an error about a whole section at the line that names it.  List items are
    blamed on their own line.
    """
    node = root
    line = root.start_mark.line
    for element in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for key, value in reversed(node.value):
                if isinstance(key, yaml.ScalarNode) and key.value == str(element):
                    child, line = value, key.start_mark.line
                    break
        elif (
            isinstance(node, yaml.SequenceNode)
            and isinstance(element, int)
            and 0 <= element < len(node.value)
        ):
            child = node.value[element]
            line = child.start_mark.line
        if child is None:
            break
        node = child
    return line + 1
