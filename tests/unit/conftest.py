"""Unit-test fixtures: real boto3 clients wrapped in botocore's Stubber, which checks every request against
CodePipeline's and Secrets Manager's service models and makes no network call."""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from botocore.exceptions import StubResponseError
from botocore.stub import Stubber

from codepipeline_worker.acknowledger.claims import Handoffs
from codepipeline_worker.acknowledger.config import Settings, load_settings
from codepipeline_worker.acknowledger.service import JobService
from codepipeline_worker.shared.adapter import ClientTokenStore, CodePipelineAdapter, HandoffLedger, WorkQueue
from tests.conftest import TEST_ENV

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mypy_boto3_codepipeline import CodePipelineClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient

    Stubbed = tuple[CodePipelineClient, Stubber]
    StubbedSecrets = tuple[SecretsManagerClient, Stubber]
    StubbedQueue = tuple[SQSClient, Stubber]
    StubbedTable = tuple[DynamoDBClient, Stubber]

SECRET_ID = "codepipeline/partner-client-tokens"
CLIENT_ID = "c1e7d1a0-1234-4abc-9def-0123456789ab"
CLIENT_TOKEN = "partner-token-Zq8LwX3vNf0aTq"  # the token events/ files name is a placeholder
CUSTOM = {"owner": "Custom", "category": "Build", "provider": "MyTool", "version": "1"}
PARTNER = {"owner": "ThirdParty", "category": "Deploy", "provider": "PartnerTool", "version": "2"}
QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/codepipeline-jobs.fifo"
TABLE = "codepipeline-jobs"


class UnorderedStubber(Stubber):  # botocore's Stubber keeps its queue and checks private: overridden here
    """A Stubber for code that calls from several threads (a poll beside the claims of the previous one): each call
    takes the first queued response of its operation whose expected parameters match, wherever it is in the queue.
    Parameters are still checked against the service model, and every queued response must be taken."""

    def __init__(self, client: Any) -> None:
        super().__init__(client)
        self._lock = threading.Lock()
        self._taken = threading.local()

    def _assert_expected_params(self, model: Any, params: Any, context: Any, **kwargs: Any) -> None:
        if self._should_not_stub(context):  # type: ignore[attr-defined]
            return
        queue = self._queue  # type: ignore[attr-defined]
        with self._lock:
            for index, entry in enumerate(queue):
                expected = entry["expected_params"]
                if entry["operation_name"] == model.name and (expected is None or expected == params):
                    del queue[index]
                    self._taken.entry = entry
                    return
        raise StubResponseError(operation_name=model.name, reason=f"nothing queued for these parameters: {params}")

    def _get_response_handler(self, model: Any, params: Any, context: Any, **kwargs: Any) -> Any:
        entry = self._taken.entry
        self._taken.entry = None
        return entry["response"]


def make_settings(**overrides: str) -> Settings:
    # One acknowledgement at a time, so that a batch's claims meet the stubbed answers in a known order.
    return load_settings({**TEST_ENV, "ACK_CONCURRENCY": "1", **overrides})


def _stubbed(service: str, stubber: type[Stubber] = UnorderedStubber) -> Iterator[Any]:
    client = boto3.client(service, region_name="us-east-1")  # type: ignore[call-overload]
    with stubber(client) as stubbed:
        yield client, stubbed
        stubbed.assert_no_pending_responses()


@pytest.fixture
def codepipeline() -> Iterator[tuple[CodePipelineClient, Stubber]]:
    yield from _stubbed("codepipeline")


@pytest.fixture
def secrets() -> Iterator[tuple[SecretsManagerClient, Stubber]]:
    yield from _stubbed("secretsmanager", Stubber)


@pytest.fixture
def sqs() -> Iterator[tuple[SQSClient, Stubber]]:
    yield from _stubbed("sqs")


@pytest.fixture
def dynamodb() -> Iterator[tuple[DynamoDBClient, Stubber]]:
    yield from _stubbed("dynamodb")


def handoffs(queue: SQSClient, table: DynamoDBClient) -> Handoffs:
    """The work queue (FIFO) and the job table, on stubbed clients."""
    return Handoffs(WorkQueue(queue, QUEUE_URL), HandoffLedger(table, TABLE))


@pytest.fixture
def clean_metrics() -> Iterator[None]:
    """Metrics added outside a handler (a service or runner called directly) stay in Powertools' shared set
    until some handler flushes them: cleared before and after, they count in no other test."""
    from codepipeline_worker.shared.observability import metrics

    metrics.clear_metrics()
    yield
    metrics.clear_metrics()


def record_requests(client: Any) -> list[tuple[str, dict[str, Any]]]:
    """Every request the client makes from now on: (operation name, parameters), in order."""
    requests: list[tuple[str, dict[str, Any]]] = []
    service = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register(
        f"provide-client-params.{service}",
        lambda params, model, **_: requests.append((model.name, dict(params))),
    )
    return requests


def secret_response(mapping: Any) -> dict[str, Any]:
    return {"Name": SECRET_ID, "SecretString": mapping if isinstance(mapping, str) else json.dumps(mapping)}


def token_store(client: SecretsManagerClient) -> ClientTokenStore:
    return ClientTokenStore(SECRET_ID, SecretsProvider(boto3_client=client))


def make_service(
    client: CodePipelineClient,
    tokens: ClientTokenStore | None = None,
    settings: Settings | None = None,
    delays: tuple[float, ...] = (0.0, 0.0),
    handoffs: Handoffs | None = None,
) -> JobService:
    return JobService(
        settings or make_settings(),
        CodePipelineAdapter(client),
        tokens,
        handoffs=handoffs,
        started_retry_delays=delays,
    )
