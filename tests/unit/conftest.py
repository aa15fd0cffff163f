"""Unit-test fixtures: real boto3 clients wrapped in botocore's Stubber, which checks every request against
CodePipeline's and Secrets Manager's service models and makes no network call."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from botocore.stub import Stubber

from codepipeline_worker.acknowledger.config import Settings, load_settings
from codepipeline_worker.acknowledger.service import JobService
from codepipeline_worker.shared.adapter import ClientTokenStore, CodePipelineAdapter, WorkQueue
from tests.conftest import TEST_ENV

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mypy_boto3_codepipeline import CodePipelineClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient

    Stubbed = tuple[CodePipelineClient, Stubber]
    StubbedSecrets = tuple[SecretsManagerClient, Stubber]
    StubbedQueue = tuple[SQSClient, Stubber]

SECRET_ID = "codepipeline/partner-client-tokens"
CLIENT_ID = "c1e7d1a0-1234-4abc-9def-0123456789ab"
CLIENT_TOKEN = "partner-token-Zq8LwX3vNf0aTq"  # the token events/ files name is a placeholder
CUSTOM = {"owner": "Custom", "category": "Build", "provider": "MyTool", "version": "1"}
PARTNER = {"owner": "ThirdParty", "category": "Deploy", "provider": "PartnerTool", "version": "2"}
QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/codepipeline-jobs"


def make_settings(**overrides: str) -> Settings:
    # One acknowledgement at a time, so Stubber's queued responses meet calls in a known order.
    return load_settings({**TEST_ENV, "ACK_CONCURRENCY": "1", **overrides})


@pytest.fixture
def codepipeline() -> Iterator[tuple[CodePipelineClient, Stubber]]:
    client = boto3.client("codepipeline", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def secrets() -> Iterator[tuple[SecretsManagerClient, Stubber]]:
    client = boto3.client("secretsmanager", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def sqs() -> Iterator[tuple[SQSClient, Stubber]]:
    client = boto3.client("sqs", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


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
    queue: WorkQueue | None = None,
) -> JobService:
    return JobService(
        settings or make_settings(), CodePipelineAdapter(client), tokens, queue=queue, started_retry_delays=delays
    )
