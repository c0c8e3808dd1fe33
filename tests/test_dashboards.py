"""The Grafana dashboards and their provisioning files agree with `simulator.metrics`.

Every PromQL expression (of a panel or an annotation) may name only series that `ALL_METRICS`
exports, group and match only by labels those metrics carry, and filter on the dashboard's
`job` and `instance` variables.  Renaming a metric or a label in metrics.py without updating
the dashboards fails here; tests/test_prometheus.py runs every query against a real run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from fleetsim.grid_models.der import DER_KINDS
from fleetsim.simulator import metrics
from fleetsim.simulator.metrics import ALL_METRICS, MetricSpec

DASHBOARDS = Path(__file__).resolve().parent.parent / "dashboards"
#: Each dashboard file with its uid and title.
DASHBOARD_FILES = {
    "fleetsim.json": ("fleetsim-overview", "fleetsim: fleet overview"),
    "fleetsim-energy.json": ("fleetsim-energy", "fleetsim: energy and grid"),
}
GRAFANA_DASHBOARD_DIR = "/var/lib/grafana/dashboards"

#: Labels Prometheus adds to every scraped series.
TARGET_LABELS = frozenset({"job", "instance"})
METRIC_NAME = re.compile(r"fleetsim_[a-z0-9_]+")
SELECTOR = re.compile(r"(fleetsim_[a-z0-9_]+)\s*(\{[^}]*\})?")
MATCHER = re.compile(r'\s*([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')
#: `sum by (a, b) (...)`: the grouping labels and the opening parenthesis of the argument.
PREFIX_GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)\s*\(")
ANY_GROUPING = re.compile(r"\b(?:by|without)\s*\(")
JOB_FILTER = ("job", "=~", "$job")
INSTANCE_FILTER = ("instance", "=~", "$instance")

#: Label values that metrics.py fixes in advance; a matcher on these must name real ones.
KNOWN_VALUES: dict[tuple[str, str], Sequence[str]] = {
    (metrics.STATIONS.name, "state"): metrics.STATION_STATES,
    (metrics.MESSAGES.name, "outcome"): metrics.OUTCOMES,
    (metrics.CONNECTION_ATTEMPTS.name, "outcome"): metrics.CONNECTION_OUTCOMES,
    (metrics.SITE_POWER.name, "direction"): metrics.POWER_DIRECTIONS,
    (metrics.SITE_ENERGY.name, "direction"): metrics.POWER_DIRECTIONS,
    (metrics.DER_EVENTS_ACTIVE.name, "kind"): DER_KINDS,
}


def series_labels(specs: Sequence[MetricSpec]) -> dict[str, frozenset[str]]:
    """Every series name a scrape shows for `specs`, with the labels it may carry."""
    series: dict[str, frozenset[str]] = {}
    for spec in specs:
        labels = frozenset(spec.labels) | TARGET_LABELS
        if spec.kind == "histogram":
            series[f"{spec.name}_bucket"] = labels | {"le"}
            series[f"{spec.name}_sum"] = labels
            series[f"{spec.name}_count"] = labels
        elif spec.kind == "gaugehistogram":
            series[f"{spec.name}_bucket"] = labels | {"le"}
            series[f"{spec.name}_gsum"] = labels
            series[f"{spec.name}_gcount"] = labels
        else:
            series[spec.name] = labels
    return series


def _closing_paren(expr: str, opening: int) -> int:
    depth = 0
    for index in range(opening, len(expr)):
        if expr[index] == "(":
            depth += 1
        elif expr[index] == ")":
            depth -= 1
            if depth == 0:
                return index
    raise ValueError(f"unbalanced parentheses in {expr!r}")


def _matchers(body: str) -> list[tuple[str, str, str]]:
    inner = body[1:-1].strip()
    found = []
    position = 0
    while position < len(inner):
        match = MATCHER.match(inner, position)
        if match is None:
            raise ValueError(f"cannot read label matchers {body!r}")
        found.append((match[1], match[2], match[3]))
        position = match.end()
    return found


def expression_problems(expr: str, specs: Sequence[MetricSpec] = ALL_METRICS) -> list[str]:
    """What is wrong with one PromQL expression of the dashboard; empty when nothing is."""
    series = series_labels(specs)
    problems: list[str] = []
    names = METRIC_NAME.findall(expr)
    if not names:
        problems.append("names no fleetsim metric")
    for name in names:
        if name not in series:
            problems.append(f"{name} is not a series of simulator.metrics.ALL_METRICS")

    for match in SELECTOR.finditer(expr):
        name, body = match[1], match[2]
        if name not in series:
            continue
        try:
            matchers = _matchers(body) if body else []
        except ValueError as exc:
            problems.append(str(exc))
            continue
        if JOB_FILTER not in matchers:
            problems.append(f'{name} is selected without job=~"$job"')
        if INSTANCE_FILTER not in matchers:
            problems.append(f'{name} is selected without instance=~"$instance"')
        for label, op, value in matchers:
            if label not in series[name]:
                problems.append(f"{name} has no label {label}")
                continue
            known = KNOWN_VALUES.get((name, label))
            if known is None or op not in ("=", "=~"):
                continue
            for alternative in value.split("|") if op == "=~" else [value]:
                if alternative not in known:
                    problems.append(f"{name}: {label} is never {alternative!r}")

    groupings = list(PREFIX_GROUPING.finditer(expr))
    if len(groupings) != len(ANY_GROUPING.findall(expr)):
        problems.append("write `sum by (labels) (expr)`, with the grouping before the argument")
    for grouping in groupings:
        argument = expr[grouping.end() - 1 : _closing_paren(expr, grouping.end() - 1) + 1]
        grouped = [label.strip() for label in grouping[1].split(",") if label.strip()]
        for name in set(METRIC_NAME.findall(argument)) & series.keys():
            for label in grouped:
                if label not in series[name]:
                    problems.append(f"{name} has no label {label} to group by")
    return problems


def _all_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        # A collapsed row keeps its panels inside it.
        yield from _all_panels(panel.get("panels", []))


def load_dashboards() -> dict[str, dict[str, Any]]:
    """Every dashboard of dashboards/, by file name."""
    return {
        name: json.loads((DASHBOARDS / name).read_text(encoding="utf-8"))
        for name in DASHBOARD_FILES
    }


def dashboard_queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) of every panel target and every Prometheus annotation of `dashboard`."""
    for panel in _all_panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            yield f"panel {panel['title']!r}", target["expr"]
    for annotation in dashboard["annotations"]["list"]:
        if "expr" in annotation:
            yield f"annotation {annotation['name']!r}", annotation["expr"]


def test_dashboards_folder_holds_exactly_the_known_dashboards() -> None:
    assert sorted(path.name for path in DASHBOARDS.glob("*.json")) == sorted(DASHBOARD_FILES)


@pytest.fixture(scope="module", params=sorted(DASHBOARD_FILES))
def dashboard_file(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture(scope="module")
def dashboard(dashboard_file: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((DASHBOARDS / dashboard_file).read_text(encoding="utf-8"))
    return loaded


@pytest.fixture(scope="module")
def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return list(_all_panels(dashboard["panels"]))


@pytest.fixture(scope="module")
def query_panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [panel for panel in panels if panel["type"] != "row"]


def test_dashboard_is_identified_and_templated(
    dashboard_file: str, dashboard: dict[str, Any]
) -> None:
    assert (dashboard["uid"], dashboard["title"]) == DASHBOARD_FILES[dashboard_file]
    assert dashboard["id"] is None, "an exported dashboard carries no database id"
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    job = variables["job"]
    assert job["type"] == "query"
    assert job["definition"] == "label_values(fleetsim_stations, job)"
    assert job["query"]["query"] == job["definition"]
    assert METRIC_NAME.findall(job["definition"])[0] in series_labels(ALL_METRICS)
    instance = variables["instance"]
    assert instance["type"] == "query"
    assert instance["definition"] == 'label_values(fleetsim_stations{job=~"$job"}, instance)'
    assert instance["query"]["query"] == instance["definition"]
    assert instance["includeAll"] and instance["multi"]


def test_every_panel_has_a_title_a_description_and_a_query(
    panels: list[dict[str, Any]], query_panels: list[dict[str, Any]]
) -> None:
    assert query_panels
    for panel in panels:
        assert panel.get("title", "").strip(), f"panel {panel.get('id')} has no title"
    for panel in query_panels:
        assert panel.get("description", "").strip(), f"{panel['title']!r} has no description"
        assert panel.get("targets"), f"{panel['title']!r} has no query"
        for target in panel["targets"]:
            assert target.get("expr", "").strip(), f"{panel['title']!r} has an empty query"


def test_panels_query_the_datasource_variable(query_panels: list[dict[str, Any]]) -> None:
    expected = {"type": "prometheus", "uid": "${datasource}"}
    for panel in query_panels:
        assert panel["datasource"] == expected, panel["title"]
        for target in panel["targets"]:
            assert target.get("datasource", expected) == expected, panel["title"]


def test_panel_ids_are_unique(panels: list[dict[str, Any]]) -> None:
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


def test_expressions_use_only_exported_metrics_and_labels(dashboard: dict[str, Any]) -> None:
    problems = [
        f"{where}: {problem}: {expr}"
        for where, expr in dashboard_queries(dashboard)
        for problem in expression_problems(expr)
    ]
    assert not problems, "\n".join(problems)


def test_annotations_query_the_datasource_variable(dashboard: dict[str, Any]) -> None:
    for annotation in dashboard["annotations"]["list"]:
        if "expr" in annotation:
            assert annotation["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


def test_the_energy_dashboard_marks_der_events() -> None:
    energy = load_dashboards()["fleetsim-energy.json"]
    (der,) = [a for a in energy["annotations"]["list"] if "expr" in a]
    assert metrics.DER_EVENTS_ACTIVE.name in der["expr"]
    assert der["enable"] and der["titleFormat"] == "{{kind}}"


def test_every_exported_metric_is_on_a_dashboard() -> None:
    used = {
        name
        for dashboard in load_dashboards().values()
        for _, expr in dashboard_queries(dashboard)
        for name in METRIC_NAME.findall(expr)
    }
    # A histogram counts as shown when any of its series is.
    missing = [spec.name for spec in ALL_METRICS if not used & series_labels([spec]).keys()]
    assert not missing, f"metrics without a panel: {missing}"


def test_the_checks_catch_a_renamed_metric_or_label() -> None:
    expr = (
        'sum by (state) (fleetsim_stations{job=~"$job", instance=~"$instance", state="accepted"})'
    )
    assert expression_problems(expr) == []
    renamed = [
        replace(spec, name="fleetsim_station_states") if spec is metrics.STATIONS else spec
        for spec in ALL_METRICS
    ]
    assert expression_problems(expr, renamed)
    relabelled = [
        replace(spec, labels=("status",)) if spec is metrics.STATIONS else spec
        for spec in ALL_METRICS
    ]
    assert len(expression_problems(expr, relabelled)) == 2  # the matcher and the grouping


#: The selector every expression needs, abbreviated as {F in the cases below.
FILTERS = '{job=~"$job", instance=~"$instance"'


@pytest.mark.parametrize(
    "expr",
    [
        "sum(fleetsim_stations)",  # no job filter
        'sum(fleetsim_stations{job=~"$job"})',  # no instance filter
        'fleetsim_site_power_watts{F, direction="in"}',  # import or export
        'max by (kind) (fleetsim_der_events_active{F, site="a"})',  # no site label
        "sum(fleetsim_plugged_in_ev_soc_ratio_count{F})",  # a gauge histogram has _gcount
        "sum(fleetsim_stations{F}) - sum(fleetsim_transactions_started_total)",
        "rate(fleetsim_ocpp_call_duration_seconds{F}[1m])",  # histogram's base name
        "rate(fleetsim_websocket_messages{F}[1m])",  # counter without _total
        "sum by (le) (fleetsim_stations{F})",  # le only on _bucket
        "sum by (action) (rate(fleetsim_connection_attempts_total{F}[1m]))",
        'fleetsim_stations{F, state="online"}',  # no such state
        "sum(fleetsim_stations{F}) by (state)",  # grouping after the argument
    ],
)
def test_the_checks_reject(expr: str) -> None:
    assert expression_problems(expr.replace("{F", FILTERS))


def test_grafana_provisioning_points_at_prometheus_and_the_dashboard_folder() -> None:
    datasources = yaml.safe_load(
        (DASHBOARDS / "provisioning" / "datasources" / "prometheus.yaml").read_text()
    )
    assert datasources["apiVersion"] == 1
    (prometheus,) = datasources["datasources"]
    assert prometheus["type"] == "prometheus"
    assert prometheus["uid"] == "prometheus"
    assert prometheus["url"] == "http://prometheus:9090"

    dashboards = yaml.safe_load(
        (DASHBOARDS / "provisioning" / "dashboards" / "fleetsim.yaml").read_text()
    )
    assert dashboards["apiVersion"] == 1
    (provider,) = dashboards["providers"]
    assert provider["type"] == "file"
    assert provider["folder"] == "fleetsim"
    assert provider["options"]["path"] == GRAFANA_DASHBOARD_DIR


def test_prometheus_scrapes_fleetsim_every_5s() -> None:
    config = yaml.safe_load((DASHBOARDS / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "fleetsim"
    assert job.get("scrape_interval", config["global"]["scrape_interval"]) == "5s"
    targets = [target for group in job["static_configs"] for target in group["targets"]]
    assert sorted(targets) == ["127.0.0.1:9400", "host.docker.internal:9400"]
