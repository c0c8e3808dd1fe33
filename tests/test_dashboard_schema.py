"""The dashboards and their provisioning files, checked the way Grafana reads them.

No Grafana server can be installed from the package registries this project uses (Grafana is
not packaged in Debian, and neither PyPI nor npm carries the server), so the dashboards are
checked against Grafana's own published schema instead: the npm package `@grafana/schema`
(Apache-2.0), the TypeScript types Grafana generates from its CUE kinds for the dashboard and
for each core panel plugin.  Every `dashboards/*.json` is written out as a TypeScript object
literal of the type `tests/grafana_schema/dashboard.ts` builds from those types, and the
TypeScript compiler checks it: a field of the wrong type, an unknown field, a missing required
field or a value outside an enumeration fails, reported by dashboard file and JSON path.
Where Grafana's CUE kind leaves a struct open (annotation queries and template variables, which
carry their datasource's fields), dashboard.ts leaves it open too and checks the named fields.
`make test` installs both packages (`npm ci` in tests/grafana_schema/); without them the check
fails with a sentence saying so.

The provisioning files are checked against the fields Grafana's provisioning reads (its
`apiVersion: 1` datasource and dashboard-provider configs), and the dashboard provider's path is
followed through the volume mounts of the `docker run` in dashboards/README.md to the
dashboards that Grafana would find there.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DASHBOARDS = ROOT / "dashboards"
DASHBOARD_FILES = sorted(DASHBOARDS.glob("*.json"))
PROVISIONING = DASHBOARDS / "provisioning"
SCHEMA_DIR = Path(__file__).resolve().parent / "grafana_schema"
SCHEMA_TYPES = SCHEMA_DIR / "dashboard.ts"
NODE_MODULES = SCHEMA_DIR / "node_modules"
TSC = NODE_MODULES / "typescript" / "bin" / "tsc"
INSTALL = (
    "`make test` installs them; by hand, run `npm ci --prefix tests/grafana_schema` "
    "(Node.js and npm are needed: `apt-get install nodejs npm` on Debian)"
)
#: Where Grafana's container reads provisioning files (its `paths.provisioning`).
GRAFANA_PROVISIONING = PurePosixPath("/etc/grafana/provisioning")
TSC_TIMEOUT_S = 120


# --- Dashboards as TypeScript, with the JSON path of every line ---------------------------------

_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")


def _child_path(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if _IDENTIFIER.fullmatch(key) else f"{path}[{json.dumps(key)}]"


def typescript_literal(value: Any) -> tuple[list[str], list[str]]:
    """`value` as the lines of a TypeScript object literal, and the JSON path each line is at.

    tsc reports an error by line; the path of that line names the field in the dashboard.
    """
    lines: list[str] = []
    paths: list[str] = []

    def emit(item: Any, path: str, depth: int, prefix: str, suffix: str) -> None:
        indent = "  " * depth
        if isinstance(item, dict) and item:
            lines.append(f"{indent}{prefix}{{")
            paths.append(path)
            for key, child in item.items():
                emit(child, _child_path(path, key), depth + 1, f"{json.dumps(key)}: ", ",")
            lines.append(f"{indent}}}{suffix}")
            paths.append(path)
        elif isinstance(item, list) and item:
            lines.append(f"{indent}{prefix}[")
            paths.append(path)
            for index, child in enumerate(item):
                emit(child, _child_path(path, index), depth + 1, "", ",")
            lines.append(f"{indent}]{suffix}")
            paths.append(path)
        else:
            lines.append(f"{indent}{prefix}{json.dumps(item)}{suffix}")
            paths.append(path)

    emit(value, "$", 0, "", "")
    return lines, paths


@dataclass(frozen=True)
class Checked:
    """One dashboard written for tsc: its name in messages, and the path of each line."""

    label: str
    dashboard: dict[str, Any]
    first_line: int
    paths: list[str]


def write_dashboard(directory: Path, stem: str, label: str, dashboard: dict[str, Any]) -> Checked:
    lines, paths = typescript_literal(dashboard)
    header = [
        f"import type {{ Dashboard }} from {json.dumps(str(SCHEMA_TYPES.with_suffix('')))};",
        f"export const dashboard: Dashboard = {lines[0]}",
    ]
    text = "\n".join([*header, *lines[1:]]) + ";\n"
    (directory / f"{stem}.ts").write_text(text, encoding="utf-8")
    # tsc counts lines from 1; the literal's first line shares the declaration's line.
    return Checked(label, dashboard, len(header), paths)


_TSC_ERROR = re.compile(r"^(?P<file>.+?)\((?P<line>\d+),(?P<col>\d+)\): error (?P<message>.*)$")
#: A printed object type, which can run to thousands of characters: shown as `{…}`.
_OBJECT_TYPE = re.compile(r"'(?:\{|Omit<)[^']*'")


def _shorten(message: str) -> str:
    return _OBJECT_TYPE.sub("'{…}'", message)


def _panel_hint(dashboard: dict[str, Any], path: str) -> str:
    """`(panel "Title")` when `path` lies inside a panel, so a reader finds it in Grafana."""
    match = re.match(r"\$\.panels\[(\d+)\](?:\.panels\[(\d+)\])?", path)
    if match is None:
        return ""
    try:
        panel = dashboard["panels"][int(match[1])]
        if match[2] is not None:
            panel = panel["panels"][int(match[2])]
        return f' (panel "{panel["title"]}")'
    except (KeyError, IndexError, TypeError):
        return ""


def _tsc_errors(output: str) -> Iterator[tuple[re.Match[str], str]]:
    """Each error tsc printed, with its most specific elaboration (its last indented line).

    For "Type '{…}' is not assignable to type 'Dashboard'" the elaboration is the reason:
    "Property 'schemaVersion' is missing ...".
    """
    current: re.Match[str] | None = None
    detail = ""
    for line in output.splitlines():
        match = _TSC_ERROR.match(line)
        if match is None:
            if current is not None and line.strip():
                detail = line.strip()
            continue
        if current is not None:
            yield current, detail
        current, detail = match, ""
    if current is not None:
        yield current, detail


def run_tsc(directory: Path, checked: Mapping[str, Checked]) -> dict[str, list[str]]:
    """Type-check every written dashboard at once; each one's problems, as sentences."""
    node = shutil.which("node")
    if node is None:
        pytest.fail(
            "Node.js is not installed, so the dashboards cannot be checked against Grafana's "
            f"schema: {INSTALL}."
        )
    for package in ("typescript", "@grafana/schema"):
        if not (NODE_MODULES / package / "package.json").is_file():
            pytest.fail(
                f"The npm package {package} is missing from tests/grafana_schema/node_modules, "
                f"so the dashboards cannot be checked against Grafana's schema: {INSTALL}."
            )
    wanted = json.loads((SCHEMA_DIR / "package.json").read_text())["devDependencies"]
    for package, version in wanted.items():
        installed = json.loads((NODE_MODULES / package / "package.json").read_text())["version"]
        if installed != version:
            pytest.fail(
                f"tests/grafana_schema has {package} {installed} installed but package.json "
                f"pins {version}: {INSTALL}."
            )
    config = {
        "compilerOptions": {
            "strict": True,
            "noEmit": True,
            "skipLibCheck": True,
            "types": [],
            "lib": ["es2022"],
            "target": "es2022",
            "module": "esnext",
            "moduleResolution": "bundler",
        },
        "files": [f"{stem}.ts" for stem in checked],
    }
    (directory / "tsconfig.json").write_text(json.dumps(config, indent=2))
    result = subprocess.run(
        [node, str(TSC), "--project", str(directory / "tsconfig.json"), "--pretty", "false"],
        capture_output=True,
        text=True,
        timeout=TSC_TIMEOUT_S,
        cwd=directory,
        check=False,
    )
    problems: dict[str, list[str]] = {stem: [] for stem in checked}
    unplaced: list[str] = []
    for match, detail in _tsc_errors(result.stdout):
        stem = Path(match["file"]).stem
        entry = checked.get(stem)
        index = int(match["line"]) - entry.first_line if entry else -1
        if entry is None or not 0 <= index < len(entry.paths):
            unplaced.append(match.string)
            continue
        path = entry.paths[index]
        hint = _panel_hint(entry.dashboard, path)
        message = match["message"] + (f" ({detail})" if detail else "")
        problems[stem].append(f"{entry.label}: {path}{hint}: {_shorten(message)}")
    if (
        unplaced
        or result.returncode not in (0, 1, 2)
        or (result.returncode and not any(problems.values()))
    ):
        pytest.fail(
            "tsc could not check the dashboards against Grafana's schema (is "
            f"tests/grafana_schema/dashboard.ts intact? {INSTALL}):\n"
            + "\n".join(unplaced or [result.stdout, result.stderr])
        )
    return problems


# --- Broken copies the check must reject -------------------------------------------------------

#: Where a breakage is, as a JSON path, and words the report of it must hold.
Broken = tuple[str, str]


def _panels(dashboard: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for index, panel in enumerate(dashboard["panels"]):
        yield f"$.panels[{index}]", panel
        for inner, nested in enumerate(panel.get("panels", [])):
            yield f"$.panels[{index}].panels[{inner}]", nested


def _first_panel(dashboard: dict[str, Any], panel_type: str) -> tuple[str, dict[str, Any]]:
    return next((path, panel) for path, panel in _panels(dashboard) if panel["type"] == panel_type)


def _gridpos_a_string(dashboard: dict[str, Any]) -> Broken:
    path, panel = _first_panel(dashboard, "timeseries")
    panel["gridPos"] = "x"
    return f"{path}.gridPos", "'string' is not assignable"


def _variable_of_unknown_type(dashboard: dict[str, Any]) -> Broken:
    dashboard["templating"]["list"][0]["type"] = "dropdown"
    return "$.templating.list[0].type", '"dropdown"'


def _no_schema_version(dashboard: dict[str, Any]) -> Broken:
    del dashboard["schemaVersion"]
    return "$", "'schemaVersion' is missing"


def _gridpos_without_height(dashboard: dict[str, Any]) -> Broken:
    path, panel = _first_panel(dashboard, "stat")
    del panel["gridPos"]["h"]
    return f"{path}.gridPos", "'h' is missing"


def _misspelt_panel_field(dashboard: dict[str, Any]) -> Broken:
    path, panel = _first_panel(dashboard, "timeseries")
    panel["fieldconfig"] = panel.pop("fieldConfig")
    return f"{path}.fieldconfig", "'\"fieldconfig\"' does not exist"


def _unknown_panel_plugin(dashboard: dict[str, Any]) -> Broken:
    path, panel = _first_panel(dashboard, "timeseries")
    panel["type"] = "timeseriez"
    return f"{path}.type", '"timeseriez"'


def _option_outside_its_enumeration(dashboard: dict[str, Any]) -> Broken:
    path, panel = _first_panel(dashboard, "stat")
    panel["options"]["colorMode"] = "rainbow"
    return f"{path}.options.colorMode", '"rainbow"'


def _custom_field_config_of_wrong_type(dashboard: dict[str, Any]) -> Broken:
    path, panel = _first_panel(dashboard, "timeseries")
    panel["fieldConfig"]["defaults"]["custom"]["lineWidth"] = "thick"
    return f"{path}.fieldConfig.defaults.custom.lineWidth", "to type 'number'"


def _target_without_ref_id(dashboard: dict[str, Any]) -> Broken:
    path, panel = _first_panel(dashboard, "timeseries")
    del panel["targets"][0]["refId"]
    return f"{path}.targets[0]", "'refId' is missing"


def _annotation_toggle_a_string(dashboard: dict[str, Any]) -> Broken:
    dashboard["annotations"]["list"][0]["enable"] = "yes"
    return "$.annotations.list[0].enable", "to type 'boolean'"


#: Each breaks a copy of a real dashboard in one place and returns the JSON path it broke.
BREAKAGES: dict[str, Callable[[dict[str, Any]], Broken]] = {
    "gridPos-a-string": _gridpos_a_string,
    "variable-of-unknown-type": _variable_of_unknown_type,
    "no-schemaVersion": _no_schema_version,
    "gridPos-without-height": _gridpos_without_height,
    "misspelt-panel-field": _misspelt_panel_field,
    "unknown-panel-plugin": _unknown_panel_plugin,
    "option-outside-its-enumeration": _option_outside_its_enumeration,
    "custom-field-config-of-wrong-type": _custom_field_config_of_wrong_type,
    "target-without-refId": _target_without_ref_id,
    "annotation-toggle-a-string": _annotation_toggle_a_string,
}
#: The dashboard the broken copies start from: it has every kind of part the breakages touch.
BROKEN_BASE = DASHBOARDS / "fleetsim-energy.json"


@dataclass(frozen=True)
class SchemaReport:
    problems: dict[str, list[str]]
    broken: dict[str, Broken]


@pytest.fixture(scope="module")
def schema_report(tmp_path_factory: pytest.TempPathFactory) -> SchemaReport:
    """One tsc run over every dashboard and every broken copy (tsc's start-up is most of it)."""
    directory = tmp_path_factory.mktemp("grafana-schema")
    checked: dict[str, Checked] = {}
    for number, path in enumerate(DASHBOARD_FILES):
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        checked[f"dashboard_{number}"] = write_dashboard(
            directory, f"dashboard_{number}", path.name, dashboard
        )
    broken_at: dict[str, Broken] = {}
    base = json.loads(BROKEN_BASE.read_text(encoding="utf-8"))
    for number, (name, breakage) in enumerate(BREAKAGES.items()):
        broken = copy.deepcopy(base)
        broken_at[name] = breakage(broken)
        label = f"{BROKEN_BASE.name} (broken copy: {name})"
        checked[f"broken_{number}"] = write_dashboard(directory, f"broken_{number}", label, broken)
    problems = run_tsc(directory, checked)
    by_name = {checked[stem].label: found for stem, found in problems.items()}
    return SchemaReport(by_name, broken_at)


def test_the_dashboards_folder_has_dashboards() -> None:
    assert DASHBOARD_FILES, "dashboards/ holds no *.json"


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda path: path.name)
def test_dashboard_matches_grafanas_schema(path: Path, schema_report: SchemaReport) -> None:
    problems = schema_report.problems[path.name]
    assert not problems, f"{path.name} does not match Grafana's dashboard schema:\n" + "\n".join(
        problems
    )


@pytest.mark.parametrize("name", sorted(BREAKAGES))
def test_a_broken_dashboard_is_rejected_at_its_path(name: str, schema_report: SchemaReport) -> None:
    label = f"{BROKEN_BASE.name} (broken copy: {name})"
    problems = schema_report.problems[label]
    path, words = schema_report.broken[name]
    assert problems, f"the schema check accepted {label}"
    at_path = [
        problem
        for problem in problems
        if problem.startswith((f"{label}: {path}: ", f"{label}: {path} (panel "))
    ]
    assert any(words in problem for problem in at_path), (
        f"no problem reported at {path} saying {words!r}:\n" + "\n".join(problems)
    )


def test_the_typescript_literal_maps_each_line_to_its_json_path() -> None:
    lines, paths = typescript_literal({"a": [1, {"b c": True}], "d": {}})
    assert dict(zip(lines, paths, strict=True)) == {
        "{": "$",
        '  "a": [': "$.a",
        "    1,": "$.a[0]",
        "    {": "$.a[1]",
        '      "b c": true,': '$.a[1]["b c"]',
        "    },": "$.a[1]",
        "  ],": "$.a",
        '  "d": {},': "$.d",
        "}": "$",
    }


# --- Provisioning ------------------------------------------------------------------------------

#: The fields Grafana's provisioning reads from an `apiVersion: 1` file, with their YAML types.
#: Grafana ignores a field it does not know, so a misspelt one would silently do nothing.
DATASOURCES_FILE_FIELDS: dict[str, type] = {
    "apiVersion": int,
    "datasources": list,
    "deleteDatasources": list,
    "prune": bool,
}
DATASOURCE_FIELDS: dict[str, type] = {
    "name": str,
    "type": str,
    "uid": str,
    "orgId": int,
    "version": int,
    "access": str,
    "url": str,
    "user": str,
    "database": str,
    "basicAuth": bool,
    "basicAuthUser": str,
    "withCredentials": bool,
    "isDefault": bool,
    "correlations": list,
    "jsonData": dict,
    "secureJsonData": dict,
    "editable": bool,
}
DATASOURCE_ACCESS = ("proxy", "direct")
DASHBOARDS_FILE_FIELDS: dict[str, type] = {"apiVersion": int, "providers": list}
PROVIDER_FIELDS: dict[str, type] = {
    "name": str,
    "type": str,
    "orgId": int,
    "folder": str,
    "folderUid": str,
    "editable": bool,
    "options": dict,
    "disableDeletion": bool,
    "updateIntervalSeconds": int,
    "allowUiUpdates": bool,
}
FILE_PROVIDER_OPTIONS: dict[str, type] = {"path": str, "foldersFromFilesStructure": bool}
#: Grafana's rule for a dashboard uid (at most 40 letters, digits, '-' and '_').
DASHBOARD_UID = re.compile(r"[A-Za-z0-9_-]{1,40}")


def _field_problems(
    where: str, found: Any, fields: Mapping[str, type], required: tuple[str, ...] = ()
) -> list[str]:
    if not isinstance(found, dict):
        return [f"{where}: is {type(found).__name__}, Grafana reads a mapping here"]
    problems = []
    for key, value in found.items():
        expected = fields.get(key)
        if expected is None:
            problems.append(
                f"{where}.{key}: Grafana's provisioning reads no such field (it reads "
                f"{', '.join(fields)})"
            )
        # bool is an int in Python; YAML's `true` is never a number to Grafana.
        elif not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            problems.append(
                f"{where}.{key}: is {type(value).__name__} {value!r}, Grafana reads "
                f"{expected.__name__}"
            )
    problems += [f"{where}: {key} is missing" for key in required if key not in found]
    return problems


def datasource_file_problems(name: str, config: Any) -> list[str]:
    """What Grafana's datasource provisioning would ignore, refuse or misread in `config`."""
    problems = _field_problems(name, config, DATASOURCES_FILE_FIELDS, ("apiVersion",))
    if problems or config["apiVersion"] != 1:
        return problems or [f"{name}.apiVersion: is {config['apiVersion']}, this layout is 1"]
    defaults: dict[int, list[str]] = {}
    for index, source in enumerate(config.get("datasources", [])):
        where = f"{name}.datasources[{index}]"
        found = _field_problems(where, source, DATASOURCE_FIELDS, ("name", "type"))
        problems += found
        if found:
            continue
        if source.get("access", "proxy") not in DATASOURCE_ACCESS:
            problems.append(f"{where}.access: is {source['access']!r}, Grafana knows proxy, direct")
        if source.get("isDefault"):
            defaults.setdefault(source.get("orgId", 1), []).append(source["name"])
    problems += [
        f"{name}: organisation {org} has {len(names)} default datasources ({', '.join(names)}); "
        "Grafana refuses more than one"
        for org, names in defaults.items()
        if len(names) > 1
    ]
    return problems


def dashboard_provider_problems(name: str, config: Any) -> list[str]:
    """What Grafana's dashboard provisioning would ignore, refuse or misread in `config`."""
    problems = _field_problems(name, config, DASHBOARDS_FILE_FIELDS, ("apiVersion", "providers"))
    if problems or config["apiVersion"] != 1:
        return problems or [f"{name}.apiVersion: is {config['apiVersion']}, this layout is 1"]
    names: set[str] = set()
    for index, provider in enumerate(config["providers"]):
        where = f"{name}.providers[{index}]"
        found = _field_problems(where, provider, PROVIDER_FIELDS, ("name", "options"))
        problems += found
        if found:
            continue
        if provider["name"] in names:
            problems.append(f"{where}.name: {provider['name']!r} names two providers")
        names.add(provider["name"])
        if provider.get("type", "file") != "file":
            problems.append(f"{where}.type: only the file provider is set up here")
            continue
        options = provider["options"]
        problems += _field_problems(f"{where}.options", options, FILE_PROVIDER_OPTIONS, ("path",))
        path = options.get("path")
        if isinstance(path, str) and not PurePosixPath(path).is_absolute():
            problems.append(f"{where}.options.path: {path!r} is relative to Grafana's working dir")
        if options.get("foldersFromFilesStructure") and (
            provider.get("folder") or provider.get("folderUid")
        ):
            problems.append(
                f"{where}: Grafana refuses folder or folderUid with foldersFromFilesStructure"
            )
    return problems


def provisioned_dashboard_problems(dashboards: Mapping[str, Any]) -> list[str]:
    """What Grafana's file provider refuses or warns about among the dashboards of one folder."""
    problems = []
    uids: dict[str, str] = {}
    titles: dict[str, str] = {}
    for name, dashboard in dashboards.items():
        title, uid = dashboard.get("title"), dashboard.get("uid")
        if not isinstance(title, str) or not title.strip():
            problems.append(f"{name}: has no title, which Grafana refuses to provision")
        elif title in titles:
            problems.append(f"{name}: title {title!r} is also {titles[title]}'s in the folder")
        else:
            titles[title] = name
        if not isinstance(uid, str) or not DASHBOARD_UID.fullmatch(uid):
            problems.append(f"{name}: uid {uid!r} is not 1 to 40 letters, digits, '-' or '_'")
        elif uid in uids:
            problems.append(f"{name}: uid {uid!r} is also {uids[uid]}'s")
        else:
            uids[uid] = name
    return problems


_DOCKER_RUN = re.compile(r"docker run (?:[^\n]*\\\n)*[^\n]*")
_VOLUME = re.compile(r'-v "\$PWD/([^":]+):([^":]+)(?::ro)?"')


def grafana_mounts(readme: str) -> dict[PurePosixPath, Path]:
    """The volumes of the README's `docker run ... grafana/grafana`: container path to file."""
    runs = [run for run in _DOCKER_RUN.findall(readme) if run.rstrip().endswith("grafana/grafana")]
    if len(runs) != 1:
        pytest.fail(
            f"dashboards/README.md should hold one `docker run` of Grafana, not {len(runs)}"
        )
    return {PurePosixPath(inside): ROOT / source for source, inside in _VOLUME.findall(runs[0])}


def mounted_files(
    mounts: Mapping[PurePosixPath, Path], directory: PurePosixPath
) -> dict[str, Path]:
    """The files Grafana's container sees in `directory`, by name, and where they come from."""
    seen: dict[str, Path] = {}
    for inside, source in mounts.items():
        if inside == directory and source.is_dir():
            seen.update({path.name: path for path in source.iterdir() if path.is_file()})
        elif inside.parent == directory:
            seen[inside.name] = source
    return seen


def provisioning_problems(mounts: Mapping[PurePosixPath, Path]) -> list[str]:
    """Everything wrong with what Grafana's container would provision from `mounts`."""
    problems = []
    dashboard_files = {path.name for path in DASHBOARD_FILES}
    datasource_types: set[str] = set()
    found_any = {"datasources": False, "dashboards": False}
    for kind in found_any:
        directory = GRAFANA_PROVISIONING / kind
        for name, source in sorted(mounted_files(mounts, directory).items()):
            if not name.endswith((".yaml", ".yml")):
                continue
            if not source.is_file():
                problems.append(f"{directory / name}: its source {source} does not exist")
                continue
            found_any[kind] = True
            config = yaml.safe_load(source.read_text(encoding="utf-8"))
            label = str(source.relative_to(ROOT) if source.is_relative_to(ROOT) else source)
            if kind == "datasources":
                problems += datasource_file_problems(label, config)
                datasource_types |= {
                    source["type"]
                    for source in config.get("datasources", [])
                    if isinstance(source, dict) and "type" in source
                }
                continue
            problems += dashboard_provider_problems(label, config)
            for provider in config.get("providers", []):
                path = provider.get("options", {}).get("path")
                if not isinstance(path, str):
                    continue
                visible = mounted_files(mounts, PurePosixPath(path))
                for missing in sorted(dashboard_files - visible.keys()):
                    problems.append(f"{label}: dashboards/{missing} is not mounted into {path}")
                provided = {}
                for name_in, file in sorted(visible.items()):
                    if not file.is_file():
                        problems.append(f"{path}/{name_in}: its source {file} does not exist")
                    elif name_in.endswith(".json"):
                        provided[name_in] = json.loads(file.read_text(encoding="utf-8"))
                problems += provisioned_dashboard_problems(provided)
    problems += [
        f"nothing is mounted as {kind} provisioning into {GRAFANA_PROVISIONING / kind}"
        for kind, found in found_any.items()
        if not found
    ]
    for path in DASHBOARD_FILES:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        for variable in dashboard.get("templating", {}).get("list", []):
            if variable.get("type") == "datasource" and variable.get("query") not in (
                datasource_types
            ):
                problems.append(
                    f"{path.name}: variable {variable.get('name')!r} lists "
                    f"{variable.get('query')!r} datasources, and none is provisioned "
                    f"(only {sorted(datasource_types)})"
                )
    return problems


@pytest.fixture(scope="module")
def mounts() -> dict[PurePosixPath, Path]:
    return grafana_mounts((DASHBOARDS / "README.md").read_text(encoding="utf-8"))


def test_provisioning_is_what_grafana_reads(mounts: dict[PurePosixPath, Path]) -> None:
    problems = provisioning_problems(mounts)
    assert not problems, "\n".join(problems)


def test_the_readme_mounts_every_provisioning_file() -> None:
    # Every YAML under dashboards/provisioning is one Grafana would read, so none is left out.
    mounts = grafana_mounts((DASHBOARDS / "README.md").read_text(encoding="utf-8"))
    for path in sorted(PROVISIONING.rglob("*.y*ml")):
        kind = path.parent.name
        assert path.name in mounted_files(mounts, GRAFANA_PROVISIONING / kind), path


def _datasource(config: dict[str, Any]) -> dict[str, Any]:
    source: dict[str, Any] = config["datasources"][0]
    return source


def _provider(config: dict[str, Any]) -> dict[str, Any]:
    provider: dict[str, Any] = config["providers"][0]
    return provider


#: A change to the datasource file (the YAML as loaded) and words its report must hold.
DATASOURCE_BREAKAGES: dict[str, tuple[Callable[[dict[str, Any]], object], str]] = {
    "misspelt-field": (
        lambda c: _datasource(c).update(isDefalt=_datasource(c).pop("isDefault")),
        "datasources[0].isDefalt: Grafana's provisioning reads no such field",
    ),
    "flag-a-string": (
        lambda c: _datasource(c).update(isDefault="yes"),
        "datasources[0].isDefault: is str 'yes', Grafana reads bool",
    ),
    "no-name": (lambda c: _datasource(c).pop("name"), "datasources[0]: name is missing"),
    "unknown-access": (
        lambda c: _datasource(c).update(access="browser"),
        "datasources[0].access: is 'browser'",
    ),
    "two-defaults": (
        lambda c: c["datasources"].append({**_datasource(c), "name": "Prometheus 2"}),
        "has 2 default datasources",
    ),
    "another-layout": (lambda c: c.update(apiVersion=2), "apiVersion: is 2, this layout is 1"),
    "not-prometheus": (
        lambda c: _datasource(c).update(type="loki"),
        "lists 'prometheus' datasources, and none is provisioned",
    ),
}
#: A change to the dashboard-provider file and words its report must hold.
PROVIDER_BREAKAGES: dict[str, tuple[Callable[[dict[str, Any]], object], str]] = {
    "misspelt-option": (
        lambda c: _provider(c)["options"].update(paht=_provider(c)["options"].pop("path")),
        "providers[0].options.paht: Grafana's provisioning reads no such field",
    ),
    "relative-path": (
        lambda c: _provider(c)["options"].update(path="dashboards"),
        "providers[0].options.path: 'dashboards' is relative",
    ),
    "folders-from-files-and-a-folder": (
        lambda c: _provider(c)["options"].update(foldersFromFilesStructure=True),
        "refuses folder or folderUid with foldersFromFilesStructure",
    ),
    "interval-a-string": (
        lambda c: _provider(c).update(updateIntervalSeconds="30s"),
        "providers[0].updateIntervalSeconds: is str '30s', Grafana reads int",
    ),
    "path-where-nothing-is-mounted": (
        lambda c: _provider(c)["options"].update(path="/var/lib/grafana/other"),
        "dashboards/fleetsim.json is not mounted into /var/lib/grafana/other",
    ),
}


def _with_config(
    mounts: dict[PurePosixPath, Path], kind: str, config: Any, directory: Path
) -> dict[PurePosixPath, Path]:
    """`mounts` with the provisioning folder of `kind` holding `config` alone."""
    (directory / f"{kind}.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    changed = {
        inside: source
        for inside, source in mounts.items()
        if inside != GRAFANA_PROVISIONING / kind and inside.parent != GRAFANA_PROVISIONING / kind
    }
    changed[GRAFANA_PROVISIONING / kind] = directory
    return changed


@pytest.mark.parametrize(
    ("kind", "name"),
    [("datasources", name) for name in DATASOURCE_BREAKAGES]
    + [("dashboards", name) for name in PROVIDER_BREAKAGES],
)
def test_a_broken_provisioning_file_is_rejected(
    kind: str, name: str, mounts: dict[PurePosixPath, Path], tmp_path: Path
) -> None:
    breakages = DATASOURCE_BREAKAGES if kind == "datasources" else PROVIDER_BREAKAGES
    breakage, words = breakages[name]
    (original,) = sorted(
        path for path in (PROVISIONING / kind).iterdir() if path.suffix in (".yaml", ".yml")
    )
    config = yaml.safe_load(original.read_text(encoding="utf-8"))
    assert not provisioning_problems(_with_config(mounts, kind, config, tmp_path))
    breakage(config)
    problems = provisioning_problems(_with_config(mounts, kind, config, tmp_path))
    assert any(words in problem for problem in problems), "\n".join(problems) or "no problems"


def test_a_dashboard_left_unmounted_or_missing_is_rejected(
    mounts: dict[PurePosixPath, Path],
) -> None:
    dashboard = next(inside for inside in mounts if inside.suffix == ".json")
    unmounted = {inside: source for inside, source in mounts.items() if inside != dashboard}
    assert any(
        f"dashboards/{dashboard.name} is not mounted into {dashboard.parent}" in problem
        for problem in provisioning_problems(unmounted)
    )
    missing = {**mounts, dashboard: ROOT / "dashboards" / "no-such-dashboard.json"}
    assert any(
        "no-such-dashboard.json does not exist" in problem
        for problem in provisioning_problems(missing)
    )


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"uid": "fleetsim-overview"}, "uid 'fleetsim-overview' is also"),
        ({"uid": "fleetsim energy"}, "is not 1 to 40 letters"),
        ({"title": ""}, "has no title"),
        ({"title": "fleetsim: fleet overview"}, "is also"),
    ],
)
def test_dashboards_grafana_would_not_provision_side_by_side_are_rejected(
    change: dict[str, str], words: str
) -> None:
    dashboards = {
        path.name: json.loads(path.read_text(encoding="utf-8")) for path in DASHBOARD_FILES
    }
    assert not provisioned_dashboard_problems(dashboards)
    dashboards["copy.json"] = {**dashboards["fleetsim-energy.json"], **change}
    if "uid" not in change:
        dashboards["copy.json"]["uid"] = "a-copy"
    if "title" not in change:
        dashboards["copy.json"]["title"] = "a copy"
    problems = provisioned_dashboard_problems(dashboards)
    assert any(words in problem for problem in problems), problems
