"""The deployment files: valid Kubernetes objects that run the scenario's fleet exactly once."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from fleetsim.simulator.scenario import load_scenario
from fleetsim.simulator.shard import parse_shard

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"


def _load(name: str) -> dict[str, Any]:
    document = yaml.safe_load((K8S / name).read_text())
    assert isinstance(document, dict)
    return document


@pytest.mark.parametrize("name", ["configmap.yaml", "job.yaml"])
def test_manifests_are_valid_kubernetes_objects(name: str) -> None:
    kubernetes_validate.validate(_load(name), kubernetes_validate.latest_version(), strict=True)


def test_the_job_runs_one_shard_per_pod_and_all_of_them() -> None:
    job = _load("job.yaml")["spec"]
    args = job["template"]["spec"]["containers"][0]["args"]
    shard = args[args.index("--shard") + 1]
    index, count = shard.split("/")
    assert index == "$(JOB_COMPLETION_INDEX)"
    assert job["completionMode"] == "Indexed"
    assert job["completions"] == job["parallelism"] == int(count)
    assert parse_shard(f"{int(count) - 1}/{count}").index == int(count) - 1


def test_the_configmap_scenario_is_valid_and_splits_into_the_jobs_shards(tmp_path: Path) -> None:
    scenario_text = _load("configmap.yaml")["data"]["scenario.yaml"]
    path = tmp_path / "scenario.yaml"
    path.write_text(scenario_text)
    scenario = load_scenario(path)
    completions = _load("job.yaml")["spec"]["completions"]
    shards = [
        scenario.for_block(
            parse_shard(f"{i}/{completions}").block(
                scenario.stations.first_index, scenario.stations.count
            )
        )
        for i in range(completions)
    ]
    assert sum(shard.stations.count for shard in shards) == scenario.stations.count
    mount = _load("job.yaml")["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][0]
    assert "/scenario/scenario.yaml".startswith(mount["mountPath"])


def test_prometheus_keeps_the_pods_the_job_labels() -> None:
    scrape = yaml.safe_load((K8S / "prometheus-scrape.yaml").read_text())["scrape_configs"][0]
    label = _load("job.yaml")["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"]
    keep = scrape["relabel_configs"][0]
    assert keep["action"] == "keep" and re.fullmatch(keep["regex"], label)


def test_the_image_holds_every_package_the_project_installs() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    folders = set(project["tool"]["setuptools"]["package-dir"].values())
    assert folders == {"cli", "simulator", "ev_models", "grid_models"}
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    for folder in folders:
        assert f"COPY {folder} {folder}" in dockerfile
