"""What the acknowledger's cold start loads: one SDK session, and nothing its event path does not use."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from tests.conftest import closed_port

# Imports the handler as Lambda's runtime does, counting botocore sessions and data loaders as they are made.
PROBE = """
import json, sys
import botocore.loaders, botocore.session

made = {"sessions": 0, "loaders": 0}
for cls, key in ((botocore.session.Session, "sessions"), (botocore.loaders.Loader, "loaders")):
    def counting(self, *args, _init=cls.__init__, _key=key, **kwargs):
        made[_key] += 1
        _init(self, *args, **kwargs)
    cls.__init__ = counting

import codepipeline_worker.acknowledger.handler

names = ("boto3", "aws_lambda_powertools.utilities.parameters", "aws_xray_sdk", "codepipeline_worker.work",
         "codepipeline_worker.examples")
print(json.dumps({**made, "imported": [name for name in names if name in sys.modules]}))
"""


def cold_start(**environment: str) -> dict[str, Any]:
    port = closed_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "ACTION_TYPES": "Custom/Build/MyTool/1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "JOB_QUEUE_URL": f"http://127.0.0.1:{port}/123456789012/work",
        **environment,
    }
    done = subprocess.run(  # noqa: S603 - this interpreter on the probe above
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    )
    answer: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return answer


def test_the_template_s_acknowledger_imports_neither_boto3_nor_what_its_events_do_not_use() -> None:
    answer = cold_start()

    assert answer["imported"] == []
    assert (answer["sessions"], answer["loaders"]) == (1, 1)


def test_only_tracing_on_imports_the_x_ray_sdk() -> None:
    answer = cold_start(POWERTOOLS_TRACE_DISABLED="false")

    assert "aws_xray_sdk" in answer["imported"]


def test_the_client_token_secret_is_read_through_the_same_sdk_session() -> None:
    """Powertools' SecretsProvider, left to itself, builds a boto3 session and loads botocore's data again."""
    answer = cold_start(CLIENT_TOKEN_SECRET_ID="client-tokens")

    assert (answer["sessions"], answer["loaders"]) == (1, 1)
    assert "aws_lambda_powertools.utilities.parameters" in answer["imported"]
