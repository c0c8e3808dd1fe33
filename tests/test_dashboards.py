"""The Grafana dashboard and its provisioning files agree with `simulator.metrics`.

Every PromQL expression may name only series that `ALL_METRICS` exports, group and match only
by labels those metrics carry, and filter on the dashboard's `job` variable.  Renaming a metric
or a label in metrics.py without updating dashboards/fleetsim.json fails here.
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

from simulator import metrics
from simulator.metrics import ALL_METRICS, MetricSpec

DASHBOARDS = Path(__file__).resolve().parent.parent / "dashboards"
DASHBOARD_JSON = DASHBOARDS / "fleetsim.json"
GRAFANA_DASHBOARD_DIR = "/var/lib/grafana/dashboards"

#: Labels Prometheus adds to every scraped series.
TARGET_LABELS = frozenset({"job", "instance"})
METRIC_NAME = re.compile(r"fleetsim_[a-z_]+")
SELECTOR = re.compile(r"(fleetsim_[a-z_]+)\s*(\{[^}]*\})?")
MATCHER = re.compile(r'\s*([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')
#: `sum by (a, b) (...)`: the grouping labels and the opening parenthesis of the argument.
PREFIX_GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)\s*\(")
ANY_GROUPING = re.compile(r"\b(?:by|without)\s*\(")
JOB_FILTER = ("job", "=~", "$job")

#: Label values that metrics.py fixes in advance; a matcher on these must name real ones.
KNOWN_VALUES: dict[tuple[str, str], Sequence[str]] = {
    (metrics.STATIONS.name, "state"): metrics.STATION_STATES,
    (metrics.MESSAGES.name, "outcome"): metrics.OUTCOMES,
    (metrics.CONNECTION_ATTEMPTS.name, "outcome"): metrics.CONNECTION_OUTCOMES,
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


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD_JSON.read_text(encoding="utf-8"))
    return loaded


@pytest.fixture(scope="module")
def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return list(_all_panels(dashboard["panels"]))


@pytest.fixture(scope="module")
def query_panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [panel for panel in panels if panel["type"] != "row"]


def _expressions(query_panels: list[dict[str, Any]]) -> Iterator[tuple[str, str]]:
    for panel in query_panels:
        for target in panel["targets"]:
            yield panel["title"], target["expr"]


def test_dashboard_is_identified_and_templated(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] == "fleetsim-overview"
    assert dashboard["title"] == "fleetsim: fleet overview"
    assert dashboard["id"] is None, "an exported dashboard carries no database id"
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    job = variables["job"]
    assert job["type"] == "query"
    assert job["definition"] == "label_values(fleetsim_stations, job)"
    assert job["query"]["query"] == job["definition"]
    assert METRIC_NAME.findall(job["definition"])[0] in series_labels(ALL_METRICS)


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


def test_expressions_use_only_exported_metrics_and_labels(
    query_panels: list[dict[str, Any]],
) -> None:
    problems = [
        f"{title}: {problem}: {expr}"
        for title, expr in _expressions(query_panels)
        for problem in expression_problems(expr)
    ]
    assert not problems, "\n".join(problems)


def test_every_exported_metric_is_on_the_dashboard(query_panels: list[dict[str, Any]]) -> None:
    used = {name for _, expr in _expressions(query_panels) for name in METRIC_NAME.findall(expr)}
    # A histogram counts as shown when any of its series is.
    missing = [spec.name for spec in ALL_METRICS if not used & series_labels([spec]).keys()]
    assert not missing, f"metrics without a panel: {missing}"


def test_the_checks_catch_a_renamed_metric_or_label() -> None:
    expr = 'sum by (state) (fleetsim_stations{job=~"$job", state="accepted"})'
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


@pytest.mark.parametrize(
    "expr",
    [
        "sum(fleetsim_stations)",  # no job filter
        'sum(fleetsim_stations{job=~"$job"}) - sum(fleetsim_transactions_started_total)',
        'rate(fleetsim_ocpp_call_duration_seconds{job=~"$job"}[1m])',  # histogram's base name
        'rate(fleetsim_websocket_messages{job=~"$job"}[1m])',  # counter without _total
        'sum by (le) (fleetsim_stations{job=~"$job"})',  # le only on _bucket
        'sum by (action) (rate(fleetsim_connection_attempts_total{job=~"$job"}[1m]))',
        'fleetsim_stations{job=~"$job", state="online"}',  # no such state
        'sum(fleetsim_stations{job=~"$job"}) by (state)',  # grouping after the argument
    ],
)
def test_the_checks_reject(expr: str) -> None:
    assert expression_problems(expr)


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
