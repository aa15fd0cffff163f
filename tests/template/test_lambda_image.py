"""The Lambda base image `sam local invoke` runs the functions in (AWS's, or the local stand-in built from
Debian's packages where AWS's cannot be pulled) keeps the runtime contract of AWS's Python 3.13 image: its entry
point takes the handler, starts the emulator it carries when no runtime API is set, and the runtime's bootstrap
runs awslambdaric on $_HANDLER with the function's code first on the import path."""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

import pytest

import sam_local

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.docker

HANDLER = """
import os, sys

def handler(event, context):
    return {
        "event": event,
        "python": list(sys.version_info[:2]),
        "path": sys.path[:2],
        "cwd": os.getcwd(),
        "function_name": context.function_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "environment": {k: v for k, v in os.environ.items() if k.startswith(("AWS_", "LAMBDA_", "_HANDLER", "TZ"))},
    }
"""


def invoke(port: int, event: Any, deadline_s: float = 60) -> Any:
    """The invocation's answer, once the container's emulator listens."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/2015-03-31/functions/function/invocations", data=json.dumps(event).encode()
    )
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - loopback
                return json.loads(answer.read())
        except (TimeoutError, urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture(scope="module")
def base_image(sam_local_invoke: sam_local.SamLocal) -> str:
    assert sam_local_invoke.images is not None
    return sam_local_invoke.images.base


def test_the_image_is_configured_as_aws_python_image_is(base_image: str) -> None:
    config = json.loads(sam_local.docker("image", "inspect", "--format", "{{json .Config}}", base_image).stdout)
    assert config["Entrypoint"] == ["/lambda-entrypoint.sh"]
    assert config["WorkingDir"] == "/var/task"
    environment = dict(entry.split("=", 1) for entry in config["Env"])
    assert (environment["LAMBDA_TASK_ROOT"], environment["LAMBDA_RUNTIME_DIR"]) == ("/var/task", "/var/runtime")
    assert environment["PATH"].startswith("/var/lang/bin:")


def test_docker_run_with_a_handler_serves_invocations_through_the_runtime_bootstrap(
    base_image: str, tmp_path: Path
) -> None:
    """`docker run -p ... image app.handler`, as AWS documents for its images: no SAM CLI involved."""
    (tmp_path / "app.py").write_text(HANDLER)
    tmp_path.chmod(0o755)
    container = sam_local.docker(
        "run",
        "--detach",
        "--rm",
        "--publish",
        "127.0.0.1::8080",
        "--volume",
        f"{tmp_path}:/var/task:ro",
        base_image,
        "app.handler",
    ).stdout.strip()
    try:
        port = int(sam_local.docker("port", container, "8080/tcp").stdout.split(":")[-1])
        answer = invoke(port, {"hello": "world"})
    finally:
        with contextlib.suppress(Exception):
            sam_local.docker("stop", "--time", "1", container)

    assert answer["event"] == {"hello": "world"}
    assert answer["python"] == [3, 13]
    assert answer["path"][0] == "/var/task"
    assert answer["cwd"] == "/var/task"
    assert answer["remaining_ms"] > 0
    environment = answer["environment"]
    assert environment["_HANDLER"] == "app.handler"
    assert environment["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.13"
    assert environment["LAMBDA_TASK_ROOT"] == "/var/task"
    assert environment["AWS_LAMBDA_FUNCTION_NAME"] == answer["function_name"]
    assert environment["AWS_LAMBDA_RUNTIME_API"]


def test_the_entry_point_wants_the_handler(base_image: str) -> None:
    done = sam_local.docker("run", "--rm", base_image, check=False)
    assert done.returncode == 142
    assert "handler name" in done.stderr
