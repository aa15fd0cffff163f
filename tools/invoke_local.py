"""`make invoke EVENT=events/<file>.json`: `sam local invoke` without Docker.

Builds the function with `sam build` (for this machine's architecture), then runs the built artifact under the
Lambda Runtime Interface Emulator that ships inside the aws-sam-cli wheel, with awslambdaric on python3.13, in
the environment template.yaml gives it (parameter defaults and overrides applied, as the SAM CLI resolves them).
It listens on 127.0.0.1 only. By default the function talks to an embedded local CodePipeline endpoint, seeded
with the jobs the event names (and moto's Secrets Manager for partner tokens); `--endpoint URL` uses yours.
The function's response goes to stdout, its logs to stderr, as `sam local invoke` does.
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
from typing import TYPE_CHECKING, Any

import boto3

from codepipeline_local import LocalCodePipeline

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parent.parent
SAM_VENV = ROOT / ".venv-sam"
BUILD_DIR = ROOT / ".aws-sam" / "build"
RIC_DIR = ROOT / ".aws-sam" / "ric"
FUNCTION = "JobWorkerFunction"
AWSLAMBDARIC = "awslambdaric==4.2.2"
CLIENT_ID = "c1e7d1a0-1234-4abc-9def-0123456789ab"
INVOCATIONS = "/2015-03-31/functions/function/invocations"


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
    """`sam build` for this machine's architecture, then bytecode compiled into the artifact; returns the built
    function's directory."""
    parameters = " ".join(f"{k}={v}" for k, v in {"Architecture": host_architecture(), **overrides}.items())
    subprocess.run(  # noqa: S603 - the project's own SAM CLI
        sam("build", "--parameter-overrides", parameters),
        cwd=ROOT,
        env=tool_environment(),
        check=True,
        stdout=sys.stderr,
    )
    artifact = BUILD_DIR / FUNCTION
    compile_bytecode(artifact)
    return artifact


def compile_bytecode(artifact: Path) -> None:
    """Ship compiled bytecode: Lambda's code directory is read-only, so without it every cold start compiles
    every module it imports. Unchecked-hash .pyc files are used whatever the files' times after zipping; the
    bytecode is the same on arm64 and x86_64, and matches the python3.13 runtime."""
    subprocess.run(  # noqa: S603 - the runtime's interpreter
        [sys.executable, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", str(artifact)],
        check=True,
        stdout=sys.stderr,
    )


def describe_function(overrides: dict[str, str]) -> dict[str, Any]:
    """Handler, timeout, memory and environment as the SAM CLI resolves them from template.yaml."""
    pairs = [f"{k}={v}" for k, v in {"Architecture": host_architecture(), **overrides}.items()]
    done = subprocess.run(  # noqa: S603 - the project's own SAM CLI environment
        [
            str(SAM_VENV / "bin" / "python"),
            str(ROOT / "tools" / "sam_inspect.py"),
            "function",
            "template.yaml",
            FUNCTION,
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
    """The Runtime Interface Emulator inside the aws-sam-cli wheel."""
    done = subprocess.run(  # noqa: S603 - the project's own SAM CLI environment
        [str(SAM_VENV / "bin" / "python"), "-c", "import samcli, os; print(os.path.dirname(samcli.__file__))"],
        check=True,
        capture_output=True,
        text=True,
    )
    return Path(done.stdout.strip()) / "local" / "rapid" / f"aws-lambda-rie-{platform.machine().lower()}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Invocation:
    response: Any
    logs: str
    peak_memory_mb: float | None


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
        "AWS_LAMBDA_FUNCTION_NAME": FUNCTION,
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
            _wait_for_port(rie_port, process)
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


def _wait_for_port(port: int, process: subprocess.Popen[Any]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the emulator exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError("the emulator did not start listening")


# -- the embedded endpoint, seeded for the event -----------------------------------------------------------


@dataclass
class LocalAws:
    """The embedded endpoints and the environment that points the function at them."""

    endpoint: LocalCodePipeline
    environment: dict[str, str]


@contextlib.contextmanager
def local_aws(event: Any, action_types: str) -> Iterator[LocalAws]:
    """The local CodePipeline endpoint and moto's Secrets Manager, seeded with the jobs the event names."""
    from moto.server import ThreadedMotoServer  # noqa: PLC0415 - only when the embedded endpoints are used

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    secrets = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    secrets.start()
    try:
        with LocalCodePipeline() as endpoint:
            secrets_url = "http://{}:{}".format(*secrets.get_host_and_port())
            token = uuid.uuid4().hex  # throwaway, for the partner jobs this run creates
            secret_id = f"client-tokens-{uuid.uuid4().hex[:8]}"
            boto3.client(
                "secretsmanager",
                endpoint_url=secrets_url,
                region_name="us-east-1",
                aws_access_key_id="local",
                aws_secret_access_key="local",  # noqa: S106 - moto's throwaway credentials
            ).create_secret(Name=secret_id, SecretString=json.dumps({CLIENT_ID: token}))
            seed(endpoint, event, action_types, token)
            yield LocalAws(
                endpoint,
                {
                    "AWS_ENDPOINT_URL_CODEPIPELINE": endpoint.url,
                    "AWS_ENDPOINT_URL_SECRETS_MANAGER": secrets_url,
                    "CLIENT_TOKEN_SECRET_ID": secret_id,
                    "AWS_ACCESS_KEY_ID": "local",
                    "AWS_SECRET_ACCESS_KEY": "local",
                    "AWS_DEFAULT_REGION": "us-east-1",
                },
            )
    finally:
        secrets.stop()


def seed(endpoint: LocalCodePipeline, event: Any, action_types: str, token: str) -> None:
    """Jobs for the event: the job a direct event names, dispatched with its nonce; queued jobs to poll."""
    if not isinstance(event, dict):
        return
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
                )
            else:
                endpoint.store.create_job(
                    action_types.split(",", maxsplit=1)[0], job_id=job["jobId"], dispatched_nonce=nonce
                )
    if "detail-type" in event:
        for action_type in action_types.split(","):
            for _ in range(2):
                if action_type.startswith("ThirdParty/"):
                    endpoint.store.create_job(action_type, client_id=CLIENT_ID, client_token=token)
                else:
                    endpoint.store.create_job(action_type)


# -- command line -------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("event", type=Path, help="an event file, e.g. events/custom-job.json")
    parser.add_argument("--endpoint", help="a CodePipeline endpoint of yours instead of the embedded one")
    parser.add_argument("--parameter-overrides", default="", help="template parameters, Key=Value separated by spaces")
    parser.add_argument("--no-build", action="store_true", help="use the existing .aws-sam/build")
    args = parser.parse_args(argv)

    overrides = dict(pair.split("=", 1) for pair in args.parameter_overrides.split())
    event = json.loads(args.event.read_text())
    artifact = BUILD_DIR / FUNCTION if args.no_build else build(overrides)
    function = describe_function(overrides)
    environment = {k: v for k, v in function["environment"].items() if v != ""}

    with contextlib.ExitStack() as stack:
        endpoint = None
        if args.endpoint:  # a local endpoint of yours: it takes any credentials
            environment.update(
                {
                    "AWS_ENDPOINT_URL_CODEPIPELINE": args.endpoint,
                    "AWS_ACCESS_KEY_ID": "local",
                    "AWS_SECRET_ACCESS_KEY": "local",
                    "AWS_DEFAULT_REGION": "us-east-1",
                }
            )
        else:
            local = stack.enter_context(local_aws(event, environment["ACTION_TYPES"]))
            endpoint = local.endpoint
            environment.update(local.environment)
        before = _states(endpoint)
        function_process = stack.enter_context(running_function(artifact, function, environment))
        result = function_process.invoke(event)
        after = _states(endpoint)

    print(result.logs, file=sys.stderr, end="")
    if result.peak_memory_mb is not None:
        print(f"peak memory of the runtime: {result.peak_memory_mb:.0f} MB of {function['memory']} MB", file=sys.stderr)
    for job_id, state in after.items():
        print(f"job {job_id}: {before.get(job_id)} -> {state}", file=sys.stderr)
    print(json.dumps(result.response))
    return 0


def _states(endpoint: LocalCodePipeline | None) -> dict[str, str]:
    return {} if endpoint is None else {j["jobId"]: j["status"] for j in endpoint.store.jobs()}


if __name__ == "__main__":
    sys.exit(main())
