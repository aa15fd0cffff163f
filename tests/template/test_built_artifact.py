"""End to end: `sam build`, then the built artifacts under the Lambda Runtime Interface Emulator (what
`make invoke` runs): the job worker handling the events/ files against the local endpoint, claiming the seeded
jobs and handing them to a work queue in moto; the work function running the queued jobs and reporting them."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import botocore
import pytest

import invoke_local
from codepipeline_worker.shared.adapter import ACKNOWLEDGER_SERVICES
from tests.conftest import load_event

Built = tuple[Path, dict[str, Any]]
RUNTIME_PYTHON = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"


@pytest.fixture(scope="module")
def built() -> Built:
    return invoke_local.build({}), invoke_local.describe_function({})


def run_event(
    built: Built, name: str, *, queue: bool = True
) -> tuple[invoke_local.Invocation, dict[str, str], int | None]:
    """The job worker on an events/ file: its invocation, the jobs' states after it, and how many jobs it put
    on the work queue (None without one: the SAM CLI's own resolution of the template, which has none)."""
    artifact, function = built
    event = load_event(name)
    environment = {k: v for k, v in function["environment"].items() if v != ""}
    with invoke_local.local_aws(event, environment["ACTION_TYPES"]) as local:
        environment.update(local.environment)
        if not queue:
            del environment["JOB_QUEUE_URL"]
        with invoke_local.running_function(artifact, function, environment) as running:
            invocation = running.invoke(event)
        states = {job["jobId"]: job["status"] for job in local.endpoint.store.jobs()}
        queued = local.queued() if queue else None
    return invocation, states, queued


def test_the_artifacts_hold_the_functions_and_their_pinned_dependencies(built: Built) -> None:
    artifact, function = built
    assert (artifact / "codepipeline_worker" / "acknowledger" / "handler.py").is_file()
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
    assert list((artifact / "codepipeline_worker" / "acknowledger" / "__pycache__").glob("handler.cpython-313.pyc"))
    assert list((artifact / "pydantic" / "__pycache__").glob("*.cpython-313.pyc"))
    assert function["handler"] == "codepipeline_worker.acknowledger.handler.lambda_handler"
    # The work function: the same code, the example action with it, its own handler
    work = invoke_local.artifact(invoke_local.WORKER)
    assert list((work / "codepipeline_worker" / "work" / "__pycache__").glob("handler.cpython-313.pyc"))
    assert list((work / "codepipeline_worker" / "examples" / "__pycache__").glob("url_gate.cpython-313.pyc"))
    assert not (work / "codepipeline_local").exists()


def test_the_acknowledger_carries_sdk_data_only_for_the_services_it_calls(built: Built) -> None:
    artifact, _ = built
    data = artifact / "botocore" / "data"
    services = {path.name for path in data.iterdir() if path.is_dir() and path.name != "__pycache__"}
    assert services == ACKNOWLEDGER_SERVICES
    partitions = json.loads((data / "endpoints.json").read_text())["partitions"]
    assert all(set(partition["services"]) <= ACKNOWLEDGER_SERVICES for partition in partitions)
    # The work function runs the user's work, which may call any service: its botocore is whole
    work_data = invoke_local.artifact(invoke_local.WORKER) / "botocore" / "data"
    assert len([path for path in work_data.iterdir() if path.is_dir()]) > 400


def test_the_limited_sdk_data_resolves_every_endpoint_as_the_full_botocore_does(built: Built) -> None:
    """Every region of every partition, with and without FIPS and dual-stack, for each service the acknowledger
    may call: the same client endpoint, request URL and signing, or the same error, as the full botocore of the
    same version (the development environment's)."""
    artifact, _ = built
    full = Path(sysconfig.get_paths()["purelib"])
    assert list(artifact.glob(f"botocore-{botocore.__version__}.dist-info")), "not the botocore version compared"
    script = Path(__file__).with_name("endpoint_urls.py")
    runs = [
        subprocess.Popen(  # noqa: S603 - the runtime's interpreter on the test's own script
            [str(RUNTIME_PYTHON), "-S", str(script), str(site), *sorted(ACKNOWLEDGER_SERVICES)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for site in (artifact, full)
    ]
    limited, whole = (json.loads(run.communicate(timeout=300)[0]) for run in runs)

    assert limited == whole
    assert len(whole) > 1000  # 6 services, about 60 regions each, 4 settings
    assert whole["codepipeline us-gov-west-1 fips"]["url"] == "https://codepipeline-fips.us-gov-west-1.amazonaws.com/"


@pytest.mark.parametrize(
    ("name", "claimed", "refused"),
    [
        ("custom-job.json", 1, 0),
        ("partner-job-client-id.json", 1, 0),
        # A partner job handed off needs its clientId, by which the work side reads the token: one that comes
        # with a token only is not claimed (ClientIdRequired), and CodePipeline dispatches it again
        ("batch.json", 3, 1),
        ("scheduled.json", 2, 0),
        ("action-started.json", 2, 0),
    ],
)
def test_each_event_claims_its_jobs_and_hands_them_off(built: Built, name: str, claimed: int, refused: int) -> None:
    invocation, states, queued = run_event(built, name)

    response = invocation.response
    assert "errorType" not in response, response
    results = response.get("results", [response])
    assert sorted(r["outcome"] for r in results) == ["acknowledged"] * claimed + ["failed"] * refused
    assert [r["error"] for r in results if r["outcome"] == "failed"] == ["ClientIdRequired"] * refused
    assert [r.get("handoff") for r in results if r["outcome"] == "acknowledged"] == ["queued"] * claimed
    assert queued == claimed
    assert sorted(states.values()) == ["Dispatched"] * refused + ["InProgress"] * claimed
    assert "REPORT RequestId" in invocation.logs
    # MemorySize 128 in the template: the runtime's peak resident memory fits, with room
    assert invocation.peak_memory_mb is not None
    assert invocation.peak_memory_mb < 100, invocation.peak_memory_mb


@pytest.mark.parametrize("name", ["partner-job.json", "partner-job-token-only.json"])
def test_a_partner_job_without_its_client_id_is_not_claimed_for_the_work_queue(built: Built, name: str) -> None:
    invocation, states, queued = run_event(built, name)

    assert "ClientIdRequired" in invocation.response["errorMessage"], invocation.response
    assert list(states.values()) == ["Dispatched"]
    assert queued == 0


@pytest.mark.parametrize(("name", "claimed"), [("partner-job.json", 1), ("batch.json", 4)])
def test_without_a_work_queue_every_event_claims_its_jobs(built: Built, name: str, claimed: int) -> None:
    """As under `sam local invoke`, where JOB_QUEUE_URL resolves to nothing: claims only."""
    invocation, states, _ = run_event(built, name, queue=False)

    results = invocation.response.get("results", [invocation.response])
    assert [r["outcome"] for r in results] == ["acknowledged"] * claimed
    assert all("handoff" not in r for r in results)
    assert list(states.values()) == ["InProgress"] * claimed


@pytest.mark.parametrize("name", ["invalid-typo.json", "invalid-docs-example-id.json", "invalid-lambda-invoke.json"])
def test_invalid_events_fail_as_invalid_job_event(built: Built, name: str) -> None:
    invocation, states, queued = run_event(built, name)

    assert invocation.response["errorType"] == "InvalidJobEvent"
    assert (
        "invalid event" in invocation.response["errorMessage"] or "Lambda-invoke" in invocation.response["errorMessage"]
    )
    assert set(states.values()) <= {"Dispatched"}  # nothing claimed
    assert queued == 0


def test_the_work_function_runs_the_queued_jobs_and_reports_batch_item_failures(built: Built) -> None:
    """The job worker claims two jobs and queues them; the built work function gets them as one SQS event, with
    a message that is not a job: the example action checks the jobs' local URL and reports them succeeded, and
    only the stray message comes back in batchItemFailures, to be delivered again."""
    artifact, acknowledger = built
    worker = invoke_local.describe_function({}, invoke_local.WORKER)
    event = load_event("action-started.json")
    environment = {k: v for k, v in acknowledger["environment"].items() if v != ""}
    with invoke_local.local_aws(event, environment["ACTION_TYPES"]) as local:
        with invoke_local.running_function(artifact, acknowledger, {**environment, **local.environment}) as running:
            assert running.invoke(event).response["counts"]["queued"] == 2
        messages = local.receive()
        assert len(messages) == 2
        sqs_event = local.sqs_event(messages)
        stray = {**sqs_event["Records"][0], "messageId": "not-a-job", "body": json.dumps({"hello": "world"})}
        sqs_event["Records"].append(stray)
        work_environment = {**{k: v for k, v in worker["environment"].items() if v != ""}, **local.environment}
        with invoke_local.running_function(invoke_local.artifact(invoke_local.WORKER), worker, work_environment) as w:
            invocation = w.invoke(sqs_event)
        local.delete(messages, invocation.response["batchItemFailures"])
        jobs = local.endpoint.store.jobs()
        left = local.queued()

    assert invocation.response == {"batchItemFailures": [{"itemIdentifier": "not-a-job"}]}
    assert [job["status"] for job in jobs] == ["Succeeded", "Succeeded"]
    for job in jobs:
        [reported] = [h for h in job["history"] if h["event"] == "succeeded"]
        assert reported["summary"].endswith("/healthy answered 200 at check 1")
        assert reported["outputVariables"] == {"StatusCode": "200", "Checks": "1"}
    assert left == 0  # both job messages deleted, as the event source does
    assert "not a job message" in invocation.logs
    assert "REPORT RequestId" in invocation.logs
    assert invocation.peak_memory_mb is not None
    assert invocation.peak_memory_mb < worker["memory"], invocation.peak_memory_mb


def test_the_work_function_runs_an_sqs_event_file_on_jobs_already_claimed(built: Built) -> None:
    """What `make invoke EVENT=events/work/batch.json` runs: the SQS event as it is, its jobs seeded InProgress."""
    _, acknowledger = built
    event = load_event("work/batch.json")
    worker = invoke_local.describe_function({}, invoke_local.WORKER)
    with invoke_local.local_aws(event, acknowledger["environment"]["ACTION_TYPES"]) as local:
        before = {job["jobId"]: job["status"] for job in local.endpoint.store.jobs()}
        [(_, invocation)] = invoke_local.run_work_function(local, worker, event)
        after = {job["jobId"]: job["status"] for job in local.endpoint.store.jobs()}

    assert invocation.response == {"batchItemFailures": []}
    named = {json.loads(record["body"])["jobId"] for record in event["Records"]}
    assert before == dict.fromkeys(named, "InProgress")
    assert after == dict.fromkeys(named, "Succeeded")


def test_parameter_overrides_reach_the_environment() -> None:
    function = invoke_local.describe_function({"MaxBatchSize": "5", "LogLevel": "DEBUG", "Tracing": "Active"})
    environment = function["environment"]
    assert (environment["MAX_BATCH_SIZE"], environment["POWERTOOLS_LOG_LEVEL"]) == ("5", "DEBUG")
    assert environment["POWERTOOLS_TRACE_DISABLED"] == "false"
    assert function["architectures"] == [invoke_local.host_architecture()]
    worker = invoke_local.describe_function(
        {"WorkEntryPoint": "mypackage.actions:run", "WorkTimeout": "900", "WorkMemorySize": "512"}, invoke_local.WORKER
    )
    assert (worker["name"], worker["timeout"], worker["memory"]) == (invoke_local.WORKER, 900, 512)
    assert worker["environment"]["WORK_FUNCTION"] == "mypackage.actions:run"
