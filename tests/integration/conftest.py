"""Integration fixtures: the local CodePipeline endpoint and moto's Secrets Manager, both on 127.0.0.1, and
workers: the real handler's service, with real boto3 clients pointed at them through the SDK's variables."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterator

import boto3
import pytest
from moto.server import ThreadedMotoServer

from codepipeline_local import LocalCodePipeline
from codepipeline_worker.config import load_settings
from codepipeline_worker.service import JobService
from tests.conftest import TEST_ENV

CLIENT_ID = "c1e7d1a0-1234-4abc-9def-0123456789ab"
EVENT_TOKEN = "replace-with-the-partner-client-token"  # the token events/ files carry
CUSTOM = "Custom/Build/MyTool/1"
PARTNER = "ThirdParty/Deploy/PartnerTool/2"

WorkerFactory = Callable[..., JobService]


def issued_secrets(endpoint: LocalCodePipeline) -> list[str]:
    """Every nonce, client token and artifact credential the endpoint has handed out or holds."""
    return [
        value
        for job in endpoint.store._jobs.values()  # the endpoint's own record of what it issued
        for value in (job.nonce, job.client_token, *job.credentials.values())
        if value
    ]


@pytest.fixture(scope="session")
def secrets_url() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def endpoint() -> Iterator[LocalCodePipeline]:
    with LocalCodePipeline(dispatch_timeout_s=60.0) as running:
        yield running


@pytest.fixture
def secret_id(secrets_url: str) -> str:
    """A new secret mapping the test clientId to the events/ files' token."""
    name = f"client-tokens-{uuid.uuid4()}"
    client = boto3.client("secretsmanager", endpoint_url=secrets_url, region_name="us-east-1")
    client.create_secret(Name=name, SecretString=json.dumps({CLIENT_ID: EVENT_TOKEN}))
    return name


@pytest.fixture
def make_worker(
    monkeypatch: pytest.MonkeyPatch, endpoint: LocalCodePipeline, secrets_url: str, secret_id: str
) -> WorkerFactory:
    """A new worker (one Lambda execution environment): settings from the environment, real SDK clients."""

    def factory(url: str | None = None, **env: str) -> JobService:
        monkeypatch.setenv("AWS_ENDPOINT_URL_CODEPIPELINE", url or endpoint.url)
        monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", secrets_url)
        return JobService.from_settings(load_settings({**TEST_ENV, "CLIENT_TOKEN_SECRET_ID": secret_id, **env}))

    return factory
