"""`make invoke EVENT=events/<file>.json [FUNCTION=WorkFunction]`: `sam local invoke` without Docker.

Builds the functions with `sam build` for this machine's architecture into build/sam-host/ (never into
.aws-sam/build, which `make build` fills for the template's architecture and `sam deploy` ships), skipping the
build when nothing it reads has changed. Then runs the built artifact under the Lambda Runtime Interface Emulator
that ships inside the aws-sam-cli wheel, with awslambdaric on python3.13, in the environment template.yaml gives
it (parameter defaults and overrides applied, as the SAM CLI resolves them). It listens on 127.0.0.1 only. By
default the function talks to an embedded local CodePipeline endpoint, seeded with the jobs the event names, and
to moto's Secrets Manager (partner tokens) and SQS: the job worker hands the jobs it claims to a work queue
there. The seeded jobs carry the work function's example configuration (for the example action, a local page
that answers 200).

- A job worker event (events/*.json) runs JobWorkerFunction; with `--function WorkFunction`, the work function
  then runs on what the work queue holds, as one SQS event, as Lambda's event source would, and reports.
- An SQS event (events/work/*.json) runs WorkFunction on it, the jobs its messages name seeded as claimed.

`--endpoint URL` uses a CodePipeline endpoint of yours (job worker events only; no work queue). The last
function's response goes to stdout, the logs and what each job reported to stderr, as `sam local invoke` does;
the exit status is 1 when a function failed (its response is an error) or answered the event as failed.
`--docker` runs the same through the SAM CLI's own `sam local invoke`, in Docker (tools/sam_local.py), on the
same host build.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import math
import os
import platform
import re
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
from life_cycle import reported
from local_resources import create_job_table, create_work_queues

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from contextlib import AbstractContextManager

    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

ROOT = Path(__file__).resolve().parent.parent
SAM_VENV = ROOT / ".venv-sam"
# The host build: apart from .aws-sam/, which holds the deployable build. build.toml lands beside the build dir.
HOST_BUILD = ROOT / "build" / "sam-host"
BUILD_DIR = HOST_BUILD / "build"
CACHE_DIR = HOST_BUILD / "cache"
INPUTS_STAMP = HOST_BUILD / "inputs.sha256"
# What the build reads: a change to any of these builds again.
BUILD_INPUTS = ("template.yaml", "samconfig.toml", "src", "tools/finish_build.py")
RIC_DIR = ROOT / "build" / "awslambdaric"
ACKNOWLEDGER = "JobWorkerFunction"
WORKER = "WorkFunction"
DEAD_LETTER = "DeadLetterFunction"
FUNCTION = ACKNOWLEDGER
AWSLAMBDARIC = "awslambdaric==4.2.2"
CLIENT_ID = "c1e7d1a0-1234-4abc-9def-0123456789ab"
PARTNER = "ThirdParty/Deploy/PartnerTool/2"
EXAMPLE = "codepipeline_worker.examples.url_gate:check_url"
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
    """`sam build` for this machine's architecture into build/sam-host/, then the post-build step of `make build`
    (tools/finish_build.py: the acknowledger's SDK data limited, bytecode compiled); skipped when nothing it reads
    changed since the last build. Returns the built job worker's directory (`artifact(WORKER)` is the work
    function's)."""
    parameters = {**overrides, "Architecture": host_architecture()}
    fingerprint = build_fingerprint(parameters)
    if INPUTS_STAMP.is_file() and INPUTS_STAMP.read_text() == fingerprint:
        print(f"build: nothing changed since the last build ({BUILD_DIR.relative_to(ROOT)})", file=sys.stderr)
        return artifact(ACKNOWLEDGER)
    INPUTS_STAMP.unlink(missing_ok=True)
    print(f"build: sam build for {host_architecture()} into {BUILD_DIR.relative_to(ROOT)}", file=sys.stderr)
    HOST_BUILD.mkdir(parents=True, exist_ok=True)
    # Run from build/sam-host/: a cached build keeps the functions' dependencies in .aws-sam/deps under the
    # working directory, and prunes the ones its own build graph does not name.
    subprocess.run(  # noqa: S603 - the project's own SAM CLI
        sam(
            "build",
            "--template-file",
            str(ROOT / "template.yaml"),
            "--config-file",
            str(ROOT / "samconfig.toml"),
            "--build-dir",
            str(BUILD_DIR),
            "--cache-dir",
            str(CACHE_DIR),
            "--parameter-overrides",
            " ".join(f"{k}={v}" for k, v in parameters.items()),
        ),
        cwd=HOST_BUILD,
        env=tool_environment(),
        check=True,
        stdout=sys.stderr,
    )
    finish_build.finish(BUILD_DIR)
    INPUTS_STAMP.write_text(fingerprint)
    return artifact(ACKNOWLEDGER)


def build_fingerprint(parameters: dict[str, str]) -> str:
    """A digest of everything the host build depends on: the template, samconfig.toml, every file under src/
    (the functions' CodeUri: the library, your actions, requirements.txt), the parameters, this interpreter."""
    digest = hashlib.sha256(json.dumps([sorted(parameters.items()), sys.version]).encode())
    for name in BUILD_INPUTS:
        top = ROOT / name
        files = sorted(top.rglob("*")) if top.is_dir() else [top]
        for path in files:
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


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
        peak = _peak_memory_mb(self.pid)
        return Invocation(response, true_report(logs, peak), peak)


def true_report(logs: str, peak_memory_mb: float | None) -> str:
    """The logs with the emulator's REPORT line made true, as Lambda reports: Init Duration from the emulator's
    INIT REPORT, Duration from its INVOKE RTDONE (the emulator counts the init in), Billed Duration rounded up
    from it, and Max Memory Used the runtime's measured peak (the emulator prints the memory size)."""
    init = re.search(r"INIT REPORT\(durationMs: ([0-9.]+)\)", logs)
    done = re.search(r"INVOKE RTDONE\(status: \w+, produced bytes: \d+, duration: ([0-9.]+)ms\)", logs)
    lines = logs.splitlines(keepends=True)
    for n, line in enumerate(lines):
        if not line.startswith("REPORT RequestId:"):
            continue
        fields = {k: v for k, _, v in (part.partition(": ") for part in line.rstrip().split("\t")) if v}
        if init:
            fields["Init Duration"] = f"{float(init.group(1)):.2f} ms"
        else:
            fields.pop("Init Duration", None)
        if done:
            duration = float(done.group(1))
            fields["Duration"] = f"{duration:.2f} ms"
            fields["Billed Duration"] = f"{math.ceil(duration)} ms"
        if peak_memory_mb is not None:
            fields["Max Memory Used"] = f"{math.ceil(peak_memory_mb)} MB"
        order = ["REPORT RequestId", "Duration", "Billed Duration", "Memory Size", "Max Memory Used", "Init Duration"]
        lines[n] = "\t".join(f"{k}: {fields[k]}" for k in order if k in fields) + "\n"
    return "".join(lines)


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
def local_aws(
    event: Any,
    action_types: str,
    reachable: Callable[[str], str] = _same,
    configuration: dict[str, str] | None = None,
) -> Iterator[LocalAws]:
    """The local CodePipeline endpoint, seeded with the jobs the event names, and moto's Secrets Manager (the
    partner tokens), SQS (the work queue) and DynamoDB (the job table). The seeded jobs carry `configuration`
    (your action's example configuration); None gives the example action's: a `Url` of a local page that answers
    200. `environment` and the jobs' `Url` hold the function's view of these servers (`Runner.reachable`)."""
    from moto.server import ThreadedMotoServer  # noqa: PLC0415 - only when the embedded endpoints are used

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    try:
        with LocalCodePipeline() as endpoint, StatusPages({"/healthy": [200]}) as pages:
            moto_url = "http://{}:{}".format(*moto.get_host_and_port())
            tokens = client_tokens(event)
            secret_id = f"client-tokens-{uuid.uuid4().hex[:8]}"
            _moto_client("secretsmanager", moto_url).create_secret(Name=secret_id, SecretString=json.dumps(tokens))
            sqs: SQSClient = _moto_client("sqs", moto_url)
            name = f"work-{uuid.uuid4().hex[:8]}"
            queue_url, _ = create_work_queues(sqs, name)  # the template's FIFO work queue and job table
            table = create_job_table(_moto_client("dynamodb", moto_url), name)
            attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
            seed(
                endpoint,
                event,
                action_types,
                tokens,
                {"Url": reachable(pages.url("/healthy"))} if configuration is None else configuration,
            )
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


def client_tokens(event: Any) -> dict[str, str]:
    """The partner secret for the event, clientId to clientToken: the token a job of the event gives for its
    clientId, and a throwaway one for every other clientId (the seeded jobs', the SQS event's messages')."""
    token = uuid.uuid4().hex
    tokens = {CLIENT_ID: token}
    for message in _job_messages(event):
        tokens.setdefault(str(message.get("clientId") or CLIENT_ID), token)
    for job in _direct_jobs(event):
        if isinstance(job.get("clientId"), str):
            given = job.get("clientToken")
            tokens[job["clientId"]] = given if isinstance(given, str) and given else tokens.get(job["clientId"], token)
    return tokens


def _direct_jobs(event: Any) -> list[dict[str, Any]]:
    """The job events a direct event or a batch names."""
    if not isinstance(event, dict):
        return []
    jobs = event.get("jobs", [event] if "jobId" in event else [])
    return [job for job in jobs if isinstance(job, dict) and "jobId" in job] if isinstance(jobs, list) else []


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
    tokens: dict[str, str],
    configuration: dict[str, str] | None = None,
) -> None:
    """Jobs for the event: the job a direct event names, dispatched with its nonce; queued jobs to poll; the jobs
    an SQS event's messages name, claimed. Each with `configuration` as its action configuration, and a partner
    job with its clientId's token in `tokens` (the event's own token when it gives one)."""
    if not isinstance(event, dict):
        return
    partner = next((t for t in action_types.split(",") if t.startswith("ThirdParty/")), PARTNER)
    for message in _job_messages(event):
        _seed_claimed(endpoint, message, action_types, tokens, configuration)
    for job in _direct_jobs(event):
        nonce = str(job.get("nonce", "1"))
        with contextlib.suppress(ValueError):  # an id the endpoint refuses is the event's problem to show
            if "clientToken" in job or "clientId" in job:
                client_id = str(job.get("clientId") or CLIENT_ID)
                endpoint.store.create_job(
                    partner,
                    job_id=job["jobId"],
                    dispatched_nonce=nonce,
                    client_id=client_id,
                    client_token=str(job.get("clientToken") or tokens.get(client_id, tokens[CLIENT_ID])),
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
                        action_type, client_id=CLIENT_ID, client_token=tokens[CLIENT_ID], configuration=configuration
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
    tokens: dict[str, str],
    configuration: dict[str, str] | None,
) -> None:
    """The job a work-queue message names, as the job worker left it: created, dispatched and acknowledged."""
    job_id = message["jobId"]
    with contextlib.suppress(ValueError, ServiceError):  # an id the endpoint refuses is the event's to show
        if message.get("jobType") == "thirdParty":
            partner = next((t for t in action_types.split(",") if t.startswith("ThirdParty/")), PARTNER)
            client_id = str(message.get("clientId") or CLIENT_ID)
            token = tokens.get(client_id, tokens[CLIENT_ID])
            endpoint.store.create_job(
                partner,
                job_id=job_id,
                dispatched_nonce="1",
                client_id=client_id,
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


class UsageError(Exception):
    """A setting, file or parameter make invoke cannot use: one line names it, and nothing runs."""


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
    parser.add_argument("--no-build", action="store_true", help="use the existing host build (build/sam-host)")
    parser.add_argument(
        "--docker", action="store_true", help="run the functions with the SAM CLI's own `sam local invoke`, in Docker"
    )
    args = parser.parse_args(argv)

    try:
        overrides = parse_overrides(args.parameter_overrides)
        event = load_event(args.event)
        sqs_event = isinstance(event, dict) and "Records" in event
        function = args.function or (WORKER if sqs_event else ACKNOWLEDGER)
        if sqs_event and function == ACKNOWLEDGER:
            raise UsageError(f"FUNCTION={ACKNOWLEDGER}: {args.event} is an SQS event, for {WORKER}")
        if args.endpoint and function == WORKER:
            raise UsageError(f"{WORKER} runs against the embedded endpoints only (no --endpoint)")
        check_overrides(overrides, template_parameters())
        worker = describe_function(overrides, WORKER)
        configuration = work_configuration(worker["environment"]["WORK_FUNCTION"])
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return 2
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
            action_types = acknowledger["environment"]["ACTION_TYPES"]
            local = stack.enter_context(local_aws(event, action_types, runner.reachable, configuration))
        before = {job["jobId"]: job["status"] for job in _jobs(local)}
        queued = None
        if sqs_event:
            runs = run_work_function(cast("LocalAws", local), worker, event, runner)
        else:
            runs = [(acknowledger, run_job_worker(local, acknowledger, event, args.endpoint, runner))]
            if local is not None:
                queued = local.queued()
                if function == WORKER:
                    runs.extend(run_work_function(local, worker, runner=runner))
        after = _jobs(local)

    show(runs, queued, function, before, after)
    failed = [(described, _failure(invocation.response)) for described, invocation in runs]
    for described, failure in failed:
        if failure:
            print(f"{described['name']} failed: {failure}", file=sys.stderr)
    return 1 if any(failure for _, failure in failed) else 0


def parse_overrides(text: str) -> dict[str, str]:
    """`Key=Value Key=Value`, as --parameter-overrides takes them."""
    pairs = text.split()
    malformed = [pair for pair in pairs if "=" not in pair or pair.startswith("=")]
    if malformed:
        raise UsageError(f"OVERRIDES: {' '.join(malformed)}: each override is Key=Value, separated by spaces")
    return dict(pair.split("=", 1) for pair in pairs)


def load_event(path: Path) -> Any:
    """The event file, or a UsageError naming it: missing, or not JSON (with where)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise UsageError(f"EVENT={path}: {exc.strerror or type(exc).__name__} (the examples: events/*.json)") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"EVENT={path}: not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None


def template_parameters() -> dict[str, dict[str, Any]]:
    """template.yaml's Parameters, as the SAM CLI reads them."""
    done = subprocess.run(  # noqa: S603 - the project's own SAM CLI environment
        [str(SAM_VENV / "bin" / "python"), str(ROOT / "tools" / "sam_inspect.py"), "parameters", "template.yaml"],
        cwd=ROOT,
        env=tool_environment(),
        check=True,
        capture_output=True,
        text=True,
    )
    parameters: dict[str, dict[str, Any]] = json.loads(done.stdout)
    return parameters


def check_overrides(overrides: dict[str, str], parameters: dict[str, dict[str, Any]]) -> None:
    """Each override against its parameter's constraints, as CloudFormation checks them at deploy, before the
    build: raises a UsageError naming every one that breaks them."""
    problems = []
    for name, value in overrides.items():
        parameter = parameters.get(name)
        if parameter is None:
            problems.append(f"{name}: template.yaml has no such parameter")
        elif name == "Architecture" and value != host_architecture():
            problems.append(
                f"Architecture={value}: make invoke runs the functions on this machine ({host_architecture()}); "
                f"make build builds {value} for deploy"
            )
        else:
            problem = _breaks(parameter, value)
            if problem:
                problems.append(f"{name}={value}: {problem}")
    if problems:
        raise UsageError("\n".join(f"OVERRIDES: {problem}" for problem in problems))


def _breaks(parameter: dict[str, Any], value: str) -> str | None:
    """What the value breaks of the parameter's AllowedValues, AllowedPattern, Number type, MinValue and
    MaxValue, MinLength and MaxLength (the first); None when it fits."""
    return next(_problems(parameter, value), None)


def _problems(parameter: dict[str, Any], value: str) -> Iterator[str]:
    allowed = [str(v) for v in parameter.get("AllowedValues", [])]
    if allowed and value not in allowed:
        yield f"must be one of {', '.join(allowed)}"
    pattern = parameter.get("AllowedPattern")
    if pattern and re.fullmatch(pattern, value) is None:
        yield parameter.get("ConstraintDescription") or f"must match {pattern}"
    if parameter.get("Type") == "Number":
        try:
            number = float(value)
        except ValueError:
            yield "must be a number"
            return
        if "MinValue" in parameter and number < float(parameter["MinValue"]):
            yield f"must be at least {parameter['MinValue']}"
        if "MaxValue" in parameter and number > float(parameter["MaxValue"]):
            yield f"must be at most {parameter['MaxValue']}"
    if "MinLength" in parameter and len(value) < int(parameter["MinLength"]):
        yield f"must be at least {parameter['MinLength']} characters"
    if "MaxLength" in parameter and len(value) > int(parameter["MaxLength"]):
        yield f"must be at most {parameter['MaxLength']} characters"


def work_configuration(work_function: str) -> dict[str, str] | None:
    """The configuration the seeded jobs carry for the work function: None for the example action (a local
    page's Url), your action's declared examples otherwise. A module that cannot be imported is a UsageError."""
    if work_function == EXAMPLE:
        return None
    from codepipeline_worker.shared.errors import ConfigurationError  # noqa: PLC0415 - only for your action
    from codepipeline_worker.work.properties import declared_properties, example_configuration  # noqa: PLC0415

    try:
        return example_configuration(declared_properties(work_function))
    except ConfigurationError as exc:
        problem = str(exc).removeprefix("invalid configuration: WORK_FUNCTION: ")
        raise UsageError(f"WORK_FUNCTION={work_function}: {problem}") from None


def show(
    runs: list[tuple[dict[str, Any], Invocation]],
    queued: int | None,
    function: str,
    before: dict[str, str],
    after: list[dict[str, Any]],
) -> None:
    """As `sam local invoke` shows a run: the logs on stderr, the (last) response on stdout; then what the work
    queue got, each job's state before and after, and what the work function reported for it."""
    for described, invocation in runs:
        print(f"== {described['name']}", file=sys.stderr)
        print(invocation.logs, file=sys.stderr, end="")
        if invocation is not runs[-1][1]:
            print(f"response: {json.dumps(invocation.response)}", file=sys.stderr)
    if queued is not None:
        print(f"work queue: {queued} job(s) handed off", file=sys.stderr)
    if function == WORKER and runs[-1][0]["name"] != WORKER:
        print(f"{WORKER} not run: nothing was handed off", file=sys.stderr)
    for job in after:
        print(f"job {job['jobId']}: {before.get(job['jobId'])} -> {job['status']}", file=sys.stderr)
        said = reported(job)
        if said is not None:
            print(f"   reported: {said}", file=sys.stderr)
    print(json.dumps(runs[-1][1].response))


def _failure(response: Any) -> str | None:
    """What failed, in one line, or None: a function error (what Lambda answers when the handler raised or the
    runtime failed), or an event the job worker answered as failed (invalid, or its one job refused)."""
    if not isinstance(response, dict):
        return None
    if "errorType" in response:
        return f"{response['errorType']}: {response.get('errorMessage')}"
    if isinstance(response.get("error"), str):
        return f"{response['error']}: {response.get('message') or response.get('reason')}"
    return None


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


def _jobs(local: LocalAws | None) -> list[dict[str, Any]]:
    return [] if local is None else local.endpoint.store.jobs()


if __name__ == "__main__":
    sys.exit(main())
