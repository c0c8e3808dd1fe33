"""Every query of every dashboard, evaluated by a real Prometheus on a real run.

A Prometheus (the Debian package `prometheus`, which `make test` installs when it is missing)
scrapes a short `fleetsim run` over WebSockets of bidirectional stations with EVs, V2X and a
grid event (a frequency dip with its DER alarm).  Each panel's query, each annotation's and
each template variable's is then asked of Prometheus's HTTP API over the run: a query that
returns nothing is a panel that would read "No data", and fails here.  The scrape configs of
dashboards/ and deploy/ are checked with `promtool`.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.test_dashboards import DASHBOARDS, dashboard_queries, load_dashboards

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")

pytestmark = pytest.mark.skipif(
    PROMETHEUS is None or PROMTOOL is None,
    reason="Prometheus is not installed: `make test` installs the Debian package prometheus, "
    "or run `apt-get install prometheus`",
)

#: Scenario seconds per wall second: the run covers 17:00 to 19:30 in 30 wall seconds.
SPEED = 300
RUN_WALL_S = 30
SCRAPE_INTERVAL = "1s"
#: How the variables read when a person picks "All".
VARIABLES = {"$job": "fleetsim", "$instance": ".+", "$__range": "1m"}


def _scenario() -> dict[str, Any]:
    return {
        "name": "prometheus-dashboards",
        "seed": 11,
        "speed": SPEED,
        "duration_s": RUN_WALL_S,
        "start": "2026-01-15T17:00:00Z",
        "stations": {
            "count": 20,
            "model": "v2g-ac-11",
            "ramp_up_per_s": 100,
            "meter_interval_s": 300,
            "evses": [
                {"max_power_w": 11000, "phases": 3, "connectors": ["cType2"], "bidirectional": True}
            ],
        },
        "sites": [{"name": "residential", "kind": "depot", "arrivals_per_evse_per_day": 24}],
        "ev_fleet": {
            "models": {"renault-5-etech-52kwh": 0.7, "nissan-leaf-40kwh": 0.3},
            "iso15118_share": 1.0,
            "min_soc": 0.3,
        },
        "grid": {
            "nominal_hz": 50,
            "events": [{"at_s": 6_000, "duration_s": 900, "frequency_hz": 49.8, "ramp_s": 2}],
            "der_events": [
                {"at_s": 6_000, "duration_s": 900, "kind": "UnderFrequency", "value": 49.8}
            ],
        },
        "embedded_csms": {"v2x_operation_mode": "LocalFrequency", "v2x_max_power_w": 11000},
    }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class ScrapedRun:
    api: str
    start_s: float
    end_s: float

    def get(self, path: str, **params: str) -> Any:
        url = f"{self.api}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as answer:
            body = json.loads(answer.read())
        assert body["status"] == "success", body
        return body["data"]

    def query_range(self, expr: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.get(
            "/api/v1/query_range",
            query=expr,
            start=str(self.start_s),
            end=str(self.end_s),
            step="1",
        )["result"]
        return result


def _wait_ready(api: str, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Until Prometheus answers /-/ready (its own signal that it serves queries)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"prometheus exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{api}/-/ready", timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"prometheus was not ready after {timeout_s} s")


@pytest.fixture(scope="module")
def scraped_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScrapedRun]:
    folder = tmp_path_factory.mktemp("prometheus")
    metrics_port, prometheus_port = _free_port(), _free_port()
    config = folder / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": SCRAPE_INTERVAL},
                "scrape_configs": [
                    {
                        "job_name": "fleetsim",
                        "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}],
                    }
                ],
            }
        )
    )
    api = f"http://127.0.0.1:{prometheus_port}"
    prometheus = subprocess.Popen(
        [
            str(PROMETHEUS),
            f"--config.file={config}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{prometheus_port}",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(folder / "prometheus.log").open("wb"),
    )
    try:
        _wait_ready(api, prometheus, 60)
        scenario = folder / "scenario.yaml"
        scenario.write_text(json.dumps(_scenario()))
        start_s = time.time()
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "fleetsim.cli",
                "run",
                str(scenario),
                "--metrics-port",
                str(metrics_port),
                "--no-progress",
                "--summary-json",
                str(folder / "summary.json"),
            ],
            cwd=ROOT,
            capture_output=True,
            timeout=RUN_WALL_S + 90,
        )
        assert run.returncode == 0, run.stdout.decode() + run.stderr.decode()
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["ev_sessions"] > 0 and summary["station_failures"] == 0, summary
        yield ScrapedRun(api, start_s, time.time())
    finally:
        prometheus.terminate()
        try:
            prometheus.wait(timeout=20)
        except subprocess.TimeoutExpired:
            prometheus.kill()
            prometheus.wait()


def _all_queries() -> list[tuple[str, str, str]]:
    return [
        (name, where, expr)
        for name, dashboard in load_dashboards().items()
        for where, expr in dashboard_queries(dashboard)
    ]


def _filled(expr: str) -> str:
    for variable, value in VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


@pytest.mark.parametrize(
    ("dashboard", "where", "expr"), _all_queries(), ids=lambda value: str(value)[:60]
)
def test_every_query_returns_data_from_a_real_run(
    scraped_run: ScrapedRun, dashboard: str, where: str, expr: str
) -> None:
    result = scraped_run.query_range(_filled(expr))
    assert any(series["values"] for series in result), (
        f"{dashboard}, {where}: no data for {_filled(expr)}"
    )


def test_the_job_and_instance_variables_find_the_run(scraped_run: ScrapedRun) -> None:
    jobs = scraped_run.get("/api/v1/label/job/values", **{"match[]": "fleetsim_stations"})
    assert jobs == ["fleetsim"]
    instances = scraped_run.get(
        "/api/v1/label/instance/values", **{"match[]": 'fleetsim_stations{job=~"fleetsim"}'}
    )
    assert len(instances) == 1


def test_the_run_shows_energy_v2x_and_the_grid_event(scraped_run: ScrapedRun) -> None:
    """Not only data, but the figures the scenario makes: EVs charged, discharged in the dip,
    and the DER alarm was in force."""

    def values(expr: str) -> list[float]:
        (series,) = scraped_run.query_range(_filled(expr))
        return [float(value) for _, value in series["values"]]

    def peak(expr: str) -> float:
        return max(values(expr))

    selector = 'job="fleetsim"'
    assert peak(f'sum(fleetsim_site_power_watts{{{selector}, direction="import"}})') > 0
    assert peak(f'sum(fleetsim_site_power_watts{{{selector}, direction="export"}})') > 0
    assert (
        peak(f"sum(fleetsim_evs_with_v2x_setpoint{{{selector}}})")
        + peak(f"sum(fleetsim_evs_with_charging_limit{{{selector}}})")
        > 0
    )
    assert peak(f'sum(fleetsim_der_events_active{{{selector}, kind="UnderFrequency"}})') == 1
    assert min(values(f"min(fleetsim_grid_frequency_hertz{{{selector}}})")) < 49.9
    assert peak(f'sum(fleetsim_websocket_bytes_total{{{selector}, direction="sent"}})') > 0


def test_the_local_scrape_config_is_valid_for_prometheus() -> None:
    _promtool_check(DASHBOARDS / "prometheus.yml")


def test_the_kubernetes_scrape_job_is_valid_for_prometheus(tmp_path: Path) -> None:
    """Debian's Prometheus is built without Kubernetes discovery, so the pod discovery is
    swapped for a static target carrying the labels it would give a fleetsim pod; promtool
    then checks the rest of the job (its relabelling) as Prometheus reads it."""
    config = yaml.safe_load((ROOT / "deploy" / "k8s" / "prometheus-scrape.yaml").read_text())
    (job,) = config["scrape_configs"]
    assert job.pop("kubernetes_sd_configs") == [{"role": "pod"}]
    job["static_configs"] = [
        {
            "targets": ["fleetsim-0:9400"],
            "labels": {
                "__meta_kubernetes_pod_label_app_kubernetes_io_name": "fleetsim",
                "__meta_kubernetes_pod_annotation_prometheus_io_scrape": "true",
                "__meta_kubernetes_pod_ip": "10.0.0.7",
                "__meta_kubernetes_pod_annotation_prometheus_io_port": "9400",
                "__meta_kubernetes_pod_name": "fleetsim-0",
            },
        }
    ]
    static = tmp_path / "prometheus.yml"
    static.write_text(yaml.safe_dump(config))
    _promtool_check(static)


def _promtool_check(config: Path) -> None:
    checked = subprocess.run(
        [str(PROMTOOL), "check", "config", "--syntax-only", str(config)],
        capture_output=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()
