"""Integration fixtures: the local CodePipeline endpoint and moto (Secrets Manager, SQS, DynamoDB), both on
127.0.0.1, and workers: the real handler's service, with real boto3 clients pointed at them through the SDK's
variables. For the job life cycle: a fresh FIFO work queue with its dead-letter queue and a fresh job table, as the
template declares them, acknowledgers that hand off to them, work runners with a chosen work function, and the
work function's Lambda fed from the queue."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from codepipeline_local import LocalCodePipeline
from codepipeline_local.s3front import ArtifactFront
from codepipeline_worker.acknowledger.config import load_settings
from codepipeline_worker.acknowledger.handler import lambda_handler
from codepipeline_worker.acknowledger.service import JobService
from codepipeline_worker.shared.adapter import (
    CodePipelineAdapter,
    WorkQueue,
    create_client_token_store,
    create_codepipeline_client,
    create_dynamodb_client,
    open_work_queue,
)
from codepipeline_worker.shared.config import load_config
from codepipeline_worker.shared.messages import JobMessage
from codepipeline_worker.work import handler as worker_handler
from codepipeline_worker.work.config import WorkerSettings
from codepipeline_worker.work.consume import LocalContext, consume_once
from codepipeline_worker.work.once import RunOnce
from codepipeline_worker.work.runner import WorkRunner
from local_resources import create_job_table, create_work_queues
from tests.conftest import TEST_ENV, FakeLambdaContext, load_event
from tests.integration.grants import Lookup

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

    from codepipeline_worker.shared.adapter import WorkQueue
    from codepipeline_worker.work import WorkFunction

CLIENT_ID = "c1e7d1a0-1234-4abc-9def-0123456789ab"
EVENT_TOKEN = "replace-with-the-partner-client-token"  # the token events/ files carry
CUSTOM = "Custom/Build/MyTool/1"
PARTNER = "ThirdParty/Deploy/PartnerTool/2"
# The work queue's settings in these tests: a message not deleted is visible again after 1 s, and goes to the
# dead-letter queue at its third receive (redelivered once).
VISIBILITY_TIMEOUT_S = 1
MAX_RECEIVE_COUNT = 2

WorkerFactory = Callable[..., JobService]
AcknowledgerFactory = Callable[..., JobService]
RunnerFactory = Callable[..., WorkRunner]
S3FrontFactory = Callable[[Lookup], ArtifactFront]
# The endpoint's operations, as the SDK names them, and the JobStore methods that answer them.
_STORE_OPERATIONS = {
    "PollForJobs": "poll_for_jobs",
    "AcknowledgeJob": "acknowledge_job",
    "GetJobDetails": "get_job_details",
    "PutJobSuccessResult": "put_job_success_result",
    "PutJobFailureResult": "put_job_failure_result",
    "PollForThirdPartyJobs": "poll_for_third_party_jobs",
    "GetThirdPartyJobDetails": "get_third_party_job_details",
    "AcknowledgeThirdPartyJob": "acknowledge_third_party_job",
    "PutThirdPartyJobSuccessResult": "put_third_party_job_success_result",
    "PutThirdPartyJobFailureResult": "put_third_party_job_failure_result",
}


def issued_secrets(endpoint: LocalCodePipeline) -> list[str]:
    """Every nonce, client token and artifact credential the endpoint has handed out or holds."""
    return endpoint.store.issued_secrets()


def record_requests(endpoint: LocalCodePipeline) -> list[dict[str, Any]]:
    """From now on, every request the endpoint answers (operation and parameters), in order. The server calls
    the store's method named after the operation: each is wrapped, on this endpoint's store only."""
    seen: list[dict[str, Any]] = []
    store = endpoint.store
    for operation, method in _STORE_OPERATIONS.items():
        answer = getattr(store, method)

        def recorded(params: dict[str, Any], operation: str = operation, answer: Any = answer) -> Any:
            seen.append({"operation": operation, "params": params})
            return answer(params)

        setattr(store, method, recorded)
    return seen


@dataclass(frozen=True)
class WorkQueues:
    """A work queue on moto and its dead-letter queue, with what the tests read of them."""

    client: SQSClient
    url: str
    dlq_url: str

    def depth(self, url: str | None = None) -> tuple[int, int]:
        """(visible, in flight) messages."""
        attributes = self.client.get_queue_attributes(
            QueueUrl=url or self.url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def set_max_receive_count(self, count: int) -> None:
        """How many receives the work queue allows a message before it sets it aside."""
        redrive = {"deadLetterTargetArn": self.dlq_arn(), "maxReceiveCount": str(count)}
        self.client.set_queue_attributes(QueueUrl=self.url, Attributes={"RedrivePolicy": json.dumps(redrive)})

    def dlq_arn(self) -> str:
        return self.client.get_queue_attributes(QueueUrl=self.dlq_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]

    def is_empty(self) -> bool:
        return self.depth() == (0, 0)

    def send(self, body: str, url: str | None = None) -> None:
        """Put a message on the (FIFO) work queue, or on its dead-letter queue as the redrive does: a new copy,
        never deduplicated."""
        job = json.loads(body).get("jobId", "")
        self.client.send_message(
            QueueUrl=url or self.url,
            MessageBody=body,
            MessageGroupId=str(job),
            MessageDeduplicationId=str(uuid.uuid4()),
        )

    def dead_letters(self) -> list[str]:
        """The bodies on the dead-letter queue, left there (received with no visibility timeout)."""
        response = self.client.receive_message(QueueUrl=self.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=0)
        return [m["Body"] for m in response.get("Messages", [])]


@pytest.fixture(scope="session")
def secrets_url(local_aws: str) -> str:
    """moto's server: every service it mocks (Secrets Manager and SQS here) on one 127.0.0.1 port."""
    return local_aws


@pytest.fixture
def endpoint() -> Iterator[LocalCodePipeline]:
    with LocalCodePipeline(dispatch_timeout_s=60.0) as running:
        yield running


def _create_secret(secrets_url: str, tokens: dict[str, str]) -> str:
    name = f"client-tokens-{uuid.uuid4()}"
    client = boto3.client("secretsmanager", endpoint_url=secrets_url, region_name="us-east-1")
    client.create_secret(Name=name, SecretString=json.dumps(tokens))
    return name


@pytest.fixture
def secret_id(secrets_url: str) -> str:
    """A new secret mapping the test clientId to the events/ files' token."""
    return _create_secret(secrets_url, {CLIENT_ID: EVENT_TOKEN})


@pytest.fixture
def empty_secret_id(secrets_url: str) -> str:
    """A new, valid secret with no client at all: a partner job's token cannot be found in it."""
    return _create_secret(secrets_url, {})


@pytest.fixture
def work_queue(secrets_url: str) -> WorkQueues:
    """A new FIFO work queue with a 1 s visibility timeout and a dead-letter queue after two receives."""
    client: SQSClient = boto3.client("sqs", endpoint_url=secrets_url, region_name="us-east-1")
    url, dlq_url = create_work_queues(client, f"work-{uuid.uuid4()}", VISIBILITY_TIMEOUT_S, MAX_RECEIVE_COUNT)
    return WorkQueues(client, url, dlq_url)


@pytest.fixture
def job_table(monkeypatch: pytest.MonkeyPatch, secrets_url: str) -> str:
    """A new job table, as the template declares it; the functions' DynamoDB client points at it."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", secrets_url)
    client = boto3.client("dynamodb", endpoint_url=secrets_url, region_name="us-east-1")
    return create_job_table(client, f"jobs-{uuid.uuid4()}")


@pytest.fixture
def make_worker(
    monkeypatch: pytest.MonkeyPatch, endpoint: LocalCodePipeline, secrets_url: str, secret_id: str
) -> WorkerFactory:
    """A new worker (one Lambda execution environment): settings from the environment, real SDK clients."""

    def factory(url: str | None = None, **env: str) -> JobService:
        monkeypatch.setenv("AWS_ENDPOINT_URL_CODEPIPELINE", url or endpoint.url)
        monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", secrets_url)
        monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", secrets_url)
        return JobService.from_settings(load_settings({**TEST_ENV, "CLIENT_TOKEN_SECRET_ID": secret_id, **env}))

    return factory


@pytest.fixture
def make_acknowledger(  # noqa: PLR0917 - the fixtures it builds on
    monkeypatch: pytest.MonkeyPatch,
    endpoint: LocalCodePipeline,
    secrets_url: str,
    work_queue: WorkQueues,
    job_table: str,
    make_worker: WorkerFactory,
) -> AcknowledgerFactory:
    """A new acknowledger that hands each claimed job to the work queue (JOB_QUEUE_URL), or to `queue_url`, through
    `sqs_url` if given (a proxy), and keeps its hand-off records in the job table. The endpoint knows the action
    types it polls, as CodePipeline does once a pipeline uses them."""

    def factory(queue_url: str | None = None, sqs_url: str | None = None, **env: str) -> JobService:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", sqs_url or secrets_url)
        for action_type in env.get("ACTION_TYPES", TEST_ENV["ACTION_TYPES"]).split(","):
            endpoint.store.add_action_type(action_type)
        return make_worker(JOB_QUEUE_URL=queue_url or work_queue.url, JOB_TABLE_NAME=job_table, **env)

    return factory


@pytest.fixture
def make_runner(
    monkeypatch: pytest.MonkeyPatch, endpoint: LocalCodePipeline, secrets_url: str, secret_id: str, job_table: str
) -> RunnerFactory:
    """A new work side (one execution environment of the work function's Lambda), its once-only records in the
    job table. With no work function, it is built as the Lambda builds it: from WORK_FUNCTION (by default the
    example action, `check_url`). `secret` names another client-token secret than the acknowledger's."""

    def factory(work: WorkFunction | None = None, *, secret: str | None = None, **env: str) -> WorkRunner:
        monkeypatch.setenv("AWS_ENDPOINT_URL_CODEPIPELINE", endpoint.url)
        monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", secrets_url)
        settings = load_config(
            WorkerSettings,
            {**TEST_ENV, "CLIENT_TOKEN_SECRET_ID": secret or secret_id, "JOB_TABLE_NAME": job_table, **env},
        )
        if work is None:
            return WorkRunner.from_settings(settings)
        codepipeline = CodePipelineAdapter(create_codepipeline_client(settings))
        once = RunOnce(create_dynamodb_client(settings), job_table)
        return WorkRunner.configured(codepipeline, create_client_token_store(settings), work, settings, once)

    return factory


@pytest.fixture
def make_s3_front(monkeypatch: pytest.MonkeyPatch, secrets_url: str) -> Iterator[S3FrontFactory]:
    """The artifact bucket's S3 as the work function's SDK sees it (AWS_ENDPOINT_URL_S3): moto's, behind the local
    endpoint's artifact front, which checks every request's Signature V4 against the credentials `grants` answers
    for an access key id (`tests.integration.grants`), and their scope. Stopped when the test ends."""
    fronts: list[ArtifactFront] = []

    def factory(grants: Lookup) -> ArtifactFront:
        front = ArtifactFront(secrets_url, grants)
        front.start()
        fronts.append(front)
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", front.url)
        return front

    yield factory
    for front in fronts:
        front.stop()


# -- the two sides of the life cycle, and what the endpoint recorded ---------------------------------------


# Long enough for a message left on the queue to become visible again (the receive long-polls: it returns as
# soon as the message is back).
REDELIVERY_WAIT_S = VISIBILITY_TIMEOUT_S + 2


def poll(acknowledger: JobService) -> dict[str, Any]:
    """The acknowledger's Lambda, invoked by its schedule."""
    result: dict[str, Any] = lambda_handler(load_event("scheduled.json"), FakeLambdaContext(), service=acknowledger)
    return result


class WorkSide:
    """The work function's Lambda (`worker_handler.lambda_handler`), fed from the work queue by `consume_once`,
    with `budget_s` seconds per invocation (by default, consume's). Keeps every SQS event it was given and every
    answer it gave."""

    def __init__(self, queue: WorkQueue, runner: WorkRunner, budget_s: float | None = None) -> None:
        self.queue = queue
        self.runner = runner
        self.budget_s = budget_s
        self.events: list[dict[str, Any]] = []
        self.answers: list[dict[str, Any]] = []

    def handler(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.events.append(event)
        if self.budget_s is not None:
            context = LocalContext(budget_s=self.budget_s)
        answer: dict[str, Any] = worker_handler.lambda_handler(event, context, runner=self.runner, queue=self.queue)
        self.answers.append(answer)
        return answer

    def consume(self, wait_s: int = 0) -> tuple[int, int]:
        """One receive and its batch: (messages received, messages left for redelivery)."""
        return consume_once(self.queue, self.handler, wait_s=wait_s)

    @property
    def records(self) -> list[dict[str, Any]]:
        return [record for event in self.events for record in event["Records"]]

    @property
    def bodies(self) -> list[str]:
        return [record["body"] for record in self.records]

    def messages(self) -> list[JobMessage]:
        return [JobMessage.from_body(body) for body in self.bodies]


type WorkSideFactory = Callable[..., WorkSide]


@pytest.fixture
def work_side(monkeypatch: pytest.MonkeyPatch, secrets_url: str, work_queue: WorkQueues) -> WorkSideFactory:
    def factory(runner: WorkRunner, budget_s: float | None = None) -> WorkSide:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", secrets_url)
        queue = open_work_queue(work_queue.url, load_config(WorkerSettings, TEST_ENV), long_poll_s=REDELIVERY_WAIT_S)
        return WorkSide(queue, runner, budget_s)

    return factory


def partner_job(
    endpoint: LocalCodePipeline, configuration: dict[str, str] | None = None, action_type: str = PARTNER
) -> str:
    return endpoint.store.create_job(
        action_type, configuration=configuration, client_id=CLIENT_ID, client_token=EVENT_TOKEN
    )


def events(endpoint: LocalCodePipeline, job_id: str) -> list[str]:
    return [entry["event"] for entry in endpoint.store.job(job_id)["history"]]


def last_event(endpoint: LocalCodePipeline, job_id: str) -> dict[str, Any]:
    """The job's last history entry, without its time."""
    entry = dict(endpoint.store.job(job_id)["history"][-1])
    del entry["at"]
    return entry
