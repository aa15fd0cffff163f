"""The hand-off: a claimed job goes to the work queue as one message holding ids and context, never a secret;
a job the queue refuses is failed back to CodePipeline at once."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from codepipeline_worker.acknowledger.handler import lambda_handler
from codepipeline_worker.shared.adapter import WorkQueue
from codepipeline_worker.shared.errors import JobError
from tests.conftest import load_event
from tests.unit.conftest import (
    CLIENT_ID,
    CLIENT_TOKEN,
    CUSTOM,
    PARTNER,
    QUEUE_URL,
    SECRET_ID,
    make_service,
    make_settings,
    record_requests,
    secret_response,
    token_store,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.conftest import FakeLambdaContext
    from tests.unit.conftest import Stubbed, StubbedQueue, StubbedSecrets

pytestmark = pytest.mark.usefixtures("clean_metrics")

CUSTOM_ONLY = {"ACTION_TYPES": "Custom/Build/MyTool/1"}
PARTNER_ONLY = {"ACTION_TYPES": "ThirdParty/Deploy/PartnerTool/2"}
JOB = "11111111-abcd-4bcd-8bcd-0123456789ab"
JOB_2 = "22222222-abcd-4bcd-8bcd-0123456789ab"
JOB_3 = "33333333-abcd-4bcd-8bcd-0123456789ab"
PARTNER_JOB = "partner-job-0001"
EXECUTION_ID = "0e3c5f5a-1b2c-4d3e-8f4a-5b6c7d8e9f00"

# Values that must never reach the work queue: each one is unique, so a leak is found wherever it lands.
NONCE_MARKER = "nonce-MARKER-5f1c"
ACCESS_MARKER = "AKIAMARKER0ACCESS0KEY"
SECRET_KEY_MARKER = "secret-access-key-MARKER-77a2"
SESSION_MARKER = "session-token-MARKER-0b9e"
CONFIG_MARKER = "config-password-MARKER-4d4d"
CONFIG_URL_MARKER = "https://deploy.example.com/health?token=config-url-MARKER-8c31"
KMS_MARKER = "arn:aws:kms:us-east-1:123456789012:key/kms-MARKER-1a2b"
MARKERS = (
    NONCE_MARKER,
    ACCESS_MARKER,
    SECRET_KEY_MARKER,
    SESSION_MARKER,
    CONFIG_MARKER,
    CONFIG_URL_MARKER,
    "config-url-MARKER",
    KMS_MARKER,
    CLIENT_TOKEN,
)
CREDENTIALS = {"accessKeyId": ACCESS_MARKER, "secretAccessKey": SECRET_KEY_MARKER, "sessionToken": SESSION_MARKER}

PIPELINE_CONTEXT = {
    "pipelineName": "my-pipeline",
    "stage": {"name": "Deploy"},
    "action": {"name": "HealthGate", "actionExecutionId": "action-exec-42"},
    "pipelineArn": "arn:aws:codepipeline:us-east-1:123456789012:my-pipeline",
    "pipelineExecutionId": EXECUTION_ID,
}
INPUT_ARTIFACTS = [
    {
        "name": "BuildOutput",
        "revision": "3f2a9c1",
        "location": {
            "type": "S3",
            "s3Location": {"bucketName": "artifact-bucket", "objectKey": "my-pipeline/BuildOutpu/Xy12Ab"},
        },
    }
]
OUTPUT_ARTIFACTS = [
    {
        "name": "GateResult",
        "location": {
            "type": "S3",
            "s3Location": {"bucketName": "artifact-bucket", "objectKey": "my-pipeline/GateResul/Zz99Qq"},
        },
    }
]
CONTINUATION = '{"checks": 2}'


def job_data(action_type: dict[str, str]) -> dict[str, Any]:
    """Everything CodePipeline's JobData holds: the context, and the secrets the message must not carry."""
    return {
        "actionTypeId": action_type,
        "actionConfiguration": {"configuration": {"Url": CONFIG_URL_MARKER, "Password": CONFIG_MARKER}},
        "pipelineContext": PIPELINE_CONTEXT,
        "inputArtifacts": INPUT_ARTIFACTS,
        "outputArtifacts": OUTPUT_ARTIFACTS,
        "artifactCredentials": CREDENTIALS,
        "continuationToken": CONTINUATION,
        "encryptionKey": {"id": KMS_MARKER, "type": "KMS"},
    }


def body(**fields: Any) -> str:
    """The exact message body: the model's compact JSON, keys in the model's order."""
    return json.dumps(fields, separators=(",", ":"))


def context_body(job_id: str, job_type: str, action_type: dict[str, str], **ids: str) -> str:
    return body(
        version=1,
        jobId=job_id,
        jobType=job_type,
        **ids,
        actionType=action_type,
        pipelineContext=PIPELINE_CONTEXT,
        inputArtifacts=INPUT_ARTIFACTS,
        outputArtifacts=OUTPUT_ARTIFACTS,
        continuationToken=CONTINUATION,
    )


def failure_report(code: str) -> dict[str, str]:
    return {
        "type": "SystemUnavailable",
        "message": (
            f"The job worker claimed this job but could not put it on its work queue ({code})."
            " Nothing ran; retry the action."
        ),
    }


def assert_no_marker(requests: list[tuple[str, dict[str, Any]]]) -> None:
    text = json.dumps(requests)
    for marker in MARKERS:
        assert marker not in text, f"{marker!r} was sent to SQS"


def test_a_polled_job_goes_to_the_queue_with_its_context_and_no_secret(
    codepipeline: Stubbed, sqs: StubbedQueue, lambda_context: FakeLambdaContext
) -> None:
    client, stubber = codepipeline
    sqs_client, sqs_stubber = sqs
    sent = record_requests(sqs_client)
    # Given a poll whose job data holds credentials, a secret configuration and an encryption key
    stubber.add_response(
        "poll_for_jobs",
        {"jobs": [{"id": JOB, "nonce": NONCE_MARKER, "accountId": "123456789012", "data": job_data(CUSTOM)}]},
        {"actionTypeId": CUSTOM, "maxBatchSize": 10},
    )
    stubber.add_response("acknowledge_job", {"status": "InProgress"}, {"jobId": JOB, "nonce": NONCE_MARKER})
    expected = context_body(JOB, "custom", CUSTOM, accountId="123456789012")
    sqs_stubber.add_response("send_message", {"MessageId": "m-1"}, {"QueueUrl": QUEUE_URL, "MessageBody": expected})
    service = make_service(client, settings=make_settings(**CUSTOM_ONLY), queue=WorkQueue(sqs_client, QUEUE_URL))

    # When the schedule fires
    result = lambda_handler(load_event("scheduled.json"), lambda_context, service=service)

    # Then the claimed job was queued, with exactly the ids and the context
    assert result["results"] == [
        {
            "jobId": JOB,
            "jobType": "custom",
            "outcome": "acknowledged",
            "status": "InProgress",
            "actionType": "Custom/Build/MyTool/1",
            "handoff": "queued",
        }
    ]
    assert result["counts"] == {
        "total": 1,
        "acknowledged": 1,
        "notClaimed": 0,
        "conflict": 0,
        "failed": 0,
        "queued": 1,
        "handoffFailed": 0,
    }
    assert [operation for operation, _ in sent] == ["SendMessage"]
    message = json.loads(sent[0][1]["MessageBody"])
    for absent in ("nonce", "clientToken", "artifactCredentials", "actionConfiguration", "configuration"):
        assert absent not in message
    assert_no_marker(sent)


def test_a_directly_claimed_job_is_queued_with_its_ids_only(
    codepipeline: Stubbed, sqs: StubbedQueue, lambda_context: FakeLambdaContext
) -> None:
    client, stubber = codepipeline
    sqs_client, sqs_stubber = sqs
    stubber.add_response(
        "acknowledge_job", {"status": "InProgress"}, {"jobId": "11111111-abcd-1111-abcd-111111abcdef", "nonce": "3"}
    )
    sqs_stubber.add_response(
        "send_message",
        {"MessageId": "m-1"},
        {
            "QueueUrl": QUEUE_URL,
            "MessageBody": body(version=1, jobId="11111111-abcd-1111-abcd-111111abcdef", jobType="custom"),
        },
    )
    service = make_service(client, queue=WorkQueue(sqs_client, QUEUE_URL))

    result = lambda_handler(load_event("custom-job.json"), lambda_context, service=service)

    assert result == {
        "jobId": "11111111-abcd-1111-abcd-111111abcdef",
        "jobType": "custom",
        "outcome": "acknowledged",
        "status": "InProgress",
        "handoff": "queued",
    }


def test_a_direct_partner_job_is_queued_with_its_client_id(
    codepipeline: Stubbed, sqs: StubbedQueue, lambda_context: FakeLambdaContext
) -> None:
    client, stubber = codepipeline
    sqs_client, sqs_stubber = sqs
    sent = record_requests(sqs_client)
    event = {"jobId": PARTNER_JOB, "nonce": NONCE_MARKER, "clientToken": CLIENT_TOKEN, "clientId": CLIENT_ID}
    stubber.add_response(
        "acknowledge_third_party_job",
        {"status": "InProgress"},
        {"jobId": PARTNER_JOB, "nonce": NONCE_MARKER, "clientToken": CLIENT_TOKEN},
    )
    sqs_stubber.add_response(
        "send_message",
        {"MessageId": "m-1"},
        {
            "QueueUrl": QUEUE_URL,
            "MessageBody": body(version=1, jobId=PARTNER_JOB, jobType="thirdParty", clientId=CLIENT_ID),
        },
    )
    service = make_service(client, queue=WorkQueue(sqs_client, QUEUE_URL))

    result = lambda_handler(event, lambda_context, service=service)

    assert result["handoff"] == "queued"
    assert_no_marker(sent)


def test_a_polled_partner_job_is_queued_from_its_job_details(
    codepipeline: Stubbed, secrets: StubbedSecrets, sqs: StubbedQueue, lambda_context: FakeLambdaContext
) -> None:
    client, stubber = codepipeline
    sm_client, sm_stubber = secrets
    sqs_client, sqs_stubber = sqs
    sent = record_requests(sqs_client)
    stubber.add_response(
        "poll_for_third_party_jobs",
        {"jobs": [{"jobId": PARTNER_JOB, "clientId": CLIENT_ID}]},
        {"actionTypeId": PARTNER, "maxBatchSize": 10},
    )
    sm_stubber.add_response("get_secret_value", secret_response({CLIENT_ID: CLIENT_TOKEN}), {"SecretId": SECRET_ID})
    stubber.add_response(
        "get_third_party_job_details",
        {"jobDetails": {"id": PARTNER_JOB, "nonce": NONCE_MARKER, "data": job_data(PARTNER)}},
        {"jobId": PARTNER_JOB, "clientToken": CLIENT_TOKEN},
    )
    stubber.add_response(
        "acknowledge_third_party_job",
        {"status": "InProgress"},
        {"jobId": PARTNER_JOB, "nonce": NONCE_MARKER, "clientToken": CLIENT_TOKEN},
    )
    expected = context_body(PARTNER_JOB, "thirdParty", PARTNER, clientId=CLIENT_ID)
    sqs_stubber.add_response("send_message", {"MessageId": "m-1"}, {"QueueUrl": QUEUE_URL, "MessageBody": expected})
    service = make_service(
        client,
        token_store(sm_client),
        make_settings(**PARTNER_ONLY, CLIENT_TOKEN_SECRET_ID=SECRET_ID),
        queue=WorkQueue(sqs_client, QUEUE_URL),
    )

    result = lambda_handler(load_event("scheduled.json"), lambda_context, service=service)

    assert [(r["outcome"], r["handoff"]) for r in result["results"]] == [("acknowledged", "queued")]
    assert_no_marker(sent)


def test_a_job_the_queue_refuses_is_failed_back(
    codepipeline: Stubbed, sqs: StubbedQueue, lambda_context: FakeLambdaContext, emitted: Callable[[], str]
) -> None:
    client, stubber = codepipeline
    sqs_client, sqs_stubber = sqs
    stubber.add_response(
        "acknowledge_job", {"status": "InProgress"}, {"jobId": "11111111-abcd-1111-abcd-111111abcdef", "nonce": "3"}
    )
    sqs_stubber.add_client_error("send_message", "KmsAccessDenied", "denied", 400)
    stubber.add_response(
        "put_job_failure_result",
        {},
        {"jobId": "11111111-abcd-1111-abcd-111111abcdef", "failureDetails": failure_report("KmsAccessDenied")},
    )
    service = make_service(client, queue=WorkQueue(sqs_client, QUEUE_URL))

    result = lambda_handler(load_event("custom-job.json"), lambda_context, service=service)

    assert result == {
        "jobId": "11111111-abcd-1111-abcd-111111abcdef",
        "jobType": "custom",
        "outcome": "acknowledged",
        "status": "InProgress",
        "handoff": "failedBack",
        "handoffError": "KmsAccessDenied",
    }
    assert "hand-off failed: the job was failed back to CodePipeline" in emitted()


def test_a_partner_job_the_queue_refuses_is_failed_back_with_its_client_token(
    codepipeline: Stubbed, sqs: StubbedQueue, lambda_context: FakeLambdaContext, emitted: Callable[[], str]
) -> None:
    client, stubber = codepipeline
    sqs_client, sqs_stubber = sqs
    event = {"jobId": PARTNER_JOB, "nonce": "7", "clientToken": CLIENT_TOKEN, "clientId": CLIENT_ID}
    stubber.add_response("acknowledge_third_party_job", {"status": "InProgress"})
    sqs_stubber.add_client_error("send_message", "ServiceUnavailable", "try later", 503)
    stubber.add_response(
        "put_third_party_job_failure_result",
        {},
        {"jobId": PARTNER_JOB, "clientToken": CLIENT_TOKEN, "failureDetails": failure_report("ServiceUnavailable")},
    )
    service = make_service(client, queue=WorkQueue(sqs_client, QUEUE_URL))

    result = lambda_handler(event, lambda_context, service=service)

    assert (result["handoff"], result["handoffError"]) == ("failedBack", "ServiceUnavailable")
    assert CLIENT_TOKEN not in emitted()


def test_a_job_neither_queued_nor_failed_back_is_lost(
    codepipeline: Stubbed, sqs: StubbedQueue, lambda_context: FakeLambdaContext, emitted: Callable[[], str]
) -> None:
    client, stubber = codepipeline
    sqs_client, sqs_stubber = sqs
    stubber.add_response("acknowledge_job", {"status": "InProgress"})
    sqs_stubber.add_client_error("send_message", "KmsThrottled", "slow down", 400)
    stubber.add_client_error(
        "put_job_failure_result",
        "ThrottlingException",
        expected_params={
            "jobId": "11111111-abcd-1111-abcd-111111abcdef",
            "failureDetails": failure_report("KmsThrottled"),
        },
    )
    service = make_service(client, queue=WorkQueue(sqs_client, QUEUE_URL))

    result = lambda_handler(load_event("custom-job.json"), lambda_context, service=service)

    # The error kept is the queue's: the reason the job was not handed off
    assert (result["handoff"], result["handoffError"]) == ("lost", "KmsThrottled")
    assert "hand-off failed and the job could not be failed back" in emitted()


def test_a_batch_counts_queued_and_refused_hand_offs(
    codepipeline: Stubbed, sqs: StubbedQueue, lambda_context: FakeLambdaContext
) -> None:
    client, stubber = codepipeline
    sqs_client, sqs_stubber = sqs
    # Given three jobs: queued, refused by the queue, and not claimed (never handed off)
    stubber.add_response("acknowledge_job", {"status": "InProgress"}, {"jobId": JOB, "nonce": "1"})
    sqs_stubber.add_response(
        "send_message",
        {"MessageId": "m-1"},
        {"QueueUrl": QUEUE_URL, "MessageBody": body(version=1, jobId=JOB, jobType="custom")},
    )
    stubber.add_response("acknowledge_job", {"status": "InProgress"}, {"jobId": JOB_2, "nonce": "2"})
    sqs_stubber.add_client_error(
        "send_message",
        "KmsDisabled",
        expected_params={"QueueUrl": QUEUE_URL, "MessageBody": body(version=1, jobId=JOB_2, jobType="custom")},
    )
    stubber.add_response(
        "put_job_failure_result", {}, {"jobId": JOB_2, "failureDetails": failure_report("KmsDisabled")}
    )
    stubber.add_response("acknowledge_job", {"status": "TimedOut"}, {"jobId": JOB_3, "nonce": "3"})
    service = make_service(client, queue=WorkQueue(sqs_client, QUEUE_URL))
    jobs = [{"jobId": JOB, "nonce": "1"}, {"jobId": JOB_2, "nonce": "2"}, {"jobId": JOB_3, "nonce": "3"}]

    result = lambda_handler({"jobs": jobs}, lambda_context, service=service)

    assert [(r["outcome"], r.get("handoff")) for r in result["results"]] == [
        ("acknowledged", "queued"),
        ("acknowledged", "failedBack"),
        ("notClaimed", None),
    ]
    assert result["counts"] == {
        "total": 3,
        "acknowledged": 2,
        "notClaimed": 1,
        "conflict": 0,
        "failed": 0,
        "queued": 1,
        "handoffFailed": 1,
    }


def test_a_partner_job_without_client_id_is_refused_before_any_call(
    codepipeline: Stubbed, sqs: StubbedQueue, lambda_context: FakeLambdaContext
) -> None:
    client, _ = codepipeline
    sqs_client, _ = sqs
    codepipeline_calls = record_requests(client)
    sqs_calls = record_requests(sqs_client)
    service = make_service(client, queue=WorkQueue(sqs_client, QUEUE_URL))

    # A single job raises, named after the code; in a batch it is one failed result
    with pytest.raises(JobError) as caught:
        lambda_handler(load_event("partner-job.json"), lambda_context, service=service)
    result = lambda_handler(
        {"jobs": [load_event("partner-job.json"), load_event("partner-job-token-only.json")]},
        lambda_context,
        service=service,
    )

    assert type(caught.value).__name__ == "ClientIdRequired"
    assert "needs its clientId" in str(caught.value)
    assert [(r["outcome"], r["error"]) for r in result["results"]] == [
        ("failed", "ClientIdRequired"),
        ("failed", "ClientIdRequired"),
    ]
    assert codepipeline_calls == []
    assert sqs_calls == []


def test_without_a_queue_nothing_is_handed_off(
    codepipeline: Stubbed, sqs: StubbedQueue, lambda_context: FakeLambdaContext
) -> None:
    client, stubber = codepipeline
    sqs_client, _ = sqs
    sqs_calls = record_requests(sqs_client)
    stubber.add_response(
        "poll_for_jobs",
        {"jobs": [{"id": JOB, "nonce": NONCE_MARKER, "accountId": "123456789012", "data": job_data(CUSTOM)}]},
    )
    stubber.add_response("acknowledge_job", {"status": "InProgress"}, {"jobId": JOB, "nonce": NONCE_MARKER})
    stubber.add_response("acknowledge_third_party_job", {"status": "InProgress"})
    service = make_service(client, settings=make_settings(**CUSTOM_ONLY))

    polled = lambda_handler(load_event("scheduled.json"), lambda_context, service=service)
    # A partner job without clientId is claimed as before: only the work side needs the clientId
    direct = lambda_handler(load_event("partner-job.json"), lambda_context, service=service)

    assert polled["results"] == [
        {
            "jobId": JOB,
            "jobType": "custom",
            "outcome": "acknowledged",
            "status": "InProgress",
            "actionType": "Custom/Build/MyTool/1",
        }
    ]
    assert polled["counts"] == {"total": 1, "acknowledged": 1, "notClaimed": 0, "conflict": 0, "failed": 0}
    assert "handoff" not in direct
    assert sqs_calls == []


def test_the_default_service_has_a_queue_only_when_job_queue_url_is_set() -> None:
    from codepipeline_worker.acknowledger.service import create_work_queue

    assert create_work_queue(make_settings()) is None
    queue = create_work_queue(make_settings(JOB_QUEUE_URL=QUEUE_URL, ACK_CONCURRENCY="24"))
    assert queue is not None
    assert queue.url == QUEUE_URL
    config: Any = queue._client.meta.config  # botocore-stubs does not declare the options
    assert config.max_pool_connections == 24
    assert (config.connect_timeout, config.read_timeout) == (2, 5)


def test_a_polled_job_whose_context_does_not_fit_is_queued_with_its_ids(
    codepipeline: Stubbed, sqs: StubbedQueue, lambda_context: FakeLambdaContext
) -> None:
    client, stubber = codepipeline
    sqs_client, sqs_stubber = sqs
    data = job_data(CUSTOM)
    data["inputArtifacts"] = [{"name": "not an artifact name!"}]
    stubber.add_response(
        "poll_for_jobs", {"jobs": [{"id": JOB, "nonce": "n", "accountId": "123456789012", "data": data}]}
    )
    stubber.add_response("acknowledge_job", {"status": "InProgress"}, {"jobId": JOB, "nonce": "n"})
    # The job is still claimed and queued: the work side reads the context from its details
    sqs_stubber.add_response(
        "send_message",
        {"MessageId": "m-1"},
        {"QueueUrl": QUEUE_URL, "MessageBody": body(version=1, jobId=JOB, jobType="custom")},
    )
    service = make_service(client, settings=make_settings(**CUSTOM_ONLY), queue=WorkQueue(sqs_client, QUEUE_URL))

    result = lambda_handler(load_event("scheduled.json"), lambda_context, service=service)

    assert [(r["outcome"], r["handoff"]) for r in result["results"]] == [("acknowledged", "queued")]


def test_the_service_built_from_settings_hands_off_to_job_queue_url(
    secrets: StubbedSecrets, monkeypatch: pytest.MonkeyPatch, emitted: Callable[[], str]
) -> None:
    from codepipeline_worker.acknowledger.service import JobService
    from codepipeline_worker.shared import tokens as service_module

    sm_client, sm_stubber = secrets
    sm_stubber.add_client_error("get_secret_value", "ThrottlingException", http_status_code=400)
    monkeypatch.setattr(service_module, "create_client_token_store", lambda _settings: token_store(sm_client))

    built = JobService.from_settings(make_settings(JOB_QUEUE_URL=QUEUE_URL, CLIENT_TOKEN_SECRET_ID=SECRET_ID))

    assert built._queue is not None
    assert built._queue.url == QUEUE_URL
    assert "client-token secret not readable at cold start" in emitted()
