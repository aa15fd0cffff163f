"""End to end: `sam build` for this machine into build/sam-host/, then the built artifacts run two ways on every
events/ file, with the same expected outcomes: under the Lambda Runtime Interface Emulator on this machine (what
`make invoke` runs), and in Docker through the SAM CLI's own `sam local invoke` (what `make invoke DOCKER=1` and
`make sam-local` run). The job worker handles each event against the local endpoint, claims the seeded jobs and
hands them to a work queue in moto; the work function runs the queued jobs and reports them; the action-type
function registers the action type on the local endpoint.

Without Docker, the `sam local invoke` half is skipped with one line saying why, except in CI (CI=true), where a
missing Docker is a failure: `.ci/run` starts it. None of it touches .aws-sam/, which holds the build `sam deploy`
ships."""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import math
import re
import shlex
import subprocess
import sys
import sysconfig
import threading
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import botocore
import pytest

import invoke_local
import sam_local
from codepipeline_worker.shared.adapter import ACKNOWLEDGER_SERVICES
from finish_build import LIMITED
from tests.conftest import EVENTS, load_event
from tests.template.conftest import ROOT, Stack

if TYPE_CHECKING:
    from collections.abc import Iterator

Built = tuple[Path, dict[str, Any]]
RUNTIME_PYTHON = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
DEPLOYABLE = ROOT / ".aws-sam"
REGISTRAR = "ActionTypeFunction"

# Every events/ file and what it comes to: the job worker's claims (acknowledged, and refused with
# ClientIdRequired), an invalid event; the work function's SQS events. Every example partner event carries its
# clientId, by which the work side reads the token: each is claimed and handed off.
CLAIMS = {
    "custom-job.json": (1, 0),
    "partner-job.json": (1, 0),
    "partner-job-client-id.json": (1, 0),
    "partner-job-token-only.json": (1, 0),
    "batch.json": (4, 0),
    "scheduled.json": (2, 0),
    "action-started.json": (2, 0),
}
# A partner job handed off needs its clientId: the same events without it are not claimed (ClientIdRequired),
# and CodePipeline dispatches the job again
WITHOUT_CLIENT_ID = ["partner-job.json", "partner-job-token-only.json"]
INVALID = ["invalid-typo.json", "invalid-docs-example-id.json", "invalid-lambda-invoke.json"]
SQS_EVENTS = ["work/batch.json"]


def snapshot(top: Path) -> dict[str, tuple[int, int]] | None:
    """Every file under `top`, with its size and modification time; None when `top` does not exist."""
    if not top.exists():
        return None
    return {str(p.relative_to(top)): (p.stat().st_size, p.stat().st_mtime_ns) for p in top.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def deployable_before() -> dict[str, tuple[int, int]] | None:
    return snapshot(DEPLOYABLE)


@pytest.fixture(scope="module")
def built(deployable_before: dict[str, tuple[int, int]] | None) -> Built:
    # A real build, not one skipped because nothing changed since the last: what it writes is under test
    invoke_local.INPUTS_STAMP.unlink(missing_ok=True)
    return invoke_local.build({}), invoke_local.describe_function({})


@functools.cache
def work_function() -> dict[str, Any]:
    """The work function as the SAM CLI resolves it (once: each answer costs a SAM CLI process)."""
    return invoke_local.describe_function({}, invoke_local.WORKER)


@pytest.fixture(scope="module", params=["emulator", pytest.param("sam-local-invoke", marks=pytest.mark.docker)])
def runner(request: pytest.FixtureRequest, built: Built) -> invoke_local.Runner:
    """The emulator, then `sam local invoke` in Docker (skipped without Docker, except in CI)."""
    if request.param == "emulator":
        return invoke_local.Emulator()
    sam: invoke_local.Runner = request.getfixturevalue("sam_local_invoke")
    return sam


def states(local: invoke_local.LocalAws) -> dict[str, str]:
    return {job["jobId"]: job["status"] for job in local.endpoint.store.jobs()}


def under_emulator(runner: invoke_local.Runner) -> bool:
    return isinstance(runner, invoke_local.Emulator)


@dataclass
class Run:
    """What an events/ file came to: the job worker's invocation, the jobs' states after it and how many jobs it
    queued (None without a work queue); with `work`, the work function's invocation on them and what followed."""

    invocation: invoke_local.Invocation
    states: dict[str, str]
    queued: int | None
    work: invoke_local.Invocation | None = None
    final_states: dict[str, str] | None = None
    left: int | None = None


def run_event(
    built: Built,
    runner: invoke_local.Runner,
    name: str,
    *,
    queue: bool = True,
    work: bool = False,
    without: str | None = None,
) -> Run:
    """The job worker on an events/ file (`without` one of its keys), as `make invoke` runs it; with `work`, then
    the work function on what it queued, as `make invoke FUNCTION=WorkFunction` does. Without `queue`, the job
    worker has no work queue, as under a bare `sam local invoke`, where the template's JOB_QUEUE_URL resolves to
    nothing."""
    _, function = built
    event = load_event(name)
    if without:
        del event[without]
    environment = {k: v for k, v in function["environment"].items() if v != ""}
    with invoke_local.local_aws(event, environment["ACTION_TYPES"], runner.reachable) as local:
        environment.update(local.environment)
        if not queue:
            del environment["JOB_QUEUE_URL"]
        with runner.running(function, environment) as running:
            run = Run(running.invoke(event), states(local), local.queued() if queue else None)
        if work:
            worker = work_function()
            runs = invoke_local.run_work_function(local, worker, runner=runner)
            run.work = runs[0][1] if runs else None
            run.final_states = states(local)
            run.left = local.queued()
    return run


def test_every_function_of_the_template_runs_here() -> None:
    """A new function in template.yaml fails here until the tests below run it, under both runners."""
    functions = {name for name, r in Stack().source["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}
    assert functions == {invoke_local.ACKNOWLEDGER, invoke_local.WORKER, invoke_local.DEAD_LETTER, REGISTRAR}


def test_samconfig_points_sam_local_invoke_at_this_machine_by_the_name_it_maps() -> None:
    """The endpoint `samconfig.toml` gives `sam local invoke` is on the host name its add_host maps to this
    machine (the tests' runs use that name too, with their own ports)."""
    settings = tomllib.loads((ROOT / "samconfig.toml").read_text())["default"]["local_invoke"]["parameters"]
    assert "docker_network" not in settings  # the SAM CLI ignores "host" for sam local invoke
    overrides = dict(pair.split("=", 1) for pair in shlex.split(settings["parameter_overrides"]))
    assert urlsplit(overrides["CodePipelineEndpointUrl"]).hostname == sam_local.container_host()


def test_every_event_file_has_an_expected_outcome() -> None:
    """A new events/ file fails here until the tests below say what it comes to, under both runners."""
    files = {str(path.relative_to(EVENTS)) for path in EVENTS.rglob("*.json")}
    assert files == {*CLAIMS, *INVALID, *SQS_EVENTS}


def test_the_host_build_leaves_the_deployable_build_as_it_was(
    built: Built, deployable_before: dict[str, tuple[int, int]] | None
) -> None:
    """`make build` fills .aws-sam/build for the template's architecture; `make invoke`, `make test` and
    `make bench` build for this machine elsewhere (this build is theirs), so `sam deploy` never ships it."""
    artifact, _ = built
    assert DEPLOYABLE not in artifact.parents
    assert artifact.is_relative_to(invoke_local.BUILD_DIR)
    assert snapshot(DEPLOYABLE) == deployable_before
    # `sam local invoke` (make invoke DOCKER=1, make sam-local) runs the same host build
    assert sam_local.SamLocal().template == invoke_local.BUILD_DIR / "template.yaml"


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


def test_the_acknowledgers_clients_have_the_operations_its_role_is_granted_and_no_other(built: Built) -> None:
    """Each service the acknowledger calls has, in its built artifact, the operations of its calls (and botocore's
    own endpoint discovery's), as botocore reads them: the client's methods."""
    artifact, _ = built
    operations, whole = LIMITED[invoke_local.ACKNOWLEDGER]
    script = (
        "import json, sys, botocore.session; s = botocore.session.get_session(); print(json.dumps({n: "
        "s.get_service_model(n).operation_names for n in sys.argv[1:]}))"
    )
    called = sorted({op.split(":")[0] for op in operations})
    done = subprocess.run(  # noqa: S603 - the runtime's interpreter on the test's own script
        [str(RUNTIME_PYTHON), "-S", "-c", f"import sys; sys.path.insert(0, {str(artifact)!r}); {script}", *called],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    kept = json.loads(done.stdout)
    assert {f"{service}:{name}" for service, names in kept.items() for name in names} - operations == {
        "dynamodb:DescribeEndpoints"
    }
    assert operations <= {f"{service}:{name}" for service, names in kept.items() for name in names}
    assert set(called) | set(whole) == ACKNOWLEDGER_SERVICES


def test_only_the_acknowledgers_session_registers_its_services_handlers_alone(built: Built) -> None:
    """Its artifact holds SDK data for its services alone: its session registers botocore's built-in handlers for
    them only (shared/adapter.py `sdk_session`). The work function's artifact is whole: botocore's own session."""
    artifact, _ = built
    script = "from codepipeline_worker.shared.adapter import sdk_session; print(type(sdk_session()).__name__)"
    kinds = [
        subprocess.run(  # noqa: S603 - the runtime's interpreter on the test's own script
            [str(RUNTIME_PYTHON), "-S", "-c", f"import sys; sys.path.insert(0, {str(site)!r}); {script}"],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
            env={"AWS_DEFAULT_REGION": "us-east-1", "PATH": "/usr/bin:/bin"},
        ).stdout.strip()
        for site in (artifact, invoke_local.artifact(invoke_local.WORKER))
    ]
    assert kinds == ["_ScopedSession", "Session"]


def test_the_limited_sdk_data_resolves_every_endpoint_as_the_full_botocore_does(built: Built) -> None:
    """Every region of every partition, with and without FIPS and dual-stack, for each service the acknowledger
    may call: the same client endpoint, request URL and signing, or the same error, as the full botocore of the
    same version (the development environment's). The request is one of the acknowledger's own calls, for the
    services whose operations its artifact limits."""
    artifact, _ = built
    full = Path(sysconfig.get_paths()["purelib"])
    assert list(artifact.glob(f"botocore-{botocore.__version__}.dist-info")), "not the botocore version compared"
    script = Path(__file__).with_name("endpoint_urls.py")
    operations, _ = LIMITED[invoke_local.ACKNOWLEDGER]
    first_call = {op.split(":")[0]: op for op in sorted(operations, reverse=True)}
    services = [first_call.get(service, service) for service in sorted(ACKNOWLEDGER_SERVICES)]
    runs = [
        subprocess.Popen(  # noqa: S603 - the runtime's interpreter on the test's own script
            [str(RUNTIME_PYTHON), "-S", str(script), str(site), *services],
            stdout=subprocess.PIPE,
            text=True,
        )
        for site in (artifact, full)
    ]
    limited, whole = (json.loads(run.communicate(timeout=300)[0]) for run in runs)

    assert limited == whole
    assert len(whole) > 1000  # 6 services, about 60 regions each, 4 settings
    assert whole["codepipeline us-gov-west-1 fips"]["url"] == "https://codepipeline-fips.us-gov-west-1.amazonaws.com/"


@pytest.mark.parametrize(("name", "claims"), CLAIMS.items(), ids=list(CLAIMS))
def test_each_event_claims_its_jobs_then_the_work_function_reports_them(
    built: Built, runner: invoke_local.Runner, name: str, claims: tuple[int, int]
) -> None:
    claimed, refused = claims
    run = run_event(built, runner, name, work=True)

    response = run.invocation.response
    assert "errorType" not in response, response
    results = response.get("results", [response])
    assert sorted(r["outcome"] for r in results) == ["acknowledged"] * claimed + ["failed"] * refused
    assert [r["error"] for r in results if r["outcome"] == "failed"] == ["ClientIdRequired"] * refused
    assert [r.get("handoff") for r in results if r["outcome"] == "acknowledged"] == ["queued"] * claimed
    assert run.queued == claimed
    assert sorted(run.states.values()) == ["Dispatched"] * refused + ["InProgress"] * claimed
    assert "REPORT RequestId" in run.invocation.logs
    # A poll covers the template's action types: the function's configuration is the template's, whatever the
    # shell running the SAM CLI holds (the tests' environment sets other ACTION_TYPES)
    polls = [(poll["actionType"], poll.get("error")) for poll in response.get("polls", [])]
    assert polls in ([], [(action_type, None) for action_type in built[1]["environment"]["ACTION_TYPES"].split(",")])
    # The work function, on the queued jobs as one SQS event: the example action checks each job's local page
    # and reports it succeeded; every message is deleted
    assert run.work is not None
    assert run.work.response == {"batchItemFailures": []}
    assert sorted((run.final_states or {}).values()) == ["Dispatched"] * refused + ["Succeeded"] * claimed
    assert run.left == 0
    if under_emulator(runner):  # the emulator reports the runtime's real peak memory; in Docker, the limit
        # MemorySize 128 in the template: the runtime's peak resident memory fits, with room
        assert run.invocation.peak_memory_mb is not None
        assert run.invocation.peak_memory_mb < 100, run.invocation.peak_memory_mb


@pytest.mark.parametrize("name", WITHOUT_CLIENT_ID)
def test_a_partner_job_without_its_client_id_is_not_claimed_for_the_work_queue(
    built: Built, runner: invoke_local.Runner, name: str
) -> None:
    run = run_event(built, runner, name, without="clientId")

    # Returned, not raised: the event holds a client token, which a failed invocation's record would keep
    assert (run.invocation.response["outcome"], run.invocation.response["error"]) == ("failed", "ClientIdRequired")
    assert "errorType" not in run.invocation.response
    assert list(run.states.values()) == ["Dispatched"]
    assert run.queued == 0


@pytest.mark.parametrize("name", ["custom-job.json", "scheduled.json"])
def test_the_report_line_is_true(built: Built, name: str) -> None:
    """The emulator prints the memory size as Max Memory Used and a near-zero Init Duration, and counts the init
    into Duration; make invoke's REPORT line says what Lambda's would."""
    invocation = run_event(built, invoke_local.Emulator(), name).invocation

    [report] = [line for line in invocation.logs.splitlines() if line.startswith("REPORT RequestId:")]
    fields = dict(part.split(": ", 1) for part in report.split("\t"))
    assert invocation.peak_memory_mb is not None
    assert fields["Max Memory Used"] == f"{math.ceil(invocation.peak_memory_mb)} MB"
    assert fields["Memory Size"] == "128 MB"
    [init] = re.findall(r"INIT REPORT\(durationMs: ([0-9.]+)\)", invocation.logs)
    assert fields["Init Duration"] == f"{float(init):.2f} ms"
    rtdone = r"INVOKE RTDONE\(status: success, produced bytes: \d+, duration: ([0-9.]+)ms\)"
    [done] = re.findall(rtdone, invocation.logs)
    assert fields["Duration"] == f"{float(done):.2f} ms"
    assert fields["Billed Duration"] == f"{math.ceil(float(done))} ms"


@pytest.mark.parametrize(("name", "claimed"), [("partner-job.json", 1), ("batch.json", 4)])
def test_without_a_work_queue_every_event_claims_its_jobs(
    built: Built, runner: invoke_local.Runner, name: str, claimed: int
) -> None:
    """As under a bare `sam local invoke`, where JOB_QUEUE_URL resolves to nothing: claims only."""
    run = run_event(built, runner, name, queue=False)

    results = run.invocation.response.get("results", [run.invocation.response])
    assert [r["outcome"] for r in results] == ["acknowledged"] * claimed
    assert all("handoff" not in r for r in results)
    assert list(run.states.values()) == ["InProgress"] * claimed


@pytest.mark.parametrize("name", INVALID)
def test_invalid_events_are_answered_as_invalid_job_event(built: Built, runner: invoke_local.Runner, name: str) -> None:
    run = run_event(built, runner, name)

    assert run.invocation.response["error"] == "InvalidJobEvent"
    message = run.invocation.response["message"]
    assert "invalid event" in message or "Lambda-invoke" in message
    assert set(run.states.values()) <= {"Dispatched"}  # nothing claimed
    assert run.queued == 0


def test_the_work_function_runs_the_queued_jobs_and_reports_batch_item_failures(
    built: Built, runner: invoke_local.Runner
) -> None:
    """The job worker claims two jobs and queues them; the built work function gets them as one SQS event, with
    a message that is not a job: the example action checks the jobs' local URL and reports them succeeded, and
    only the stray message comes back in batchItemFailures, to be delivered again."""
    _, acknowledger = built
    worker = work_function()
    event = load_event("action-started.json")
    environment = {k: v for k, v in acknowledger["environment"].items() if v != ""}
    with invoke_local.local_aws(event, environment["ACTION_TYPES"], runner.reachable) as local:
        with runner.running(acknowledger, {**environment, **local.environment}) as running:
            assert running.invoke(event).response["counts"]["queued"] == 2
        messages = local.receive()
        assert len(messages) == 2
        sqs_event = local.sqs_event(messages)
        stray = {**sqs_event["Records"][0], "messageId": "not-a-job", "body": json.dumps({"hello": "world"})}
        sqs_event["Records"].append(stray)
        work_environment = {**{k: v for k, v in worker["environment"].items() if v != ""}, **local.environment}
        with runner.running(worker, work_environment) as running_worker:
            invocation = running_worker.invoke(sqs_event)
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
    if under_emulator(runner):
        assert invocation.peak_memory_mb is not None
        assert invocation.peak_memory_mb < worker["memory"], invocation.peak_memory_mb


def on_event_file(
    built: Built, runner: invoke_local.Runner, name: str, function: dict[str, Any]
) -> tuple[invoke_local.Invocation, set[str], dict[str, str], dict[str, dict[str, Any]]]:
    """A built function on an SQS event file, its jobs seeded InProgress: its invocation, the jobs the file names,
    their states before, and every job after."""
    _, acknowledger = built
    event = load_event(name)
    with invoke_local.local_aws(event, acknowledger["environment"]["ACTION_TYPES"], runner.reachable) as local:
        before = states(local)
        [(_, invocation)] = invoke_local.run_work_function(local, function, event, runner)
        after = {job["jobId"]: job for job in local.endpoint.store.jobs()}
    named = {json.loads(record["body"])["jobId"] for record in event["Records"]}
    return invocation, named, before, after


@pytest.mark.parametrize("name", SQS_EVENTS)
def test_the_work_function_runs_an_sqs_event_file_on_jobs_already_claimed(
    built: Built, runner: invoke_local.Runner, name: str
) -> None:
    """What `make invoke EVENT=events/work/batch.json` runs: the SQS event as it is, its jobs seeded InProgress."""
    invocation, named, before, after = on_event_file(built, runner, name, work_function())

    assert invocation.response == {"batchItemFailures": []}
    assert before == dict.fromkeys(named, "InProgress")
    assert {job_id: after[job_id]["status"] for job_id in named} == dict.fromkeys(named, "Succeeded")


@pytest.mark.parametrize("name", SQS_EVENTS)
def test_the_dead_letter_handler_fails_back_the_jobs_of_an_sqs_event_file(
    built: Built, runner: invoke_local.Runner, name: str
) -> None:
    """The same SQS event as the dead-letter queue would deliver it: each job, InProgress, is failed back once."""
    dead_letters = invoke_local.describe_function({}, invoke_local.DEAD_LETTER)
    invocation, named, before, after = on_event_file(built, runner, name, dead_letters)

    assert invocation.response == {"batchItemFailures": []}
    assert before == dict.fromkeys(named, "InProgress")
    for job_id in named:
        failed = [h for h in after[job_id]["history"] if h["event"] == "failed"]
        assert [(h["failureType"], h["failureMessage"][:40]) for h in failed] == [
            ("JobFailed", "The job worker did not complete this job")
        ]


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


# -- make invoke's command line ------------------------------------------------------------------------------


def test_make_invoke_shows_what_the_work_function_reported_and_exits_0(
    built: Built, capsys: pytest.CaptureFixture[str]
) -> None:
    status = invoke_local.main(["events/custom-job.json", "--function", "WorkFunction", "--no-build"])

    err = capsys.readouterr().err
    assert status == 0
    assert "job 11111111-abcd-1111-abcd-111111abcdef: Dispatched -> Succeeded" in err
    assert re.search(r"reported: succeeded: http://127\.0\.0\.1:\d+/healthy answered 200 at check 1", err)


def test_make_invoke_exits_1_when_the_event_fails(built: Built, capsys: pytest.CaptureFixture[str]) -> None:
    status = invoke_local.main(["events/invalid-typo.json", "--no-build"])

    assert status == 1
    assert "JobWorkerFunction failed: InvalidJobEvent: invalid event" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        # Every bad override at once, each named with what it breaks
        (
            ["--parameter-overrides", "ActionTypes=custom/Build MaxBatchSize=500 WorkFunction=x:run"],
            [
                "OVERRIDES: ActionTypes=custom/Build: Owner/Category/Provider/Version",
                "OVERRIDES: MaxBatchSize=500: must be at most 100",
                "OVERRIDES: WorkFunction: template.yaml has no such parameter",
            ],
        ),
        (["--parameter-overrides", "LogLevel"], ["OVERRIDES: LogLevel: each override is Key=Value"]),
        (["--parameter-overrides", "Architecture=arm64"], ["OVERRIDES: Architecture=arm64: make invoke runs the"]),
        (
            ["--parameter-overrides", "WorkEntryPoint=actions.not_there:run"],
            ["WORK_FUNCTION=actions.not_there:run: module actions.not_there cannot be imported"],
        ),
    ],
)
def test_make_invoke_refuses_bad_settings_in_one_line_each_before_building(
    arguments: list[str], says: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(invoke_local, "build", _no_build)

    status = invoke_local.main(["events/custom-job.json", *arguments])

    lines = capsys.readouterr().err.splitlines()
    assert status == 2
    assert len(lines) == len(says)
    for line, said in zip(lines, says, strict=True):
        assert line.startswith(said), line


def test_make_invoke_names_an_event_file_that_is_not_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(invoke_local, "build", _no_build)
    event = tmp_path / "broken.json"
    event.write_text('{"jobId": "11111111-abcd-1111-abcd-111111abcdef",\n "nonce": }')

    assert invoke_local.main([str(event)]) == 2
    assert invoke_local.main([str(tmp_path / "missing.json")]) == 2

    assert capsys.readouterr().err.splitlines() == [
        f"EVENT={event}: not JSON: Expecting value at line 2, column 11",
        f"EVENT={tmp_path / 'missing.json'}: No such file or directory (the examples: events/*.json)",
    ]


def _no_build(overrides: dict[str, str]) -> Path:
    raise AssertionError("built, though the settings were refused")


# -- the action-type function (RegisterCustomActionType=true) -------------------------------------------------


class _Answers(http.server.BaseHTTPRequestHandler):
    """CloudFormation's ResponseURL: keeps each answer PUT to it."""

    answers: list[dict[str, Any]]

    def do_PUT(self) -> None:
        self.answers.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@contextlib.contextmanager
def response_url() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    answers: list[dict[str, Any]] = []
    handler = type("Answers", (_Answers,), {"answers": answers})
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}/stack-response", answers
        finally:
            server.shutdown()


def test_the_action_type_function_registers_the_action_type_and_removes_it(
    built: Built, runner: invoke_local.Runner
) -> None:
    """The stack's custom resource, built: Create registers the first of ActionTypes with the properties the
    work function declares, Delete removes it; each request answered on its ResponseURL."""
    _, acknowledger = built
    registrar = invoke_local.describe_function({"RegisterCustomActionType": "true"}, REGISTRAR)
    action_type = acknowledger["environment"]["ACTION_TYPES"].split(",")[0]
    request = {
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/worker/1",
        "RequestId": "request-1",
        "LogicalResourceId": "ActionType",
        "ResourceType": "Custom::ActionType",
        "ResourceProperties": {
            "ActionType": action_type,
            "WorkEntryPoint": work_function()["environment"]["WORK_FUNCTION"],
            "PollQueryParam": "",
        },
    }
    with (
        invoke_local.local_aws({}, action_type, runner.reachable) as local,
        response_url() as (url, answers),
    ):
        environment = {**{k: v for k, v in registrar["environment"].items() if v != ""}, **local.environment}
        with runner.running(registrar, environment) as running:
            created = running.invoke({**request, "RequestType": "Create", "ResponseURL": runner.reachable(url)})
            registered = custom_action_types(local)
            deleted = running.invoke(
                {
                    **request,
                    "RequestType": "Delete",
                    "ResponseURL": runner.reachable(url),
                    "PhysicalResourceId": action_type,
                }
            )
            left = custom_action_types(local)

    assert [a["Status"] for a in answers] == ["SUCCESS", "SUCCESS"], answers
    assert created.response["Data"] == {"ActionType": action_type}
    assert deleted.response["PhysicalResourceId"] == action_type
    assert {p["name"] for p in registered[action_type]["actionConfigurationProperties"]} >= {"Url"}
    assert action_type not in left


def custom_action_types(local: invoke_local.LocalAws) -> dict[str, dict[str, Any]]:
    """The endpoint's custom action types, by Owner/Category/Provider/Version."""
    listed = local.endpoint.store.list_action_types({"actionOwnerFilter": "Custom"})["actionTypes"]
    keys = ("owner", "category", "provider", "version")
    return {"/".join(t["id"][k] for k in keys): t for t in listed}
