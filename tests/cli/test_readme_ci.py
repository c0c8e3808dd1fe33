"""The README's "Thresholds and CI" section works as written: its CI jobs are valid YAML in the
shape GitHub Actions and GitLab read, every `fleetsim` command and flag in them exists, the
scenario example loads, and the metric table names exactly the metrics there are."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from fleetsim.cli.main import app
from fleetsim.simulator.api import command_line_thresholds, load_scenario
from fleetsim.simulator.thresholds import METRICS

ROOT = Path(__file__).resolve().parents[2]
SECTION = "## Thresholds and CI"
#: Where one shell command ends and the next (or a redirection) begins.
SHELL_BREAKS = {"&&", "||", ";", "&", "|", ">", "2>&1", ">>", "<"}


def _section() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index(SECTION)
    end = readme.index("\n## ", start + len(SECTION))
    return readme[start:end]


def _yaml_blocks() -> list[Any]:
    blocks = re.findall(r"^```yaml\n(.*?)^```", _section(), flags=re.MULTILINE | re.DOTALL)
    return [yaml.safe_load(block) for block in blocks]


def _ci_jobs() -> list[Any]:
    """The YAML blocks that are CI jobs, not scenarios."""
    return [block for block in _yaml_blocks() if "stations" not in block]


def _scripts(ci: Any) -> Iterator[str]:
    """The shell scripts of a CI file: GitHub's `steps[].run`, GitLab's `script` lines."""
    if "jobs" in ci:
        for job in ci["jobs"].values():
            yield from (step["run"] for step in job["steps"] if "run" in step)
    else:
        for job in ci.values():
            yield from job.get("before_script", [])
            yield from job["script"]


def _fleetsim_commands(text: str) -> Iterator[list[str]]:
    """The argument lists of every `fleetsim` command in a shell script."""
    for line in text.replace("\\\n", " ").splitlines():
        tokens = shlex.split(line, comments=True)
        for start, token in enumerate(tokens):
            if token != "fleetsim":
                continue
            arguments = []
            for argument in tokens[start + 1 :]:
                if argument in SHELL_BREAKS:
                    break
                arguments.append(argument)
            yield arguments


def _commands() -> dict[str, Any]:
    """The `fleetsim` subcommands by name, as typer builds them (click commands)."""
    group = typer.main.get_command(app)
    commands: dict[str, Any] = group.commands  # type: ignore[attr-defined]
    return commands


def _options(command: Any) -> set[str]:
    """Every flag the command takes, `--no-progress` forms included."""
    names: set[str] = set()
    for parameter in command.params:
        if parameter.param_type_name == "option":
            names.update(parameter.opts, parameter.secondary_opts)
    return names


def test_the_section_has_a_github_actions_workflow_and_a_gitlab_job() -> None:
    jobs = _ci_jobs()
    assert len(jobs) == 2
    github, gitlab = jobs
    (workflow_job,) = github["jobs"].values()
    steps = workflow_job["steps"]
    uses = [step["uses"].split("@")[0] for step in steps if "uses" in step]
    assert {"actions/checkout", "actions/upload-artifact", "mikepenz/action-junit-report"} <= set(
        uses
    )
    junit_step = next(s for s in steps if s.get("uses", "").startswith("mikepenz/"))
    assert junit_step["with"]["report_paths"] == "reports/junit.xml"
    assert junit_step["if"] == "always()"
    (gitlab_job,) = gitlab.values()
    assert gitlab_job["artifacts"]["reports"]["junit"] == "reports/junit.xml"
    assert gitlab_job["artifacts"]["when"] == "always"


@pytest.mark.parametrize("job", [0, 1], ids=["github", "gitlab"])
def test_every_fleetsim_command_and_flag_of_the_ci_jobs_exists(job: int) -> None:
    subcommands = _commands()
    commands = [
        arguments for text in _scripts(_ci_jobs()[job]) for arguments in _fleetsim_commands(text)
    ]
    assert [arguments[0] for arguments in commands] == ["csms", "run"]
    for name, *arguments in commands:
        command = subcommands[name]
        options = _options(command)
        for argument in arguments:
            if argument.startswith("--"):
                assert argument.split("=")[0] in options, f"fleetsim {name} has no {argument}"
            elif argument.endswith(".yaml"):
                assert (ROOT / argument).is_file(), argument
    run = next(arguments for arguments in commands if arguments[0] == "run")
    # The job uploads what the run writes, and judges it by thresholds.
    assert run[run.index("--junit") + 1] == "reports/junit.xml"
    assert run[run.index("--summary-json") + 1] == "reports/summary.json"
    assert run.count("--threshold") >= 2


def test_the_thresholds_of_the_ci_jobs_and_the_scenario_example_parse(tmp_path: Path) -> None:
    (scenario,) = [block for block in _yaml_blocks() if "thresholds" in block]
    path = tmp_path / "ci-smoke.yaml"
    path.write_text(yaml.safe_dump(scenario), encoding="utf-8")
    loaded = load_scenario(path)
    assert [threshold.abort_on_fail for threshold in loaded.parsed_thresholds()] == [
        False,
        False,
        True,
    ]
    for job in _ci_jobs():
        for text in _scripts(job):
            for arguments in _fleetsim_commands(text):
                expressions = [
                    arguments[i + 1] for i, a in enumerate(arguments) if a == "--threshold"
                ]
                # The same check `fleetsim run` makes before it starts.
                assert len(command_line_thresholds(tuple(expressions))) == len(expressions)


def test_the_metric_table_names_every_metric_and_no_other() -> None:
    section = _section()
    table = section[section.index("| metric | labels | figure |") :]
    table = table[: table.index("\n\n")]
    named = set()
    for row in table.splitlines()[2:]:
        first_cell = row.split("|")[1]
        named.update(re.findall(r"`([a-z_0-9]+)`", first_cell))
        labels = set(re.findall(r"`([a-z]+)`", row.split("|")[2]))
        for name in re.findall(r"`([a-z_0-9]+)`", first_cell):
            assert labels == set(METRICS[name].labels), name
    assert named == set(METRICS)
