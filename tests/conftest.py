"""Shared fixtures: the environment the function reads at cold start, a Lambda context, and events/ files."""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from moto.server import ThreadedMotoServer

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

# The function validates its configuration when its modules are imported (the cold start), so the test
# environment is set before any test module imports them. No real endpoint or credentials are reachable.
TEST_ENV = {
    "ACTION_TYPES": "Custom/Build/MyTool/1,ThirdParty/Deploy/PartnerTool/2",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "POWERTOOLS_SERVICE_NAME": "codepipeline-job-worker",
    "POWERTOOLS_METRICS_NAMESPACE": "CodePipelineJobWorkerTests",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "DEBUG",
    "JOB_TABLE_NAME": "codepipeline-jobs",
}
for _name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_CODEPIPELINE", "AWS_PROFILE", "CLIENT_TOKEN_SECRET_ID"):
    os.environ.pop(_name, None)
os.environ.update(TEST_ENV)

EVENTS = Path(__file__).resolve().parent.parent / "events"


def closed_port() -> int:
    """A loopback port nothing listens on: connecting to it is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def zipped(entries: Mapping[str, bytes | tuple[bytes, int]]) -> bytes:
    """A zip of these entries (deflated, made on Unix); a (content, st_mode) pair sets an entry's mode: a
    symlink (S_IFLNK, its target as content), an executable, a directory."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, value in entries.items():
            content, mode = value if isinstance(value, tuple) else (value, stat.S_IFREG | 0o644)
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = mode << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, content)
    return buffer.getvalue()


# Zips whose extraction must fail, with the problem named: each would write or point outside the destination.
UNSAFE_ZIPS: list[tuple[dict[str, bytes | tuple[bytes, int]], str]] = [
    ({"../evil.txt": b"x"}, "climbs out"),
    ({"ok/../../evil.txt": b"x"}, "climbs out"),
    ({"/etc/evil.txt": b"x"}, "absolute path"),
    ({"C:/evil.txt": b"x"}, "absolute path"),
    ({"..\\evil.txt": b"x"}, "climbs out"),
    ({"out": (b"../..", stat.S_IFLNK | 0o777)}, "leads outside"),
    ({"abs": (b"/etc/passwd", stat.S_IFLNK | 0o777)}, "absolute path"),
    # a link that is harmless when made, until a later one changes what it resolves through
    (
        {"a": (b"p/q/../../..", stat.S_IFLNK | 0o777), "p/keep.txt": b"k", "p/q": (b"..", stat.S_IFLNK | 0o777)},
        "leads outside",
    ),
]


def load_event(name: str) -> Any:
    """An event from events/, the same file users pass to `sam local invoke -e`."""
    return json.loads((EVENTS / name).read_text())


def emitted_metrics(out: str) -> dict[str, Any]:
    """The metric values of every EMF blob Powertools printed."""
    values: dict[str, Any] = {}
    for line in out.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            blob = json.loads(line)
            for directive in blob["_aws"]["CloudWatchMetrics"]:
                for metric in directive["Metrics"]:
                    value = blob[metric["Name"]]
                    values[metric["Name"]] = sum(value) if isinstance(value, list) else value
    return values


def log_lines(out: str, level: str | None = None) -> list[dict[str, Any]]:
    """The JSON log lines Logger printed, decoded; only those of `level` when given."""
    start = '{"level":' + (f'"{level}"' if level else "")
    return [json.loads(line) for line in out.splitlines() if line.startswith(start)]


@dataclass
class FakeLambdaContext:
    """What Lambda passes as `context`, with a controllable deadline: by default the template's timeout."""

    remaining_ms: int = 180_000
    function_name: str = "codepipeline-job-worker"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 128
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:codepipeline-job-worker"
    aws_request_id: str = "c6af9ac6-7b61-11e6-9a41-93e812345678"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture(scope="session")
def local_aws() -> Iterator[str]:
    """moto's server: every service it mocks (Secrets Manager, SQS, S3, KMS) on one 127.0.0.1 port."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


@pytest.fixture
def emitted(capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> Iterator[Callable[[], str]]:
    """Everything the function emits, at every level: its Powertools log lines, EMF metrics and anything
    printed (stdout and stderr), and every record any other logger (botocore, urllib3...) produces at DEBUG."""
    from codepipeline_worker.shared.observability import logger

    buffer = io.StringIO()
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    previous = handler.setStream(buffer)
    caplog.set_level(logging.DEBUG)

    def everything() -> str:
        captured = capsys.readouterr()
        records = "\n".join(f"{r.name} {r.levelname} {r.getMessage()} {r.__dict__}" for r in caplog.records)
        return "\n".join([buffer.getvalue(), captured.out, captured.err, records])

    yield everything
    handler.setStream(previous)
