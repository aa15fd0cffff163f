"""What the fault run runs against, all on 127.0.0.1: the local CodePipeline endpoint, moto (SQS, DynamoDB,
Secrets Manager), the proxy that makes SQS sends' answers go astray (and refuses some entries of a batch), and the
template's FIFO work queue and job table. Also the environment both functions' processes start with."""

from __future__ import annotations

import json
import logging
import os
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import boto3
from moto.server import ThreadedMotoServer

from codepipeline_local import LocalCodePipeline
from local_resources import create_job_table, create_work_queues

from .proxy import FaultyProxy, ProxyFaults

if TYPE_CHECKING:
    from .config import ChaosConfig

CUSTOM = "Custom/Build/ChaosTool/1"
PARTNER = "ThirdParty/Deploy/ChaosPartner/1"
CLIENT_ID = "c1e7d1a0-1234-4abc-9def-0123456789ab"
REGION = "us-east-1"
SRC = Path(__file__).resolve().parents[2] / "src"
TOOLS = Path(__file__).resolve().parents[1]


class Cluster:
    """The endpoint, moto, the proxy and the resources the functions use, for one run."""

    def __init__(self, config: ChaosConfig, workdir: Path) -> None:
        self.config = config
        self.workdir = workdir
        self._stack = ExitStack()
        self.client_token = uuid.uuid4().hex  # throwaway: made for this run

    def __enter__(self) -> Self:
        # moto's server answers 500 when its own bookkeeping races under load (its DynamoDB scan beside writes);
        # the functions' SDK retries it as it would AWS's 500. werkzeug's traceback of each goes to the run's
        # directory, not between the run's counts.
        werkzeug = logging.getLogger("werkzeug")
        werkzeug.setLevel(logging.ERROR)
        moto_log = logging.FileHandler(self.workdir / "moto.log", delay=True)
        werkzeug.addHandler(moto_log)
        werkzeug.propagate = False
        self._stack.callback(moto_log.close)
        self._stack.callback(werkzeug.removeHandler, moto_log)
        self._stack.callback(setattr, werkzeug, "propagate", True)
        config = self.config
        self.endpoint = self._stack.enter_context(LocalCodePipeline(dispatch_timeout_s=config.dispatch_timeout_s))
        # A killed process leaves its requests half-sent: the endpoint need not print each one
        self.endpoint._server.handle_error = lambda *_: None  # type: ignore[method-assign]
        self.endpoint.store.add_action_type(CUSTOM)
        self.endpoint.store.add_action_type(PARTNER)
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        moto.start()
        self._stack.callback(moto.stop)
        self.aws_url = "http://{}:{}".format(*moto.get_host_and_port())
        self.proxy = self._stack.enter_context(
            FaultyProxy(
                self.aws_url,
                ProxyFaults(
                    slow=config.slow_send,
                    reset=config.reset_send,
                    refuse_entries=config.refuse_entry,
                    slow_s=config.read_timeout_s * 2,
                    seed=config.seed,
                ),
            )
        )
        self.sqs = self.client("sqs")
        self.queue_url, self.dlq_url = create_work_queues(
            self.sqs, "chaos", config.visibility_timeout_s, config.max_receive_count
        )
        self.queue_arn, self.dlq_arn = (
            self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            for url in (self.queue_url, self.dlq_url)
        )
        self.table = create_job_table(self.client("dynamodb"), "chaos-jobs")
        self.secret_id = "chaos-client-tokens"  # noqa: S105 - the secret's name
        self.client("secretsmanager").create_secret(
            Name=self.secret_id, SecretString=json.dumps({CLIENT_ID: self.client_token})
        )
        return self

    def __exit__(self, *_: object) -> None:
        self._stack.close()

    def client(self, service: str) -> Any:
        return boto3.client(  # type: ignore[call-overload]
            service,
            endpoint_url=self.aws_url,
            region_name=REGION,
            aws_access_key_id="chaos",
            aws_secret_access_key="chaos",  # noqa: S106 - moto's throwaway credentials
        )

    def environment(self, kind: str) -> dict[str, str]:
        """The variables an execution environment of `kind` starts with: the template's, pointed at this run."""
        config = self.config
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),  # noqa: S108 - a fallback home
            "PYTHONPATH": os.pathsep.join([str(TOOLS), str(SRC)]),
            "PYTHONDONTWRITEBYTECODE": "1",
            "AWS_ACCESS_KEY_ID": "chaos",
            "AWS_SECRET_ACCESS_KEY": "chaos",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL_CODEPIPELINE": self.endpoint.url,
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": self.aws_url,
            "AWS_ENDPOINT_URL_DYNAMODB": self.aws_url,
            # The acknowledger's sends go through the proxy; the work side's SQS is Lambda's event source here
            "AWS_ENDPOINT_URL_SQS": self.proxy.url,
            "ACTION_TYPES": f"{CUSTOM},{PARTNER}",
            "CLIENT_TOKEN_SECRET_ID": self.secret_id,
            "JOB_QUEUE_URL": self.queue_url,
            "JOB_TABLE_NAME": self.table,
            "AWS_MAX_ATTEMPTS": str(config.max_attempts),
            "CONNECT_TIMEOUT_S": str(config.connect_timeout_s),
            "READ_TIMEOUT_S": str(config.read_timeout_s),
            "WORK_FUNCTION": "chaos.work:run",
            "JOB_TIME_LIMIT_S": str(config.job_time_limit_s),
            "CHAOS_RUNS_FILE": str(self.workdir / "runs.jsonl"),
            "POWERTOOLS_SERVICE_NAME": "codepipeline-job-worker",
            "POWERTOOLS_METRICS_NAMESPACE": "Chaos",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "INFO",
            "POWERTOOLS_PARAMETERS_MAX_AGE": "300",
        }
