"""The hand-off: a claimed job goes to the (FIFO) work queue as one message holding ids and context, never a
secret. The queue certainly refusing it fails it back at once; a send whose outcome is unknown, or a claim whose
answer was lost, is recorded in the job table, and the reconciler settles it at the next poll. A direct event's
claim writes nothing to the table on its way; a polled job's claim is written before it (only the poll knows its
nonce)."""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING, Any

import pytest

from codepipeline_worker.acknowledger.handler import lambda_handler
from codepipeline_worker.shared.adapter import HANDOFF_INDEX, HANDOFF_PARTITION
from codepipeline_worker.shared.errors import HandoffPending, JobError
from codepipeline_worker.shared.messages import JobMessage
from tests.conftest import emitted_metrics, load_event
from tests.unit.conftest import (
    CLIENT_ID,
    CLIENT_TOKEN,
    CUSTOM,
    PARTNER,
    QUEUE_URL,
    SECRET_ID,
    TABLE,
    handoffs,
    make_service,
    make_settings,
    record_requests,
    secret_response,
    token_store,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from botocore.stub import Stubber

    from codepipeline_worker.shared.models import JobType
    from tests.conftest import FakeLambdaContext
    from tests.unit.conftest import Stubbed, StubbedQueue, StubbedSecrets, StubbedTable

pytestmark = pytest.mark.usefixtures("clean_metrics")

CUSTOM_ONLY = {"ACTION_TYPES": "Custom/Build/MyTool/1"}
PARTNER_ONLY = {"ACTION_TYPES": "ThirdParty/Deploy/PartnerTool/2"}
JOB = "11111111-abcd-4bcd-8bcd-0123456789ab"
DIRECT = "11111111-abcd-1111-abcd-111111abcdef"  # events/custom-job.json
JOB_2 = "22222222-abcd-4bcd-8bcd-0123456789ab"
JOB_3 = "33333333-abcd-4bcd-8bcd-0123456789ab"
JOB_4 = "44444444-abcd-4bcd-8bcd-0123456789ab"
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


class _AnyNumber(dict[str, str]):
    """Stands for any DynamoDB number value in expected parameters (the time, in a query)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, dict) and set(other) == {"N"}

    __hash__ = None


ANY_NOW = _AnyNumber()


def ANY_LEASE(key: str) -> dict[str, Any]:  # noqa: N802 - reads as a constant where it is used
    """UpdateItem's request that leases the record `key` to this invocation, whatever its lease."""
    return {
        "TableName": TABLE,
        "Key": {"id": {"S": key}},
        "UpdateExpression": "SET #lease = :lease",
        "ConditionExpression": "#lease = :seen",
        "ExpressionAttributeNames": {"#lease": "lease"},
        "ExpressionAttributeValues": {":lease": ANY_NOW, ":seen": {"N": "0"}},
    }


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


def sent_to(job_id: str, job_type: JobType, message_body: str) -> dict[str, Any]:
    """SendMessage's exact request on the FIFO work queue: the job's hash as its group and deduplication id."""
    dedup = JobMessage(
        job_id=job_id, job_type=job_type, client_id=CLIENT_ID if job_type == "thirdParty" else None
    ).dedup_id
    return {
        "QueueUrl": QUEUE_URL,
        "MessageBody": message_body,
        "MessageGroupId": dedup,
        "MessageDeduplicationId": dedup,
    }


def batch_of(*sends: dict[str, Any]) -> dict[str, Any]:
    """SendMessageBatch's exact request: each SendMessage request (`sent_to`) as an entry, its Id its index."""
    entries = [{"Id": str(n), **{k: v for k, v in send.items() if k != "QueueUrl"}} for n, send in enumerate(sends)]
    return {"QueueUrl": QUEUE_URL, "Entries": entries}


def batch_answer(count: int, failed: dict[int, str] | None = None, *, unnamed: tuple[int, ...] = ()) -> dict[str, Any]:
    """SQS's answer to a batch of `count`: each entry successful, but those `failed` names (index: error code),
    and those `unnamed`, in neither list."""
    failed = failed or {}
    return {
        "Successful": [
            {"Id": str(n), "MessageId": f"m-{n}", "MD5OfMessageBody": "0" * 32}
            for n in range(count)
            if n not in failed and n not in unnamed
        ],
        "Failed": [{"Id": str(n), "SenderFault": False, "Code": code} for n, code in failed.items()],
    }


def nothing_stale(table: Stubber) -> None:
    """The reconciler's look at the job table, at the start of a poll: no record left by earlier invocations."""
    table.add_response("query", {"Items": []})


def written(table: Stubber) -> None:
    table.add_response("batch_write_item", {"UnprocessedItems": {}})


def items(requests: list[tuple[str, dict[str, Any]]], operation: str) -> list[dict[str, Any]]:
    """The items put by every `operation` request (BatchWriteItem or PutItem), each as plain values."""
    found = []
    for name, params in requests:
        if name != operation:
            continue
        puts = (
            [params["Item"]]
            if operation == "PutItem"
            else [r["PutRequest"]["Item"] for r in params["RequestItems"][TABLE] if "PutRequest" in r]
        )
        found += [{k: next(iter(v.values())) for k, v in item.items()} for item in puts]
    return found


def own_key(job_type: str, job_id: str, key: str) -> bool:
    """Whether `key` is a record of this job's own: `handoff#<type>#<jobId>#` and the record's random id, so that
    no other invocation's record of the job shares it."""
    return re.fullmatch(rf"handoff#{job_type}#{re.escape(job_id)}#[0-9a-f]{{32}}", key) is not None


def deleted(requests: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [
        r["DeleteRequest"]["Key"]["id"]["S"]
        for name, params in requests
        if name == "BatchWriteItem"
        for r in params["RequestItems"][TABLE]
        if "DeleteRequest" in r
    ]


# -- a job handed off ---------------------------------------------------------------------------------------


def test_a_polled_job_is_recorded_claimed_queued_and_its_record_deleted(
    codepipeline: Stubbed, sqs: StubbedQueue, dynamodb: StubbedTable, lambda_context: FakeLambdaContext
) -> None:
    client, stubber = codepipeline
    sqs_client, sqs_stubber = sqs
    table, table_stubber = dynamodb
    sent = record_requests(sqs_client)
    table_calls = record_requests(table)
    # Given a poll whose job data holds credentials, a secret configuration and an encryption key
    nothing_stale(table_stubber)
    stubber.add_response(
        "poll_for_jobs",
        {"jobs": [{"id": JOB, "nonce": NONCE_MARKER, "accountId": "123456789012", "data": job_data(CUSTOM)}]},
        {"actionTypeId": CUSTOM, "maxBatchSize": 25},
    )
    written(table_stubber)
    stubber.add_response("acknowledge_job", {"status": "InProgress"}, {"jobId": JOB, "nonce": NONCE_MARKER})
    expected = context_body(JOB, "custom", CUSTOM, accountId="123456789012")
    sqs_stubber.add_response("send_message_batch", batch_answer(1), batch_of(sent_to(JOB, "custom", expected)))
    written(table_stubber)
    service = make_service(client, settings=make_settings(**CUSTOM_ONLY), handoffs=handoffs(sqs_client, table))

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
        "handoffPending": 0,
        "handoffFailed": 0,
    }
    assert result["reconciled"] == {"found": 0, "queued": 0, "dropped": 0, "pending": 0, "skipped": 0}
    assert [operation for operation, _ in sent] == ["SendMessageBatch"]
    message = json.loads(sent[0][1]["Entries"][0]["MessageBody"])
    for absent in ("nonce", "clientToken", "artifactCredentials", "actionConfiguration", "configuration"):
        assert absent not in message
    assert_no_marker(sent)
    # And before the claim, a record held the job with its nonce (only the poll knows it), leased to this
    # invocation; after the hand-off, it was deleted
    [record] = items(table_calls, "BatchWriteItem")
    assert own_key("custom", JOB, record["id"])
    assert (record["state"], record["nonce"], record["pending"]) == ("claiming", NONCE_MARKER, HANDOFF_PARTITION)
    assert int(record["lease"]) > (time.time() + 170) * 1000
    assert json.loads(record["message"]) == json.loads(expected)
    assert_no_marker([(n, {k: v for k, v in p.items() if k != "RequestItems"}) for n, p in table_calls])
    assert deleted(table_calls) == [record["id"]]


def test_a_direct_job_costs_the_claim_and_the_send_only(
    codepipeline: Stubbed, sqs: StubbedQueue, dynamodb: StubbedTable, lambda_context: FakeLambdaContext
) -> None:
    client, stubber = codepipeline
    sqs_client, sqs_stubber = sqs
    table, _ = dynamodb
    table_calls = record_requests(table)
    stubber.add_response("acknowledge_job", {"status": "InProgress"}, {"jobId": DIRECT, "nonce": "3"})
    sqs_stubber.add_response(
        "send_message",
        {"MessageId": "m-1"},
        sent_to(DIRECT, "custom", body(version=1, jobId=DIRECT, jobType="custom")),
    )
    service = make_service(client, handoffs=handoffs(sqs_client, table))

    result = lambda_handler(load_event("custom-job.json"), lambda_context, service=service)

    assert result == {
        "jobId": DIRECT,
        "jobType": "custom",
        "outcome": "acknowledged",
        "status": "InProgress",
        "handoff": "queued",
    }
    assert table_calls == []  # the event, which Lambda delivers again if the process dies, is the record


def test_a_direct_partner_job_is_queued_with_its_client_id(
    codepipeline: Stubbed, sqs: StubbedQueue, dynamodb: StubbedTable, lambda_context: FakeLambdaContext
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
        sent_to(
            PARTNER_JOB, "thirdParty", body(version=1, jobId=PARTNER_JOB, jobType="thirdParty", clientId=CLIENT_ID)
        ),
    )
    service = make_service(client, handoffs=handoffs(sqs_client, dynamodb[0]))

    result = lambda_handler(event, lambda_context, service=service)

    assert result["handoff"] == "queued"
    assert_no_marker(sent)


def test_a_polled_partner_job_is_recorded_without_a_nonce_and_queued_from_its_details(
    codepipeline: Stubbed,
    secrets: StubbedSecrets,
    sqs: StubbedQueue,
    dynamodb: StubbedTable,
    lambda_context: FakeLambdaContext,
) -> None:
    client, stubber = codepipeline
    sm_client, sm_stubber = secrets
    sqs_client, sqs_stubber = sqs
    table, table_stubber = dynamodb
    sent = record_requests(sqs_client)
    table_calls = record_requests(table)
    nothing_stale(table_stubber)
    stubber.add_response(
        "poll_for_third_party_jobs",
        {"jobs": [{"jobId": PARTNER_JOB, "clientId": CLIENT_ID}]},
        {"actionTypeId": PARTNER, "maxBatchSize": 25},
    )
    written(table_stubber)
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
    sqs_stubber.add_response(
        "send_message_batch", batch_answer(1), batch_of(sent_to(PARTNER_JOB, "thirdParty", expected))
    )
    written(table_stubber)
    service = make_service(
        client,
        token_store(sm_client),
        make_settings(**PARTNER_ONLY, CLIENT_TOKEN_SECRET_ID=SECRET_ID),
        handoffs=handoffs(sqs_client, table),
    )

    result = lambda_handler(load_event("scheduled.json"), lambda_context, service=service)

    assert [(r["outcome"], r["handoff"]) for r in result["results"]] == [("acknowledged", "queued")]
    assert_no_marker(sent)
    [record] = items(table_calls, "BatchWriteItem")
    assert (record["state"], record["clientId"], "nonce" in record) == ("claiming", CLIENT_ID, False)
    assert CLIENT_TOKEN not in json.dumps(table_calls)


def test_a_polled_job_whose_context_does_not_fit_is_queued_with_its_ids(
    codepipeline: Stubbed, sqs: StubbedQueue, dynamodb: StubbedTable, lambda_context: FakeLambdaContext
) -> None:
    client, stubber = codepipeline
    sqs_client, sqs_stubber = sqs
    table, table_stubber = dynamodb
    data = job_data(CUSTOM)
    data["inputArtifacts"] = [{"name": "not an artifact name!"}]
    nothing_stale(table_stubber)
    stubber.add_response(
        "poll_for_jobs", {"jobs": [{"id": JOB, "nonce": "n", "accountId": "123456789012", "data": data}]}
    )
    written(table_stubber)
    stubber.add_response("acknowledge_job", {"status": "InProgress"}, {"jobId": JOB, "nonce": "n"})
    # The job is still claimed and queued: the work side reads the context from its details
    sqs_stubber.add_response(
        "send_message_batch",
        batch_answer(1),
        batch_of(sent_to(JOB, "custom", body(version=1, jobId=JOB, jobType="custom"))),
    )
    written(table_stubber)
    service = make_service(client, settings=make_settings(**CUSTOM_ONLY), handoffs=handoffs(sqs_client, table))

    result = lambda_handler(load_event("scheduled.json"), lambda_context, service=service)

    assert [(r["outcome"], r["handoff"]) for r in result["results"]] == [("acknowledged", "queued")]


# -- the queue refuses, or its answer is lost ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status"), [("KmsAccessDenied", 400), ("AccessDenied", 403), ("RequestThrottled", 400)]
)
def test_a_job_the_queue_certainly_refused_is_failed_back(  # noqa: PLR0917 - its fixtures
    code: str,
    status: int,
    codepipeline: Stubbed,
    sqs: StubbedQueue,
    dynamodb: StubbedTable,
    lambda_context: FakeLambdaContext,
    emitted: Callable[[], str],
) -> None:
    client, stubber = codepipeline
    sqs_client, sqs_stubber = sqs
    stubber.add_response("acknowledge_job", {"status": "InProgress"}, {"jobId": DIRECT, "nonce": "3"})
    sqs_stubber.add_client_error("send_message", code, "denied", status)
    stubber.add_response("put_job_failure_result", {}, {"jobId": DIRECT, "failureDetails": failure_report(code)})
    service = make_service(client, handoffs=handoffs(sqs_client, dynamodb[0]))

    result = lambda_handler(load_event("custom-job.json"), lambda_context, service=service)

    assert result == {
        "jobId": DIRECT,
        "jobType": "custom",
        "outcome": "acknowledged",
        "status": "InProgress",
        "handoff": "failedBack",
        "handoffError": code,
    }
    assert "hand-off refused: the job was failed back to CodePipeline" in emitted()


@pytest.mark.parametrize(("code", "status"), [("InternalError", 500), ("ServiceUnavailable", 503)])
def test_a_send_whose_outcome_is_unknown_is_recorded_not_failed_back(  # noqa: PLR0917 - its fixtures
    code: str,
    status: int,
    codepipeline: Stubbed,
    sqs: StubbedQueue,
    dynamodb: StubbedTable,
    lambda_context: FakeLambdaContext,
    emitted: Callable[[], str],
) -> None:
    client, stubber = codepipeline
    sqs_client, sqs_stubber = sqs
    table, table_stubber = dynamodb
    table_calls = record_requests(table)
    # Given the queue answers 5xx: the message may have been stored
    stubber.add_response("acknowledge_job", {"status": "InProgress"}, {"jobId": DIRECT, "nonce": "3"})
    sqs_stubber.add_client_error("send_message", code, "try later", status)
    table_stubber.add_response("put_item", {})
    service = make_service(client, handoffs=handoffs(sqs_client, table))

    # When the direct event is handled
    result = lambda_handler(load_event("custom-job.json"), lambda_context, service=service)

    # Then the job is not failed back (no PutJobFailureResult is stubbed): a `claimed` record, free to settle at
    # once, holds its message for the reconciler; the event returns, holding its nonce out of any failure record
    assert (result["handoff"], result["handoffError"]) == ("pending", code)
    [record] = items(table_calls, "PutItem")
    assert own_key("custom", DIRECT, record["id"])
    assert (record["state"], record["lease"]) == ("claimed", "0")
    assert "nonce" not in record
    assert json.loads(record["message"]) == {"version": 1, "jobId": DIRECT, "jobType": "custom"}
    assert emitted_metrics(emitted())["HandoffsPending"] == 1.0


def test_a_refused_job_whose_failure_report_fails_is_recorded(
    codepipeline: Stubbed, sqs: StubbedQueue, dynamodb: StubbedTable, lambda_context: FakeLambdaContext
) -> None:
    client, stubber = codepipeline
    sqs_client, sqs_stubber = sqs
    table, table_stubber = dynamodb
    stubber.add_response("acknowledge_job", {"status": "InProgress"})
    sqs_stubber.add_client_error("send_message", "KmsThrottled", "slow down", 400)
    stubber.add_client_error(
        "put_job_failure_result",
        "ThrottlingException",
        expected_params={"jobId": DIRECT, "failureDetails": failure_report("KmsThrottled")},
    )
    table_stubber.add_response("put_item", {})
    service = make_service(client, handoffs=handoffs(sqs_client, table))

    result = lambda_handler(load_event("custom-job.json"), lambda_context, service=service)

    # The error kept is the queue's: the reason the job was not handed off
    assert (result["handoff"], result["handoffError"]) == ("pending", "KmsThrottled")


def test_a_job_neither_queued_failed_back_nor_recorded_is_lost(
    codepipeline: Stubbed,
    sqs: StubbedQueue,
    dynamodb: StubbedTable,
    lambda_context: FakeLambdaContext,
    emitted: Callable[[], str],
) -> None:
    client, stubber = codepipeline
    sqs_client, sqs_stubber = sqs
    table, table_stubber = dynamodb
    stubber.add_response("acknowledge_job", {"status": "InProgress"})
    sqs_stubber.add_client_error("send_message", "InternalError", "oops", 500)
    table_stubber.add_client_error("put_item", "InternalServerError", "oops", 500)
    service = make_service(client, handoffs=handoffs(sqs_client, table))

    result = lambda_handler(load_event("custom-job.json"), lambda_context, service=service)

    assert (result["handoff"], result["handoffError"]) == ("lost", "InternalError")
    output = emitted()
    assert "the hand-off record could not be written" in output
    assert emitted_metrics(output)["HandoffFailures"] == 1.0


def test_a_claim_whose_answer_was_lost_is_recorded_with_its_nonce(
    codepipeline: Stubbed, sqs: StubbedQueue, dynamodb: StubbedTable, lambda_context: FakeLambdaContext
) -> None:
    client, stubber = codepipeline
    sqs_client, _ = sqs
    table, table_stubber = dynamodb
    table_calls = record_requests(table)
    stubber.add_client_error("acknowledge_job", "InternalFailure", "oops", 500)
    table_stubber.add_response("put_item", {})
    service = make_service(client, handoffs=handoffs(sqs_client, table))

    result = lambda_handler(load_event("custom-job.json"), lambda_context, service=service)

    # Whether CodePipeline holds the job is unknown: the nonce asks it at the next poll (AcknowledgeJob answers
    # a nonce's job's status), and nothing is sent until then
    assert (result["outcome"], result["error"], result["handoff"]) == ("failed", "InternalFailure", "pending")
    [record] = items(table_calls, "PutItem")
    assert (record["state"], record["nonce"], record["lease"]) == ("claiming", "3", "0")


def test_a_poll_with_a_pending_hand_off_fails_after_recording_its_results(
    codepipeline: Stubbed,
    sqs: StubbedQueue,
    dynamodb: StubbedTable,
    lambda_context: FakeLambdaContext,
    emitted: Callable[[], str],
) -> None:
    client, stubber = codepipeline
    sqs_client, sqs_stubber = sqs
    table, table_stubber = dynamodb
    table_calls = record_requests(table)
    nothing_stale(table_stubber)
    stubber.add_response(
        "poll_for_jobs",
        {"jobs": [{"id": j, "nonce": "n", "accountId": "123456789012", "data": {}} for j in (JOB, JOB_2)]},
    )
    written(table_stubber)
    stubber.add_response("acknowledge_job", {"status": "InProgress"}, {"jobId": JOB, "nonce": "n"})
    stubber.add_response("acknowledge_job", {"status": "InProgress"}, {"jobId": JOB_2, "nonce": "n"})

    def polled_body(job_id: str) -> str:
        return JobMessage.from_job_data(job_id, "custom", {}, account_id="123456789012").to_body()

    # the second job's entry refused, and its failure report failed too: its hand-off is pending
    sqs_stubber.add_response(
        "send_message_batch",
        batch_answer(2, {1: "KmsThrottled"}),
        batch_of(sent_to(JOB, "custom", polled_body(JOB)), sent_to(JOB_2, "custom", polled_body(JOB_2))),
    )
    stubber.add_client_error("put_job_failure_result", "ThrottlingException")
    written(table_stubber)
    written(table_stubber)
    service = make_service(client, settings=make_settings(**CUSTOM_ONLY), handoffs=handoffs(sqs_client, table))

    # When the schedule fires and one job is neither queued nor failed back
    with pytest.raises(HandoffPending) as caught:
        lambda_handler(load_event("scheduled.json"), lambda_context, service=service)

    # Then the invocation fails (the alarm fires; Lambda's retry, a poll, settles it), after its metrics and its
    # summary were recorded; the queued job's record is deleted, the pending one's kept
    assert str(caught.value).startswith("1 hand-off(s) pending in the job table, 0 lost")
    output = emitted()
    metrics = emitted_metrics(output)
    assert (metrics["JobsQueued"], metrics["HandoffsPending"], metrics["JobsAcknowledged"]) == (1.0, 1.0, 2.0)
    assert '"message":"jobs done"' in output
    [first, second, pending] = items(table_calls, "BatchWriteItem")
    written_before = {r["jobId"]: r["id"] for r in (first, second)}
    assert deleted(table_calls) == [written_before[JOB]]
    # the pending job's record rewritten, under its own key: `claimed`, free to settle at once
    assert (pending["id"], pending["state"], pending["lease"]) == (written_before[JOB_2], "claimed", "0")


def test_a_batch_counts_queued_refused_and_pending_hand_offs(
    codepipeline: Stubbed, sqs: StubbedQueue, dynamodb: StubbedTable, lambda_context: FakeLambdaContext
) -> None:
    client, stubber = codepipeline
    sqs_client, sqs_stubber = sqs
    table, table_stubber = dynamodb
    # Given four jobs: queued, certainly refused by the queue, its answer lost, and not claimed
    stubber.add_response("acknowledge_job", {"status": "InProgress"}, {"jobId": JOB, "nonce": "1"})
    sqs_stubber.add_response(
        "send_message", {"MessageId": "m-1"}, sent_to(JOB, "custom", body(version=1, jobId=JOB, jobType="custom"))
    )
    stubber.add_response("acknowledge_job", {"status": "InProgress"}, {"jobId": JOB_2, "nonce": "2"})
    sqs_stubber.add_client_error(
        "send_message",
        "KmsDisabled",
        expected_params=sent_to(JOB_2, "custom", body(version=1, jobId=JOB_2, jobType="custom")),
    )
    stubber.add_response(
        "put_job_failure_result", {}, {"jobId": JOB_2, "failureDetails": failure_report("KmsDisabled")}
    )
    stubber.add_response("acknowledge_job", {"status": "InProgress"}, {"jobId": JOB_3, "nonce": "3"})
    sqs_stubber.add_client_error(
        "send_message",
        "InternalError",
        http_status_code=500,
        expected_params=sent_to(JOB_3, "custom", body(version=1, jobId=JOB_3, jobType="custom")),
    )
    table_stubber.add_response("put_item", {})
    stubber.add_response("acknowledge_job", {"status": "TimedOut"}, {"jobId": JOB_4, "nonce": "4"})
    service = make_service(client, handoffs=handoffs(sqs_client, table))
    jobs = [{"jobId": j, "nonce": str(n)} for n, j in enumerate((JOB, JOB_2, JOB_3, JOB_4), start=1)]

    # A batch carries nonces: it returns, pending hand-off or not, and its results say which
    result = lambda_handler({"jobs": jobs}, lambda_context, service=service)

    assert [(r["outcome"], r.get("handoff")) for r in result["results"]] == [
        ("acknowledged", "queued"),
        ("acknowledged", "failedBack"),
        ("acknowledged", "pending"),
        ("notClaimed", None),
    ]
    assert result["counts"] == {
        "total": 4,
        "acknowledged": 3,
        "notClaimed": 1,
        "conflict": 0,
        "failed": 0,
        "queued": 1,
        "handoffPending": 1,
        "handoffFailed": 1,
    }


def test_records_that_cannot_be_written_leave_the_polled_jobs_unclaimed(
    codepipeline: Stubbed, sqs: StubbedQueue, dynamodb: StubbedTable, lambda_context: FakeLambdaContext
) -> None:
    client, stubber = codepipeline
    sqs_client, _ = sqs
    table, table_stubber = dynamodb
    nothing_stale(table_stubber)
    stubber.add_response("poll_for_jobs", {"jobs": [{"id": JOB, "nonce": "n", "data": {}}]})
    table_stubber.add_client_error("batch_write_item", "AccessDeniedException", http_status_code=400)
    service = make_service(client, settings=make_settings(**CUSTOM_ONLY), handoffs=handoffs(sqs_client, table))

    # No AcknowledgeJob is stubbed: the job is not claimed, and CodePipeline dispatches it again. No call got
    # through to a job: the poll fails, so that the alarm fires
    with pytest.raises(JobError) as caught:
        lambda_handler(load_event("scheduled.json"), lambda_context, service=service)

    assert type(caught.value).__name__ == "AccessDeniedException"


def test_a_partner_job_without_client_id_is_refused_before_any_call(
    codepipeline: Stubbed, sqs: StubbedQueue, dynamodb: StubbedTable, lambda_context: FakeLambdaContext
) -> None:
    client, _ = codepipeline
    sqs_client, _ = sqs
    codepipeline_calls = record_requests(client)
    sqs_calls = record_requests(sqs_client)
    service = make_service(client, handoffs=handoffs(sqs_client, dynamodb[0]))

    # Given the example partner events without their clientId
    with_token, token_only = (without_client_id(n) for n in ("partner-job.json", "partner-job-token-only.json"))

    single = lambda_handler(with_token, lambda_context, service=service)
    result = lambda_handler({"jobs": [with_token, token_only]}, lambda_context, service=service)

    assert (single["outcome"], single["error"]) == ("failed", "ClientIdRequired")
    assert "needs its clientId" in single["reason"]
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
    direct = lambda_handler(without_client_id("partner-job.json"), lambda_context, service=service)

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
    assert "reconciled" not in polled
    assert "handoff" not in direct
    assert sqs_calls == []


def test_the_default_service_hands_off_only_when_job_queue_url_is_set() -> None:
    from codepipeline_worker.acknowledger.service import create_handoffs

    assert create_handoffs(make_settings()) is None
    built = create_handoffs(make_settings(JOB_QUEUE_URL=QUEUE_URL, ACK_CONCURRENCY="24"))
    assert built is not None
    assert (built.queue.url, built.queue.fifo, built.ledger.table_name) == (QUEUE_URL, True, TABLE)
    # The table's client is made at its first use: a direct job's cold start never reaches the table
    assert built.ledger._client._client is None  # type: ignore[attr-defined]
    for client in (built.queue._client, built.ledger._client):
        config: Any = client.meta.config  # botocore-stubs does not declare the options
        assert config.max_pool_connections == 24
        assert (config.connect_timeout, config.read_timeout) == (1, 2)
    assert built.ledger._client._client is not None  # type: ignore[attr-defined]


def test_the_service_built_from_settings_hands_off_to_job_queue_url(
    secrets: StubbedSecrets, monkeypatch: pytest.MonkeyPatch, emitted: Callable[[], str]
) -> None:
    from codepipeline_worker.acknowledger.service import JobService
    from codepipeline_worker.shared import tokens as service_module

    sm_client, sm_stubber = secrets
    sm_stubber.add_client_error("get_secret_value", "ThrottlingException", http_status_code=400)
    monkeypatch.setattr(service_module, "create_client_token_store", lambda _settings: token_store(sm_client))

    built = JobService.from_settings(make_settings(JOB_QUEUE_URL=QUEUE_URL, CLIENT_TOKEN_SECRET_ID=SECRET_ID))

    assert built._handoffs is not None
    assert built._handoffs.queue.url == QUEUE_URL
    assert "client-token secret not readable at cold start" in emitted()


# -- the reconciler ------------------------------------------------------------------------------------------


def stale(state: str, job_id: str = JOB, job_type: JobType = "custom", **extra: str) -> dict[str, Any]:
    """A record an earlier invocation left, as the index answers it."""
    message = JobMessage(
        job_id=job_id, job_type=job_type, client_id=CLIENT_ID if job_type == "thirdParty" else None
    ).to_body()
    item = {
        "id": f"handoff#{job_type}#{job_id}",
        "pending": HANDOFF_PARTITION,
        "lease": "0",
        "state": state,
        "jobId": job_id,
        "jobType": job_type,
        "message": message,
        "expiration": "4102444800",
        **extra,
    }
    if job_type == "thirdParty":
        item["clientId"] = CLIENT_ID
    return {key: ({"N": value} if key in ("lease", "expiration") else {"S": value}) for key, value in item.items()}


def reconcile(
    client: Any,
    sqs_client: Any,
    table: Any,
    lambda_context: FakeLambdaContext,
    tokens: Any = None,
) -> dict[str, Any]:
    """A scheduled poll of an action type with nothing queued: only the reconciler has work."""
    service = make_service(client, tokens, make_settings(**CUSTOM_ONLY), handoffs=handoffs(sqs_client, table))
    try:
        result: dict[str, Any] = lambda_handler(load_event("scheduled.json"), lambda_context, service=service)
    except HandoffPending as pending:
        return {"raised": str(pending)}
    return result


def test_the_reconciler_sends_a_claimed_jobs_message_again_and_deletes_its_record(
    codepipeline: Stubbed, sqs: StubbedQueue, dynamodb: StubbedTable, lambda_context: FakeLambdaContext
) -> None:
    client, stubber = codepipeline
    sqs_client, sqs_stubber = sqs
    table, table_stubber = dynamodb
    table_calls = record_requests(table)
    table_stubber.add_response(
        "query",
        {"Items": [stale("claimed")]},
        {
            "TableName": TABLE,
            "IndexName": HANDOFF_INDEX,
            "KeyConditionExpression": "#pending = :pending AND #lease < :now",
            "ExpressionAttributeNames": {"#pending": "pending", "#lease": "lease"},
            "ExpressionAttributeValues": {":pending": {"S": HANDOFF_PARTITION}, ":now": ANY_NOW},
            "Limit": 100,
        },
    )
    stubber.add_response("poll_for_jobs", {"jobs": []})
    table_stubber.add_response("update_item", {})
    sqs_stubber.add_response(
        "send_message", {"MessageId": "m"}, sent_to(JOB, "custom", body(version=1, jobId=JOB, jobType="custom"))
    )
    table_stubber.add_response("delete_item", {}, {"TableName": TABLE, "Key": {"id": {"S": f"handoff#custom#{JOB}"}}})

    result = reconcile(client, sqs_client, table, lambda_context)

    assert result["reconciled"] == {"found": 1, "queued": 1, "dropped": 0, "pending": 0, "skipped": 0}
    [(_, lease)] = [(n, p) for n, p in table_calls if n == "UpdateItem"]
    assert lease["ConditionExpression"] == "#lease = :seen"  # taken from the invocation that left it, or not at all


@pytest.mark.parametrize("state", ["claimed", "claiming"])
def test_the_reconciler_never_fails_back_a_job_whose_resend_the_queue_refuses(  # noqa: PLR0917 - its fixtures
    state: str,
    codepipeline: Stubbed,
    sqs: StubbedQueue,
    dynamodb: StubbedTable,
    lambda_context: FakeLambdaContext,
    emitted: Callable[[], str],
) -> None:
    """An earlier send of a record's job may have landed (its answer lost, or its invocation killed after it):
    failing the job back would let that copy's work run after CodePipeline failed the job. The record is released
    for the next poll instead, as `claimed`, its nonce dropped; no failure report is made (the stubber would
    refuse it)."""
    client, stubber = codepipeline
    sqs_client, sqs_stubber = sqs
    table, table_stubber = dynamodb
    table_calls = record_requests(table)
    table_stubber.add_response("query", {"Items": [stale(state, nonce="n-1") if state == "claiming" else stale(state)]})
    stubber.add_response("poll_for_jobs", {"jobs": []})
    table_stubber.add_response("update_item", {})
    if state == "claiming":
        stubber.add_response("acknowledge_job", {"status": "InProgress"}, {"jobId": JOB, "nonce": "n-1"})
    sqs_stubber.add_client_error("send_message", "KmsAccessDenied", http_status_code=400)
    table_stubber.add_response("put_item", {})

    result = reconcile(client, sqs_client, table, lambda_context)

    assert "pending" in result["raised"]  # the poll fails: Lambda's retry, a poll, tries it again
    [(_, released)] = [(n, p) for n, p in table_calls if n == "PutItem"]
    assert released["Item"]["state"] == {"S": "claimed"}
    assert released["Item"]["lease"] == {"N": "0"}
    assert "nonce" not in released["Item"]
    assert "the job is not failed back" in emitted()


@pytest.mark.parametrize(
    ("answer", "settled"),
    [
        ({"status": "InProgress"}, "queued"),
        ({"status": "Succeeded"}, "dropped"),
        ("InvalidNonceException", "dropped"),
        ("JobNotFoundException", "dropped"),
    ],
)
def test_the_reconciler_asks_codepipeline_with_the_nonce_whether_a_claim_happened(  # noqa: PLR0917 - its fixtures
    answer: Any,
    settled: str,
    codepipeline: Stubbed,
    sqs: StubbedQueue,
    dynamodb: StubbedTable,
    lambda_context: FakeLambdaContext,
) -> None:
    client, stubber = codepipeline
    sqs_client, sqs_stubber = sqs
    table, table_stubber = dynamodb
    table_stubber.add_response("query", {"Items": [stale("claiming", nonce="n-1")]})
    stubber.add_response("poll_for_jobs", {"jobs": []})
    table_stubber.add_response("update_item", {})
    if isinstance(answer, dict):
        stubber.add_response("acknowledge_job", answer, {"jobId": JOB, "nonce": "n-1"})
    else:
        stubber.add_client_error("acknowledge_job", answer, http_status_code=400)
    if settled == "queued":
        sqs_stubber.add_response(
            "send_message", {"MessageId": "m"}, sent_to(JOB, "custom", body(version=1, jobId=JOB, jobType="custom"))
        )
    table_stubber.add_response("delete_item", {})

    result = reconcile(client, sqs_client, table, lambda_context)

    assert result["reconciled"][settled] == 1


@pytest.mark.parametrize(("details_nonce", "claim"), [("n-2", True), (None, False)])
def test_the_reconciler_asks_a_partner_jobs_details_whether_it_is_claimed(  # noqa: PLR0917 - the fixtures
    details_nonce: str | None,
    claim: bool,
    codepipeline: Stubbed,
    secrets: StubbedSecrets,
    sqs: StubbedQueue,
    dynamodb: StubbedTable,
    lambda_context: FakeLambdaContext,
) -> None:
    client, stubber = codepipeline
    sm_client, sm_stubber = secrets
    sqs_client, sqs_stubber = sqs
    table, table_stubber = dynamodb
    sm_stubber.add_response("get_secret_value", secret_response({CLIENT_ID: CLIENT_TOKEN}))
    table_stubber.add_response("query", {"Items": [stale("claiming", PARTNER_JOB, "thirdParty")]})
    stubber.add_response("poll_for_jobs", {"jobs": []})
    table_stubber.add_response("update_item", {})
    details: dict[str, Any] = {"id": PARTNER_JOB}
    if details_nonce:
        details["nonce"] = details_nonce
    stubber.add_response("get_third_party_job_details", {"jobDetails": details})
    if claim:  # still waiting to be claimed: it is claimed now, with the nonce the details gave
        stubber.add_response(
            "acknowledge_third_party_job",
            {"status": "InProgress"},
            {"jobId": PARTNER_JOB, "nonce": details_nonce, "clientToken": CLIENT_TOKEN},
        )
    sqs_stubber.add_response(
        "send_message",
        {"MessageId": "m"},
        sent_to(
            PARTNER_JOB, "thirdParty", body(version=1, jobId=PARTNER_JOB, jobType="thirdParty", clientId=CLIENT_ID)
        ),
    )
    table_stubber.add_response("delete_item", {})

    result = reconcile(client, sqs_client, table, lambda_context, token_store(sm_client))

    assert result["reconciled"]["queued"] == 1


def test_a_record_the_reconciler_cannot_settle_is_released_and_the_poll_fails(
    codepipeline: Stubbed, sqs: StubbedQueue, dynamodb: StubbedTable, lambda_context: FakeLambdaContext
) -> None:
    client, stubber = codepipeline
    sqs_client, sqs_stubber = sqs
    table, table_stubber = dynamodb
    table_calls = record_requests(table)
    table_stubber.add_response("query", {"Items": [stale("claimed")]})
    stubber.add_response("poll_for_jobs", {"jobs": []})
    table_stubber.add_response("update_item", {})
    sqs_stubber.add_client_error("send_message", "InternalError", http_status_code=500)
    table_stubber.add_response("put_item", {})

    result = reconcile(client, sqs_client, table, lambda_context)

    assert result == {"raised": "1 hand-off(s) pending in the job table, 0 lost: the next poll sends them again"}
    [record] = items(table_calls, "PutItem")
    assert (record["state"], record["lease"]) == ("claimed", "0")


def test_a_record_another_invocation_took_is_skipped(
    codepipeline: Stubbed, sqs: StubbedQueue, dynamodb: StubbedTable, lambda_context: FakeLambdaContext
) -> None:
    client, stubber = codepipeline
    sqs_client, _ = sqs
    table, table_stubber = dynamodb
    table_stubber.add_response("query", {"Items": [stale("claimed")]})
    stubber.add_response("poll_for_jobs", {"jobs": []})
    table_stubber.add_client_error("update_item", "ConditionalCheckFailedException", http_status_code=400)

    result = reconcile(client, sqs_client, table, lambda_context)

    assert result["reconciled"] == {"found": 1, "queued": 0, "dropped": 0, "pending": 0, "skipped": 1}


def test_a_record_without_a_job_message_is_dropped_and_one_that_cannot_be_leased_is_skipped(
    codepipeline: Stubbed, sqs: StubbedQueue, dynamodb: StubbedTable, lambda_context: FakeLambdaContext
) -> None:
    client, stubber = codepipeline
    sqs_client, _ = sqs
    table, table_stubber = dynamodb
    broken = {**stale("claimed"), "message": {"S": "not a message"}}
    other = stale("claimed", JOB_2)
    table_stubber.add_response("query", {"Items": [broken, other]})
    stubber.add_response("poll_for_jobs", {"jobs": []})
    table_stubber.add_response("update_item", {}, ANY_LEASE(f"handoff#custom#{JOB}"))
    table_stubber.add_response("delete_item", {})
    table_stubber.add_client_error(
        "update_item", "InternalServerError", http_status_code=500, expected_params=ANY_LEASE(f"handoff#custom#{JOB_2}")
    )

    result = reconcile(client, sqs_client, table, lambda_context)

    assert result["reconciled"] == {"found": 2, "queued": 0, "dropped": 1, "pending": 0, "skipped": 1}


def test_a_partner_record_whose_token_cannot_be_read_stays_pending(
    codepipeline: Stubbed,
    secrets: StubbedSecrets,
    sqs: StubbedQueue,
    dynamodb: StubbedTable,
    lambda_context: FakeLambdaContext,
) -> None:
    client, stubber = codepipeline
    sm_client, sm_stubber = secrets
    sqs_client, _ = sqs
    table, table_stubber = dynamodb
    sm_stubber.add_response("get_secret_value", secret_response({}))
    sm_stubber.add_response("get_secret_value", secret_response({}))
    table_stubber.add_response("query", {"Items": [stale("claimed", PARTNER_JOB, "thirdParty")]})
    stubber.add_response("poll_for_jobs", {"jobs": []})
    table_stubber.add_response("update_item", {})
    table_stubber.add_response("put_item", {})

    result = reconcile(client, sqs_client, table, lambda_context, token_store(sm_client))

    assert result == {"raised": "1 hand-off(s) pending in the job table, 0 lost: the next poll sends them again"}


def test_records_that_cannot_be_read_leave_the_poll_to_go_on(
    codepipeline: Stubbed,
    sqs: StubbedQueue,
    dynamodb: StubbedTable,
    lambda_context: FakeLambdaContext,
    emitted: Callable[[], str],
) -> None:
    client, stubber = codepipeline
    sqs_client, _ = sqs
    table, table_stubber = dynamodb
    table_stubber.add_client_error("query", "AccessDeniedException", http_status_code=400)
    stubber.add_response("poll_for_jobs", {"jobs": []})

    result = reconcile(client, sqs_client, table, lambda_context)

    assert result["reconciled"]["error"] == "AccessDeniedException"
    assert "hand-off records could not be read" in emitted()


def test_a_queued_record_that_cannot_be_deleted_counts_as_queued(
    codepipeline: Stubbed, sqs: StubbedQueue, dynamodb: StubbedTable, lambda_context: FakeLambdaContext
) -> None:
    client, stubber = codepipeline
    sqs_client, sqs_stubber = sqs
    table, table_stubber = dynamodb
    table_stubber.add_response("query", {"Items": [stale("claimed")]})
    stubber.add_response("poll_for_jobs", {"jobs": []})
    table_stubber.add_response("update_item", {})
    sqs_stubber.add_response(
        "send_message", {"MessageId": "m"}, sent_to(JOB, "custom", body(version=1, jobId=JOB, jobType="custom"))
    )
    table_stubber.add_client_error("delete_item", "InternalServerError", http_status_code=500)

    # Left leased: after this invocation's deadline, settled again (its copy dropped by the queue or the work side)
    result = reconcile(client, sqs_client, table, lambda_context)

    assert result["reconciled"]["queued"] == 1


def test_a_partner_job_event_without_a_nonce_is_recorded_before_its_details_and_the_record_deleted_after(
    codepipeline: Stubbed, sqs: StubbedQueue, dynamodb: StubbedTable, lambda_context: FakeLambdaContext
) -> None:
    client, stubber = codepipeline
    sqs_client, sqs_stubber = sqs
    table, table_stubber = dynamodb
    table_calls = record_requests(table)
    event = {"jobId": PARTNER_JOB, "clientToken": CLIENT_TOKEN, "clientId": CLIENT_ID}
    table_stubber.add_response("put_item", {})
    stubber.add_response(
        "get_third_party_job_details",
        {"jobDetails": {"id": PARTNER_JOB, "nonce": NONCE_MARKER, "data": job_data(PARTNER)}},
        {"jobId": PARTNER_JOB, "clientToken": CLIENT_TOKEN},
    )
    stubber.add_response("acknowledge_third_party_job", {"status": "InProgress"})
    expected = context_body(PARTNER_JOB, "thirdParty", PARTNER, clientId=CLIENT_ID)
    sqs_stubber.add_response("send_message", {"MessageId": "m"}, sent_to(PARTNER_JOB, "thirdParty", expected))
    table_stubber.add_response("delete_item", {})

    # Its nonce comes from GetThirdPartyJobDetails: a retried event could not repeat a claim the process died after
    result = lambda_handler(event, lambda_context, service=make_service(client, handoffs=handoffs(sqs_client, table)))

    assert result["handoff"] == "queued"
    [(put, record), (delete, key)] = table_calls
    assert (put, record["Item"]["state"]["S"], "nonce" in record["Item"]) == ("PutItem", "claiming", False)
    assert own_key("thirdParty", PARTNER_JOB, record["Item"]["id"]["S"])
    assert (delete, key["Key"]) == ("DeleteItem", {"id": record["Item"]["id"]})
    assert CLIENT_TOKEN not in json.dumps(table_calls)


def test_a_partner_job_already_in_progress_is_left_to_the_reconciler(
    codepipeline: Stubbed, sqs: StubbedQueue, dynamodb: StubbedTable, lambda_context: FakeLambdaContext
) -> None:
    client, stubber = codepipeline
    sqs_client, _ = sqs
    table, table_stubber = dynamodb
    table_calls = record_requests(table)
    # Given the event's earlier delivery claimed the job and died before handing it off: the details give no nonce
    event = {"jobId": PARTNER_JOB, "clientToken": CLIENT_TOKEN, "clientId": CLIENT_ID}
    table_stubber.add_response("put_item", {})
    stubber.add_response("get_third_party_job_details", {"jobDetails": {"id": PARTNER_JOB}})
    table_stubber.add_response("put_item", {})

    result = lambda_handler(event, lambda_context, service=make_service(client, handoffs=handoffs(sqs_client, table)))

    # Then the job is not dropped: a `claimed` record, free to settle, lets the next poll send it
    assert (result["error"], result["handoff"]) == ("NonceUnavailable", "pending")
    assert [r["state"] for r in items(table_calls, "PutItem")] == ["claiming", "claimed"]


def without_client_id(name: str) -> dict[str, Any]:
    """An events/ file without its clientId: a partner event that can be claimed, but not handed off."""
    event: dict[str, Any] = load_event(name)
    del event["clientId"]
    return event


# -- a record rewritten: the same record, only its state, lease, message and nonce new -----------------------


def assert_rewrite_of(first: dict[str, Any], rewrite: dict[str, Any], state: str, nonce: str | None = None) -> None:
    """`rewrite` is `first` put again: under its key, of its job (ids, clientId), in `state`, free to settle at
    once (lease 0), holding `nonce` or none; its message and expiration are the rewrite's own."""
    expected = {k: v for k, v in first.items() if k not in ("nonce", "message", "expiration")}
    expected |= {"state": state, "lease": "0", "message": rewrite["message"], "expiration": rewrite["expiration"]}
    if nonce is not None:
        expected["nonce"] = nonce
    assert rewrite == expected


def test_a_polled_partner_claim_whose_answer_was_lost_rewrites_its_record_with_the_details_nonce(
    codepipeline: Stubbed,
    secrets: StubbedSecrets,
    sqs: StubbedQueue,
    dynamodb: StubbedTable,
    lambda_context: FakeLambdaContext,
) -> None:
    client, stubber = codepipeline
    sm_client, sm_stubber = secrets
    sqs_client, _ = sqs
    table, table_stubber = dynamodb
    table_calls = record_requests(table)
    nothing_stale(table_stubber)
    stubber.add_response("poll_for_third_party_jobs", {"jobs": [{"jobId": PARTNER_JOB, "clientId": CLIENT_ID}]})
    written(table_stubber)
    sm_stubber.add_response("get_secret_value", secret_response({CLIENT_ID: CLIENT_TOKEN}))
    stubber.add_response(
        "get_third_party_job_details",
        {"jobDetails": {"id": PARTNER_JOB, "nonce": NONCE_MARKER, "data": job_data(PARTNER)}},
    )
    stubber.add_client_error("acknowledge_third_party_job", "InternalFailure", "oops", 500)
    table_stubber.add_response("put_item", {})
    service = make_service(
        client,
        token_store(sm_client),
        make_settings(**PARTNER_ONLY, CLIENT_TOKEN_SECRET_ID=SECRET_ID),
        handoffs=handoffs(sqs_client, table),
    )

    # When the poll's claim of a partner job loses its answer
    with pytest.raises(JobError):
        lambda_handler(load_event("scheduled.json"), lambda_context, service=service)

    # Then the record written before the claim is rewritten, not joined by another: its key and clientId kept,
    # now holding the nonce the details gave (to ask CodePipeline at the next poll) and the message they built
    [before] = items(table_calls, "BatchWriteItem")
    [rewrite] = items(table_calls, "PutItem")
    assert_rewrite_of(before, rewrite, "claiming", NONCE_MARKER)
    assert (before["clientId"], "nonce" in before) == (CLIENT_ID, False)
    assert rewrite["message"] == context_body(PARTNER_JOB, "thirdParty", PARTNER, clientId=CLIENT_ID)


def test_a_polled_job_whose_send_was_lost_rewrites_its_record_claimed_without_its_nonce(
    codepipeline: Stubbed, sqs: StubbedQueue, dynamodb: StubbedTable, lambda_context: FakeLambdaContext
) -> None:
    client, stubber = codepipeline
    sqs_client, sqs_stubber = sqs
    table, table_stubber = dynamodb
    table_calls = record_requests(table)
    nothing_stale(table_stubber)
    stubber.add_response(
        "poll_for_jobs", {"jobs": [{"id": JOB, "nonce": NONCE_MARKER, "accountId": "123456789012", "data": {}}]}
    )
    written(table_stubber)
    stubber.add_response("acknowledge_job", {"status": "InProgress"})
    sqs_stubber.add_client_error("send_message_batch", "InternalError", http_status_code=500)
    written(table_stubber)
    service = make_service(client, settings=make_settings(**CUSTOM_ONLY), handoffs=handoffs(sqs_client, table))

    with pytest.raises(HandoffPending):
        lambda_handler(load_event("scheduled.json"), lambda_context, service=service)

    # The claim happened: the `claimed` rewrite needs no nonce, and keeps none
    [before, rewrite] = items(table_calls, "BatchWriteItem")
    assert before["nonce"] == NONCE_MARKER
    assert_rewrite_of(before, rewrite, "claimed")
    assert rewrite["message"] == before["message"]


def test_a_partner_job_already_in_progress_rewrites_its_own_record_with_its_client_id(
    codepipeline: Stubbed, sqs: StubbedQueue, dynamodb: StubbedTable, lambda_context: FakeLambdaContext
) -> None:
    client, stubber = codepipeline
    sqs_client, _ = sqs
    table, table_stubber = dynamodb
    table_calls = record_requests(table)
    event = {"jobId": PARTNER_JOB, "clientToken": CLIENT_TOKEN, "clientId": CLIENT_ID}
    table_stubber.add_response("put_item", {})
    stubber.add_response("get_third_party_job_details", {"jobDetails": {"id": PARTNER_JOB}})
    table_stubber.add_response("put_item", {})

    lambda_handler(event, lambda_context, service=make_service(client, handoffs=handoffs(sqs_client, table)))

    # The reconciler reads the partner's token by the record's clientId: the rewrite keeps it, and the key
    [before, rewrite] = items(table_calls, "PutItem")
    assert before["clientId"] == CLIENT_ID
    assert_rewrite_of(before, rewrite, "claimed")
    assert rewrite["message"] == JobMessage(job_id=PARTNER_JOB, job_type="thirdParty", client_id=CLIENT_ID).to_body()


def test_a_record_the_reconciler_releases_keeps_its_key_and_client_id_and_drops_its_nonce(
    codepipeline: Stubbed,
    secrets: StubbedSecrets,
    sqs: StubbedQueue,
    dynamodb: StubbedTable,
    lambda_context: FakeLambdaContext,
) -> None:
    client, stubber = codepipeline
    sm_client, sm_stubber = secrets
    sqs_client, sqs_stubber = sqs
    table, table_stubber = dynamodb
    table_calls = record_requests(table)
    left = stale("claiming", PARTNER_JOB, "thirdParty", nonce="n-1")
    sm_stubber.add_response("get_secret_value", secret_response({CLIENT_ID: CLIENT_TOKEN}))
    table_stubber.add_response("query", {"Items": [left]})
    stubber.add_response("poll_for_jobs", {"jobs": []})
    table_stubber.add_response("update_item", {})
    stubber.add_response("acknowledge_third_party_job", {"status": "InProgress"})
    sqs_stubber.add_client_error("send_message", "InternalError", http_status_code=500)
    table_stubber.add_response("put_item", {})

    result = reconcile(client, sqs_client, table, lambda_context, token_store(sm_client))

    # Found ours, its send's answer lost: released as `claimed` (sent again at the next poll, nonce no longer needed)
    assert result["raised"].startswith("1 hand-off(s) pending")
    [rewrite] = items(table_calls, "PutItem")
    before = {k: next(iter(v.values())) for k, v in left.items()}
    assert_rewrite_of(before, rewrite, "claimed")
    assert rewrite["message"] == before["message"]
