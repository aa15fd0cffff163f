"""Fixtures for the local endpoint's own tests: a running endpoint (alone, or with moto's S3 and KMS for artifacts)
and real boto3 clients for it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
import pytest
from botocore.config import Config

from codepipeline_local import LocalCodePipeline

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mypy_boto3_codepipeline import CodePipelineClient
    from mypy_boto3_codepipeline.type_defs import ActionTypeIdTypeDef, AWSSessionCredentialsTypeDef
    from mypy_boto3_s3 import S3Client

CUSTOM: ActionTypeIdTypeDef = {"owner": "Custom", "category": "Build", "provider": "MyTool", "version": "1"}
PARTNER: ActionTypeIdTypeDef = {"owner": "ThirdParty", "category": "Deploy", "provider": "PartnerTool", "version": "2"}
CLIENT_ID = "c1e7d1a0-1234-4abc-9def-0123456789ab"
CLIENT_TOKEN = "local-partner-token"


@pytest.fixture
def endpoint() -> Iterator[LocalCodePipeline]:
    with LocalCodePipeline(dispatch_timeout_s=60.0) as running:
        yield running


def client_for(url: str, attempts: int = 1, read_timeout: float = 5) -> CodePipelineClient:
    config = Config(
        retries={"mode": "standard", "total_max_attempts": attempts}, read_timeout=read_timeout, connect_timeout=2
    )
    return boto3.client("codepipeline", endpoint_url=url, region_name="us-east-1", config=config)


@pytest.fixture
def client(endpoint: LocalCodePipeline) -> CodePipelineClient:
    return client_for(endpoint.url)


@pytest.fixture
def artifact_endpoint(local_aws: str) -> Iterator[LocalCodePipeline]:
    """The endpoint with moto's S3 and KMS: artifacts are real objects, reached through the artifact front."""
    with LocalCodePipeline(aws_url=local_aws) as running:
        yield running


def s3_with(endpoint: LocalCodePipeline, credentials: AWSSessionCredentialsTypeDef) -> S3Client:
    """S3 as a worker reaches it: through the artifact front, with a job's artifact credentials."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint.artifact_url,
        region_name="us-east-1",
        aws_access_key_id=credentials["accessKeyId"],
        aws_secret_access_key=credentials["secretAccessKey"],
        aws_session_token=credentials["sessionToken"],
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )
