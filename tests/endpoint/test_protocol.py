"""The wire protocol and botocore's model: what the real service rejects, the endpoint rejects the same way."""

from __future__ import annotations

import json
import urllib.request
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError

from codepipeline_local.model import check_response, operation
from tests.endpoint.conftest import CUSTOM

if TYPE_CHECKING:
    from mypy_boto3_codepipeline import CodePipelineClient

    from codepipeline_local import LocalCodePipeline

JOB_ID = "11111111-abcd-1111-abcd-111111abcdef"


def post(url: str, body: bytes, target: str | None) -> tuple[int, dict[str, Any], str]:
    """A raw request, as any SDK would send it; returns status, JSON body and content type."""
    headers = {"Content-Type": "application/x-amz-json-1.1"}
    if target is not None:
        headers["X-Amz-Target"] = target
    request = urllib.request.Request(f"{url}/", data=body, headers=headers, method="POST")  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback
            return response.status, json.loads(response.read()), response.headers["Content-Type"]
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), error.headers["Content-Type"]


def call(url: str, operation_name: str, params: Any) -> tuple[int, dict[str, Any]]:
    status, body, _ = post(url, json.dumps(params).encode(), f"CodePipeline_20150709.{operation_name}")
    return status, body


@pytest.mark.parametrize(
    ("operation_name", "params", "code", "message"),
    [
        (
            "AcknowledgeJob",
            {"nonce": "3"},
            "ValidationException",
            "Value null at 'jobId' failed to satisfy constraint: Member must not be null",
        ),
        (
            "AcknowledgeJob",
            {"jobId": JOB_ID, "nonce": "n" * 51},
            "ValidationException",
            "at 'nonce' failed to satisfy constraint: Member must have length less than or equal to 50",
        ),
        (
            "AcknowledgeJob",
            {"jobId": JOB_ID, "nonce": ""},
            "ValidationException",
            "Member must have length greater than or equal to 1",
        ),
        (
            "AcknowledgeJob",
            {"jobId": "f4f4ff82-2d11-EXAMPLE", "nonce": "3"},
            "ValidationException",
            "at 'jobId' failed to satisfy constraint: Member must satisfy regular expression pattern",
        ),
        (
            "AcknowledgeJob",
            {"jobId": JOB_ID.upper(), "nonce": "3"},
            "ValidationException",
            "regular expression pattern",
        ),
        (
            "AcknowledgeThirdPartyJob",
            {"jobId": "j" * 513, "nonce": "3", "clientToken": "t"},
            "ValidationException",
            "length less than or equal to 512",
        ),
        (
            "AcknowledgeThirdPartyJob",
            {"jobId": "j", "nonce": "3", "clientToken": "t" * 257},
            "ValidationException",
            "length less than or equal to 256",
        ),
        (
            "PollForJobs",
            {"actionTypeId": {**CUSTOM, "owner": "custom"}},
            "ValidationException",
            "at 'actionTypeId.owner' failed to satisfy constraint: "
            "Member must satisfy enum value set: [AWS, ThirdParty, Custom]",
        ),
        (
            "PollForJobs",
            {"actionTypeId": {**CUSTOM, "provider": "P" * 36}},
            "ValidationException",
            "at 'actionTypeId.provider'",
        ),
        (
            "PollForJobs",
            {"actionTypeId": {**CUSTOM, "version": "1.0"}},
            "ValidationException",
            "at 'actionTypeId.version'",
        ),
        (
            "PollForJobs",
            {"actionTypeId": CUSTOM, "maxBatchSize": 0},
            "ValidationException",
            "at 'maxBatchSize' failed to satisfy constraint: Member must have value greater than or equal to 1",
        ),
        (
            "PollForJobs",
            {"actionTypeId": CUSTOM, "queryParam": {"a": "1", "b": "2"}},
            "ValidationException",
            "at 'queryParam'",
        ),
        (
            "PollForJobs",
            {"actionTypeId": CUSTOM, "queryParam": {"ProjectName": "my project"}},
            "ValidationException",
            "at 'queryParam.ProjectName'",
        ),
        (
            "PollForJobs",
            {"actionTypeId": CUSTOM, "maxBatchSize": "ten"},
            "SerializationException",
            "Expected number at 'maxBatchSize'",
        ),
        (
            "PollForJobs",
            {"actionTypeId": "Custom/Build/MyTool/1"},
            "SerializationException",
            "Expected structure at 'actionTypeId'",
        ),
        (
            "PutJobFailureResult",
            {"jobId": JOB_ID, "failureDetails": {"type": "Oops", "message": "m"}},
            "ValidationException",
            "at 'failureDetails.type'",
        ),
        ("AcknowledgeJob", ["not", "an", "object"], "SerializationException", "structure was expected"),
    ],
)
def test_requests_the_service_would_reject_are_rejected(
    endpoint: LocalCodePipeline, operation_name: str, params: Any, code: str, message: str
) -> None:
    status, body = call(endpoint.url, operation_name, params)

    assert status == 400
    assert body["__type"] == code
    assert message in body["message"]


def test_every_violation_is_counted_in_one_answer(endpoint: LocalCodePipeline) -> None:
    _, body = call(endpoint.url, "AcknowledgeJob", {"jobId": "bad", "nonce": ""})
    assert body["message"].startswith("2 validation errors detected: ")


def test_botocore_sends_what_only_the_service_rejects(client: CodePipelineClient) -> None:
    # botocore checks minimum lengths only: an over-long nonce reaches the service, which rejects it
    with pytest.raises(ClientError) as caught:
        client.acknowledge_job(jobId=JOB_ID, nonce="n" * 51)
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


@pytest.mark.parametrize(
    ("body", "target", "code"),
    [
        (b"{}", None, "UnknownOperationException"),
        (b"{}", "CodePipeline_20150709.CreatePipeline", "UnknownOperationException"),
        (b"{}", "Other_20200101.PollForJobs", "UnknownOperationException"),
        (b"{not json", "CodePipeline_20150709.AcknowledgeJob", "SerializationException"),
    ],
)
def test_unknown_operations_and_bodies_are_refused(
    endpoint: LocalCodePipeline, body: bytes, target: str | None, code: str
) -> None:
    status, answer, content_type = post(endpoint.url, body, target)

    assert (status, answer["__type"]) == (400, code)
    assert content_type == "application/x-amz-json-1.1"


def test_answers_are_json_1_1_with_a_request_id(endpoint: LocalCodePipeline) -> None:
    endpoint.store.add_action_type("Custom/Build/MyTool/1")
    request = urllib.request.Request(  # noqa: S310 - loopback
        f"{endpoint.url}/",
        data=json.dumps({"actionTypeId": CUSTOM}).encode(),
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "CodePipeline_20150709.PollForJobs"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/x-amz-json-1.1"
        assert response.headers["x-amzn-RequestId"]
        assert json.loads(response.read()) == {"jobs": []}


def test_answers_are_held_to_the_output_shapes() -> None:
    op = operation("AcknowledgeJob")
    assert check_response(op, {"status": "InProgress"}) == {"status": "InProgress"}
    with pytest.raises(AssertionError, match="does not fit the model"):
        check_response(op, {"status": "Claimed"})
    with pytest.raises(AssertionError, match="Unknown member"):
        check_response(op, {"status": "InProgress", "nonce": "3"})
    with pytest.raises(AssertionError):
        check_response(operation("PutJobSuccessResult"), {"unexpected": 1})


def test_the_endpoint_listens_on_loopback_only() -> None:
    from codepipeline_local import LocalCodePipeline

    with pytest.raises(ValueError, match="loopback"):
        LocalCodePipeline(host="0.0.0.0")  # noqa: S104 - the point of the test
