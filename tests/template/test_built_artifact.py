"""End to end: `sam build`, then the built artifact under the Lambda Runtime Interface Emulator (what
`make invoke` runs), handling the events/ files against the local endpoint and claiming the seeded jobs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

import invoke_local
from tests.conftest import load_event

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture(scope="module")
def built() -> tuple[Path, dict[str, Any]]:
    return invoke_local.build({}), invoke_local.describe_function({})


def run_event(built: tuple[Path, dict[str, Any]], name: str) -> tuple[invoke_local.Invocation, dict[str, str]]:
    artifact, function = built
    event = load_event(name)
    environment = {k: v for k, v in function["environment"].items() if v != ""}
    with invoke_local.local_aws(event, environment["ACTION_TYPES"]) as local:
        environment.update(local.environment)
        with invoke_local.running_function(artifact, function, environment) as running:
            invocation = running.invoke(event)
        states = {job["jobId"]: job["status"] for job in local.endpoint.store.jobs()}
    return invocation, states


def test_the_artifact_holds_the_function_and_its_pinned_dependencies(built: tuple[Path, dict[str, Any]]) -> None:
    artifact, function = built
    assert (artifact / "codepipeline_worker" / "handler.py").is_file()
    pins = dict(
        line.split("==")
        for line in (artifact / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    for package, version in pins.items():
        dist = package.replace("-", "_")
        assert list(artifact.glob(f"{dist}-{version}.dist-info")), f"{package}=={version} not in the artifact"
    assert not (artifact / "codepipeline_local").exists()
    # Compiled bytecode ships in it: Lambda's code directory is read-only, so nothing is compiled at cold start
    assert list((artifact / "codepipeline_worker" / "__pycache__").glob("handler.cpython-313.pyc"))
    assert list((artifact / "pydantic" / "__pycache__").glob("*.cpython-313.pyc"))
    assert function["handler"] == "codepipeline_worker.handler.lambda_handler"


@pytest.mark.parametrize(
    ("name", "claimed"),
    [
        ("custom-job.json", 1),
        ("partner-job.json", 1),
        ("partner-job-token-only.json", 1),
        ("partner-job-client-id.json", 1),
        ("batch.json", 4),
        ("scheduled.json", 2),
        ("action-started.json", 2),
    ],
)
def test_each_event_claims_its_jobs(built: tuple[Path, dict[str, Any]], name: str, claimed: int) -> None:
    invocation, states = run_event(built, name)

    response = invocation.response
    assert "errorType" not in response, response
    results = response.get("results", [response])
    assert [r["outcome"] for r in results] == ["acknowledged"] * claimed
    assert list(states.values()) == ["InProgress"] * claimed
    assert "REPORT RequestId" in invocation.logs
    # MemorySize 128 in the template: the runtime's peak resident memory fits, with room
    assert invocation.peak_memory_mb is not None
    assert invocation.peak_memory_mb < 100, invocation.peak_memory_mb


@pytest.mark.parametrize("name", ["invalid-typo.json", "invalid-docs-example-id.json", "invalid-lambda-invoke.json"])
def test_invalid_events_fail_as_invalid_job_event(built: tuple[Path, dict[str, Any]], name: str) -> None:
    invocation, states = run_event(built, name)

    assert invocation.response["errorType"] == "InvalidJobEvent"
    assert (
        "invalid event" in invocation.response["errorMessage"] or "Lambda-invoke" in invocation.response["errorMessage"]
    )
    assert set(states.values()) <= {"Dispatched"}  # nothing claimed


def test_parameter_overrides_reach_the_environment() -> None:
    function = invoke_local.describe_function({"MaxBatchSize": "5", "LogLevel": "DEBUG", "Tracing": "Active"})
    environment = function["environment"]
    assert (environment["MAX_BATCH_SIZE"], environment["POWERTOOLS_LOG_LEVEL"]) == ("5", "DEBUG")
    assert environment["POWERTOOLS_TRACE_DISABLED"] == "false"
    assert function["architectures"] == [invoke_local.host_architecture()]
