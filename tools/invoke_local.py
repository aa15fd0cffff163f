"""`make invoke EVENT=events/<file>.json [FUNCTION=WorkFunction]`: `sam local invoke` without Docker.

Builds the functions with `sam build` (for this machine's architecture), then runs the built artifact under the
Lambda Runtime Interface Emulator that ships inside the aws-sam-cli wheel, with awslambdaric on python3.13, in
the environment template.yaml gives it (parameter defaults and overrides applied, as the SAM CLI resolves them).
It listens on 127.0.0.1 only. By default the function talks to an embedded local CodePipeline endpoint, seeded
with the jobs the event names, and to moto's Secrets Manager (partner tokens) and SQS: the job worker hands the
jobs it claims to a work queue there. The seeded jobs' `Url` is a local page that answers 200, for the example
action.

- A job worker event (events/*.json) runs JobWorkerFunction; with `--function WorkFunction`, the work function
  then runs on what the work queue holds, as one SQS event, as Lambda's event source would, and reports.
- An SQS event (events/work/*.json) runs WorkFunction on it, the jobs its messages name seeded as claimed.

`--endpoint URL` uses a CodePipeline endpoint of yours (job worker events only; no work queue). The last
function's response goes to stdout, the logs to stderr, as `sam local invoke` does. `--docker` runs the same
through the SAM CLI's own `sam local invoke`, in Docker (tools/sam_local.py).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

import boto3

import finish_build
from codepipeline_local import LocalCodePipeline, ServiceError, StatusPages
from codepipeline_worker.work.consume import as_sqs_event, settled
from local_resources import create_job_table, create_work_queues

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from contextlib import AbstractContextManager

    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

ROOT = Path(__file__).resolve().parent.parent
SAM_VENV = ROOT / ".venv-sam"
BUILD_DIR = ROOT / ".aws-sam" / "build"
RIC_DIR = ROOT / ".aws-sam" / "ric"
ACKNOWLEDGER = "JobWorkerFunction"
WORKER = "WorkFunction"
DEAD_LETTER = "DeadLetterFunction"
FUNCTION = ACKNOWLEDGER
AWSLAMBDARIC = "awslambdaric==4.2.2"
CLIENT_ID = "c1e7d1a0-1234-4abc-9def-0123456789ab"
INVOCATIONS = "/2015-03-31/functions/function/invocations"
REGION = "us-east-1"


def host_architecture() -> str:
    """The Lambda architecture this machine runs: an artifact built for the other one cannot run here."""
    return {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine().lower()]


def sam(*args: str) -> list[str]:
    return [str(SAM_VENV / "bin" / "sam"), *args]


def tool_environment() -> dict[str, str]:
    """The environment for the SAM CLI: python3.13 (the runtime) first on PATH, a region, no telemetry."""
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        "SAM_CLI_TELEMETRY": "0",
    }


def build(overrides: dict[str, str]) -> Path:
    """`sam build` for this machine's architecture, then the post-build step of `make build` (tools/finish_build.py:
    the acknowledger's SDK data limited, bytecode compiled); returns the built job worker's directory
    (`artifact(WORKER)` is the work function's)."""
    parameters = " ".join(f"{k}={v}" for k, v in {"Architecture": host_architecture(), **overrides}.items())
    subprocess.run(  # noqa: S603 - the project's own SAM CLI
        sam("build", "--parameter-overrides", parameters),
        cwd=ROOT,
        env=tool_environment(),
        check=True,
        stdout=sys.stderr,
    )
    finish_build.finish(BUILD_DIR)
    return artifact(ACKNOWLEDGER)


def artifact(function: str) -> Path:
    """A built function's directory."""
    return BUILD_DIR / function


def describe_function(overrides: dict[str, str], function: str = ACKNOWLEDGER) -> dict[str, Any]:
    """Name, handler, timeout, memory and environment as the SAM CLI resolves them from template.yaml."""
    pairs = [f"{k}={v}" for k, v in {"Architecture": host_architecture(), **overrides}.items()]
    done = subprocess.run(  # noqa: S603 - the project's own SAM CLI environment
        [
            str(SAM_VENV / "bin" / "python"),
            str(ROOT / "tools" / "sam_inspect.py"),
            "function",
            "template.yaml",
            function,
            *pairs,
        ],
        cwd=ROOT,
        env=tool_environment(),
        check=True,
        capture_output=True,
        text=True,
    )
    described: dict[str, Any] = json.loads(done.stdout)
    return described


def runtime_interface_client() -> Path:
    """awslambdaric, installed once for python3.13 beside the build (never into the artifact)."""
    if not (RIC_DIR / "awslambdaric").is_dir():
        subprocess.run(  # noqa: S603 - pip of the runtime's interpreter
            [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(RIC_DIR), AWSLAMBDARIC],
            check=True,
            stdout=sys.stderr,
        )
    return RIC_DIR


def emulator() -> Path:
    """The Runtime Interface Emulator inside the aws-sam-cli wheel, for this machine's architecture."""
    done = subprocess.run(  # noqa: S603 - the project's own SAM CLI environment
        [str(SAM_VENV / "bin" / "python"), "-c", "import samcli, os; print(os.path.dirname(samcli.__file__))"],
        check=True,
        capture_output=True,
        text=True,
    )
    return Path(done.stdout.strip()) / "local" / "rapid" / f"aws-lambda-rie-{host_architecture()}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Invocation:
    response: Any
    logs: str
    peak_memory_mb: float | None


class Invoker(Protocol):
    def invoke(self, event: Any) -> Invocation: ...


class Runner(Protocol):
    """How the built functions run: under the emulator on this machine (`Emulator`), or in Docker through the
    SAM CLI's own `sam local invoke` (`sam_local.SamLocal`). Both take the same environment and events."""

    def reachable(self, url: str) -> str:
        """The function's view of a server listening on this machine's 127.0.0.1."""
        ...

    def running(self, function: dict[str, Any], environment: dict[str, str]) -> AbstractContextManager[Invoker]:
        """The function described (`describe_function`) ready to invoke, with this environment."""
        ...


class Emulator:
    """The built artifacts under the Runtime Interface Emulator, on this machine: 127.0.0.1 is shared."""

    def reachable(self, url: str) -> str:
        return url

    def running(self, function: dict[str, Any], environment: dict[str, str]) -> AbstractContextManager[Invoker]:
        return running_function(artifact(function["name"]), function, environment)


@dataclass
class RunningFunction:
    """The emulator running the built function: where to invoke it and where its output goes."""

    url: str
    log_path: Path
    pid: int

    def invoke(self, event: Any) -> Invocation:
        request = urllib.request.Request(  # noqa: S310 - the emulator on loopback
            self.url, data=json.dumps(event).encode(), method="POST", headers={"Content-Type": "application/json"}
        )
        offset = self.log_path.stat().st_size
        with urllib.request.urlopen(request, timeout=120) as answer:  # noqa: S310 - the emulator on loopback
            response = json.loads(answer.read() or b"null")
        time.sleep(0.2)  # the emulator writes its REPORT line just after answering
        with self.log_path.open() as log:
            log.seek(offset)
            logs = log.read()
        return Invocation(response, logs, _peak_memory_mb(self.pid))


@contextlib.contextmanager
def running_function(
    artifact: Path, function: dict[str, Any], environment: dict[str, str]
) -> Iterator[RunningFunction]:
    """Run the built function under the emulator on 127.0.0.1; yield its invocation URL."""
    api_port, rie_port = free_port(), free_port()
    base_python = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/tmp"),  # noqa: S108 - a fallback for the runtime's home
        "LANG": "C.UTF-8",
        # The artifact first: only what `sam build` packaged is importable, then the runtime client.
        "PYTHONPATH": f"{artifact}{os.pathsep}{runtime_interface_client()}",
        "PYTHONNOUSERSITE": "1",
        "LAMBDA_TASK_ROOT": str(artifact),
        "AWS_LAMBDA_FUNCTION_NAME": function["name"],
        "AWS_LAMBDA_FUNCTION_TIMEOUT": str(function["timeout"]),
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function["memory"]),
        "AWS_REGION": environment.get("AWS_DEFAULT_REGION", "us-east-1"),
        **environment,
    }
    command = [
        str(emulator()),
        "--runtime-interface-emulator-address",
        f"127.0.0.1:{rie_port}",
        "--runtime-api-address",
        f"127.0.0.1:{api_port}",
        str(base_python),
        "-m",
        "awslambdaric",
        function["handler"],
    ]
    log_path = ROOT / "build" / f"invoke-{uuid.uuid4().hex[:8]}.log"
    log_path.parent.mkdir(exist_ok=True)
    with (
        log_path.open("w+") as log,
        subprocess.Popen(  # noqa: S603 - the emulator from the SAM CLI wheel
            command, cwd=artifact, env=env, stdout=log, stderr=subprocess.STDOUT
        ) as process,
    ):
        try:
            wait_for_port(rie_port, process)
            yield RunningFunction(f"http://127.0.0.1:{rie_port}{INVOCATIONS}", log_path, process.pid)
        finally:
            process.terminate()
            process.wait(timeout=10)
    log_path.unlink(missing_ok=True)


def _peak_memory_mb(emulator_pid: int) -> float | None:
    """The runtime process's peak resident memory (VmHWM), the figure Lambda's Max Memory Used reports."""
    # The emulator is a Go program: whichever of its threads started the runtime lists it as its child.
    with contextlib.suppress(OSError, ValueError):
        for children in Path(f"/proc/{emulator_pid}/task").glob("*/children"):
            for child in children.read_text().split():
                for line in Path(f"/proc/{child}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024
    return None


def wait_for_port(port: int, process: subprocess.Popen[Any]) -> None:
    """Until the process listens on 127.0.0.1:port; fails if it exits first or takes over 30 s."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{process.args!r} did not start listening")


# -- the embedded endpoints, seeded for the event ----------------------------------------------------------


@dataclass
class LocalAws:
    """The embedded endpoints and the environment that points the functions at them: the local CodePipeline
    endpoint, and moto's Secrets Manager, SQS (the work queue) and DynamoDB (the job table)."""

    endpoint: LocalCodePipeline
    environment: dict[str, str]
    sqs: SQSClient
    queue_url: str
    queue_arn: str

    def queued(self) -> int:
        """How many messages the work queue holds."""
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"])

    def receive(self) -> list[MessageTypeDef]:
        """Every message the work queue holds, received (so invisible for its visibility timeout)."""
        messages: list[MessageTypeDef] = []
        while True:
            batch = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
            ).get("Messages", [])
            if not batch:
                return messages
            messages.extend(batch)

    def sqs_event(self, messages: list[MessageTypeDef]) -> dict[str, Any]:
        """The messages as Lambda's SQS event source hands them to the work function."""
        return as_sqs_event(messages, self.queue_arn, REGION)

    def delete(self, messages: list[MessageTypeDef], batch_item_failures: Any) -> None:
        """What the event source does after an invocation: delete every message the function did not name in
        `batchItemFailures`."""
        for handle in settled(messages, batch_item_failures):
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=handle)


def _same(url: str) -> str:
    return url


@contextlib.contextmanager
def local_aws(event: Any, action_types: str, reachable: Callable[[str], str] = _same) -> Iterator[LocalAws]:
    """The local CodePipeline endpoint, seeded with the jobs the event names, and moto's Secrets Manager (the
    partner tokens) and SQS (the work queue); the seeded jobs' `Url` is a local page that answers 200.
    `environment` and the jobs' `Url` hold the function's view of these servers (`Runner.reachable`)."""
    from moto.server import ThreadedMotoServer  # noqa: PLC0415 - only when the embedded endpoints are used

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    try:
        with LocalCodePipeline() as endpoint, StatusPages({"/healthy": [200]}) as pages:
            moto_url = "http://{}:{}".format(*moto.get_host_and_port())
            token = uuid.uuid4().hex  # throwaway, for the partner jobs this run creates
            secret_id = f"client-tokens-{uuid.uuid4().hex[:8]}"
            tokens = dict.fromkeys([CLIENT_ID, *(m.get("clientId") for m in _job_messages(event))], token)
            tokens.pop(None, None)
            _moto_client("secretsmanager", moto_url).create_secret(Name=secret_id, SecretString=json.dumps(tokens))
            sqs: SQSClient = _moto_client("sqs", moto_url)
            name = f"work-{uuid.uuid4().hex[:8]}"
            queue_url, _ = create_work_queues(sqs, name)  # the template's FIFO work queue and job table
            table = create_job_table(_moto_client("dynamodb", moto_url), name)
            attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
            seed(endpoint, event, action_types, token, {"Url": reachable(pages.url("/healthy"))})
            yield LocalAws(
                endpoint,
                {
                    "AWS_ENDPOINT_URL_CODEPIPELINE": reachable(endpoint.url),
                    "AWS_ENDPOINT_URL_SECRETS_MANAGER": reachable(moto_url),
                    "AWS_ENDPOINT_URL_SQS": reachable(moto_url),
                    "AWS_ENDPOINT_URL_DYNAMODB": reachable(moto_url),
                    # Under the SAM CLI the template's JOB_QUEUE_URL (the stack's queue) resolves to nothing, and
                    # JOB_TABLE_NAME to the table's logical id
                    "JOB_QUEUE_URL": reachable(queue_url),
                    "JOB_TABLE_NAME": table,
                    "CLIENT_TOKEN_SECRET_ID": secret_id,
                    # The example action checks the local page, on 127.0.0.1: an address it refuses by default
                    "URL_GATE_ALLOW_PRIVATE_ADDRESSES": "true",
                    "AWS_ACCESS_KEY_ID": "local",
                    "AWS_SECRET_ACCESS_KEY": "local",
                    "AWS_DEFAULT_REGION": REGION,
                },
                sqs,
                queue_url,
                attributes["QueueArn"],
            )
    finally:
        moto.stop()


def _moto_client(service: Literal["secretsmanager", "sqs", "dynamodb"], url: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - moto's throwaway credentials
    )


def seed(
    endpoint: LocalCodePipeline,
    event: Any,
    action_types: str,
    token: str,
    configuration: dict[str, str] | None = None,
) -> None:
    """Jobs for the event: the job a direct event names, dispatched with its nonce; queued jobs to poll; the jobs
    an SQS event's messages name, claimed. Each with `configuration` as its action configuration."""
    if not isinstance(event, dict):
        return
    for message in _job_messages(event):
        _seed_claimed(endpoint, message, action_types, token, configuration)
    for job in event.get("jobs", [event] if "jobId" in event else []):
        if not isinstance(job, dict) or "jobId" not in job:
            continue
        nonce = str(job.get("nonce", "1"))
        with contextlib.suppress(ValueError):  # an id the endpoint refuses is the event's problem to show
            if "clientToken" in job or "clientId" in job:
                partner = next((t for t in action_types.split(",") if t.startswith("ThirdParty/")), None)
                endpoint.store.create_job(
                    partner or "ThirdParty/Deploy/PartnerTool/2",
                    job_id=job["jobId"],
                    dispatched_nonce=nonce,
                    client_id=job.get("clientId", CLIENT_ID),
                    client_token=job.get("clientToken", token),
                    configuration=configuration,
                )
            else:
                endpoint.store.create_job(
                    action_types.split(",", maxsplit=1)[0],
                    job_id=job["jobId"],
                    dispatched_nonce=nonce,
                    configuration=configuration,
                )
    if "detail-type" in event:
        for action_type in action_types.split(","):
            for _ in range(2):
                if action_type.startswith("ThirdParty/"):
                    endpoint.store.create_job(
                        action_type, client_id=CLIENT_ID, client_token=token, configuration=configuration
                    )
                else:
                    endpoint.store.create_job(action_type, configuration=configuration)


def _job_messages(event: Any) -> list[dict[str, Any]]:
    """The job messages an SQS event's records hold (a record whose body is not one is left out)."""
    records = event.get("Records") if isinstance(event, dict) else None
    messages = []
    for record in records if isinstance(records, list) else []:
        with contextlib.suppress(TypeError, ValueError, AttributeError):
            message = json.loads(record.get("body"))
            if isinstance(message, dict) and isinstance(message.get("jobId"), str):
                messages.append(message)
    return messages


def _seed_claimed(
    endpoint: LocalCodePipeline,
    message: dict[str, Any],
    action_types: str,
    token: str,
    configuration: dict[str, str] | None,
) -> None:
    """The job a work-queue message names, as the job worker left it: created, dispatched and acknowledged."""
    job_id = message["jobId"]
    with contextlib.suppress(ValueError, ServiceError):  # an id the endpoint refuses is the event's to show
        if message.get("jobType") == "thirdParty":
            partner = next((t for t in action_types.split(",") if t.startswith("ThirdParty/")), None)
            endpoint.store.create_job(
                partner or "ThirdParty/Deploy/PartnerTool/2",
                job_id=job_id,
                dispatched_nonce="1",
                client_id=str(message.get("clientId") or CLIENT_ID),
                client_token=token,
                configuration=configuration,
            )
            endpoint.store.acknowledge_third_party_job({"jobId": job_id, "nonce": "1", "clientToken": token})
        else:
            endpoint.store.create_job(
                action_types.split(",", maxsplit=1)[0], job_id=job_id, dispatched_nonce="1", configuration=configuration
            )
            endpoint.store.acknowledge_job({"jobId": job_id, "nonce": "1"})


# -- command line -------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "event", type=Path, help="a job worker event (e.g. events/custom-job.json) or an SQS one (events/work/)"
    )
    parser.add_argument(
        "--function",
        choices=[ACKNOWLEDGER, WORKER],
        help=f"the function to run (default: the event's); {WORKER} with a job worker event runs both",
    )
    parser.add_argument("--endpoint", help="a CodePipeline endpoint of yours instead of the embedded one")
    parser.add_argument("--parameter-overrides", default="", help="template parameters, Key=Value separated by spaces")
    parser.add_argument("--no-build", action="store_true", help="use the existing .aws-sam/build")
    parser.add_argument(
        "--docker", action="store_true", help="run the functions with the SAM CLI's own `sam local invoke`, in Docker"
    )
    args = parser.parse_args(argv)

    overrides = dict(pair.split("=", 1) for pair in args.parameter_overrides.split())
    event = json.loads(args.event.read_text())
    sqs_event = isinstance(event, dict) and "Records" in event
    function = args.function or (WORKER if sqs_event else ACKNOWLEDGER)
    if sqs_event and function == ACKNOWLEDGER:
        parser.error(f"an SQS event is for {WORKER}")
    if args.endpoint and function == WORKER:
        parser.error(f"{WORKER} runs against the embedded endpoints only (no --endpoint)")
    if not args.no_build:
        build(overrides)

    with contextlib.ExitStack() as stack:
        runner: Runner = Emulator()
        if args.docker:
            import sam_local  # noqa: PLC0415 - it imports this module

            runner = stack.enter_context(sam_local.SamLocal(overrides))
        local = None
        acknowledger = describe_function(overrides, ACKNOWLEDGER)
        if not args.endpoint:
            local = stack.enter_context(local_aws(event, acknowledger["environment"]["ACTION_TYPES"], runner.reachable))
        before = _states(local)
        queued = None
        if sqs_event:
            runs = run_work_function(cast("LocalAws", local), describe_function(overrides, WORKER), event, runner)
        else:
            runs = [(acknowledger, run_job_worker(local, acknowledger, event, args.endpoint, runner))]
            if local is not None:
                queued = local.queued()
                if function == WORKER:
                    runs.extend(run_work_function(local, describe_function(overrides, WORKER), runner=runner))
        after = _states(local)

    show(runs, queued, function, before, after)
    return 0


def show(
    runs: list[tuple[dict[str, Any], Invocation]],
    queued: int | None,
    function: str,
    before: dict[str, str],
    after: dict[str, str],
) -> None:
    """As `sam local invoke` shows a run: the logs on stderr, the (last) response on stdout; then what the work
    queue got and each job's state before and after."""
    for described, invocation in runs:
        print(f"== {described['name']}", file=sys.stderr)
        print(invocation.logs, file=sys.stderr, end="")
        if invocation.peak_memory_mb is not None:
            print(
                f"peak memory of the runtime: {invocation.peak_memory_mb:.0f} MB of {described['memory']} MB",
                file=sys.stderr,
            )
        if invocation is not runs[-1][1]:
            print(f"response: {json.dumps(invocation.response)}", file=sys.stderr)
    if queued is not None:
        print(f"work queue: {queued} job(s) handed off", file=sys.stderr)
    if function == WORKER and runs[-1][0]["name"] != WORKER:
        print(f"{WORKER} not run: nothing was handed off", file=sys.stderr)
    for job_id, state in after.items():
        print(f"job {job_id}: {before.get(job_id)} -> {state}", file=sys.stderr)
    print(json.dumps(runs[-1][1].response))


def run_job_worker(
    local: LocalAws | None,
    function: dict[str, Any],
    event: Any,
    endpoint: str | None,
    runner: Runner | None = None,
) -> Invocation:
    """The built job worker on the event, against the embedded endpoints or a CodePipeline endpoint of yours
    (which takes any credentials)."""
    runner = runner or Emulator()
    environment = _non_empty(function["environment"])
    if local is not None:
        environment.update(local.environment)
    elif endpoint:
        environment.update(
            {
                "AWS_ENDPOINT_URL_CODEPIPELINE": runner.reachable(endpoint),
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_DEFAULT_REGION": REGION,
            }
        )
    with runner.running(function, environment) as running:
        return running.invoke(event)


def run_work_function(
    local: LocalAws, function: dict[str, Any], event: Any = None, runner: Runner | None = None
) -> list[tuple[dict[str, Any], Invocation]]:
    """The built work function on `event`; without one, on every message of the work queue, as one SQS event,
    and then, as the event source does, the messages it did not name in `batchItemFailures` deleted. Nothing
    when the queue is empty."""
    messages = local.receive() if event is None else []
    if event is None and not messages:
        return []
    environment = {**_non_empty(function["environment"]), **local.environment}
    with (runner or Emulator()).running(function, environment) as running:
        invocation = running.invoke(local.sqs_event(messages) if event is None else event)
    if messages:
        response = invocation.response
        local.delete(messages, response.get("batchItemFailures") if isinstance(response, dict) else None)
    return [(function, invocation)]


def _non_empty(environment: dict[str, str]) -> dict[str, str]:
    """The environment without the empty values, which the SDK and the settings read as unset anyway."""
    return {k: v for k, v in environment.items() if v != ""}


def _states(local: LocalAws | None) -> dict[str, str]:
    return {} if local is None else {j["jobId"]: j["status"] for j in local.endpoint.store.jobs()}


if __name__ == "__main__":
    sys.exit(main())
