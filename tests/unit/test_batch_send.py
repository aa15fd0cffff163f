"""A poll's hand-offs go out in SendMessageBatch calls of up to 10 messages (and within the batch payload limit),
each job's outcome read from its entry as a single send's would be: an entry SQS lists as failed is a certain
refusal (the job is failed back), a batch call refused as a whole refuses every job in it, a batch whose answer was
lost leaves every job in it pending, recorded for the reconciler. A direct job event keeps SendMessage."""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

import pytest

from codepipeline_worker.acknowledger.handler import lambda_handler
from codepipeline_worker.shared.adapter import SEND_BATCH_BYTES, WorkQueue
from codepipeline_worker.shared.errors import HandoffPending
from codepipeline_worker.shared.messages import JobMessage
from tests.conftest import emitted_metrics, load_event
from tests.unit.conftest import CUSTOM, handoffs, make_service, make_settings, record_requests
from tests.unit.test_handoff import (
    CUSTOM_ONLY,
    NONCE_MARKER,
    assert_no_marker,
    batch_answer,
    batch_of,
    deleted,
    failure_report,
    items,
    nothing_stale,
    sent_to,
    written,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from botocore.stub import Stubber

    from tests.conftest import FakeLambdaContext
    from tests.unit.conftest import Stubbed, StubbedQueue, StubbedTable

pytestmark = pytest.mark.usefixtures("clean_metrics")

ACCOUNT = "123456789012"


def job_id(n: int) -> str:
    return f"{n:08x}-abcd-4bcd-8bcd-0123456789ab"


def polled(count: int, data: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """A poll's answer of `count` custom jobs, each with its own nonce (a marker: it must reach no queue)."""
    return [
        {"id": job_id(n), "nonce": f"{NONCE_MARKER}-{n}", "accountId": ACCOUNT, "data": data or {}}
        for n in range(count)
    ]


def polled_send(n: int) -> dict[str, Any]:
    """The SendMessage request a job of `polled` would make alone: its body and its FIFO ids."""
    body = JobMessage.from_job_data(job_id(n), "custom", {}, account_id=ACCOUNT).to_body()
    return sent_to(job_id(n), "custom", body)


def claimed_poll(stubber: Stubber, table_stubber: Stubber, count: int, data: dict[str, Any] | None = None) -> None:
    """A poll that finds `count` jobs, their records written, each claimed (InProgress)."""
    nothing_stale(table_stubber)
    stubber.add_response("poll_for_jobs", {"jobs": polled(count, data)})
    written(table_stubber)
    for n in range(count):
        stubber.add_response(
            "acknowledge_job", {"status": "InProgress"}, {"jobId": job_id(n), "nonce": f"{NONCE_MARKER}-{n}"}
        )


def entries(requests: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    return [entry for name, params in requests if name == "SendMessageBatch" for entry in params["Entries"]]


@pytest.mark.parametrize("concurrency", ["1", "8"])
def test_a_polls_messages_go_in_batches_of_ten_each_entry_as_its_single_send(
    concurrency: str,
    codepipeline: Stubbed,
    sqs: StubbedQueue,
    dynamodb: StubbedTable,
    lambda_context: FakeLambdaContext,
) -> None:
    client, stubber = codepipeline
    sqs_client, sqs_stubber = sqs
    table, table_stubber = dynamodb
    sent = record_requests(sqs_client)
    jobs = 23
    # Given a poll of 23 jobs, each claimed; SQS takes every entry of every batch (whichever of them it holds)
    claimed_poll(stubber, table_stubber, jobs)
    for _ in range(math.ceil(jobs / 10)):
        sqs_stubber.add_response("send_message_batch", batch_answer(10))
    written(table_stubber)
    settings = make_settings(**CUSTOM_ONLY, ACK_CONCURRENCY=concurrency)
    service = make_service(client, settings=settings, handoffs=handoffs(sqs_client, table))

    # When the schedule fires
    result = lambda_handler(load_event("scheduled.json"), lambda_context, service=service)

    # Then every job is queued, by ceil(23 / 10) SendMessageBatch calls of at most 10 entries, and no SendMessage
    assert [(r["outcome"], r["handoff"]) for r in result["results"]] == [("acknowledged", "queued")] * jobs
    assert [name for name, _ in sent] == ["SendMessageBatch"] * 3
    assert sorted(len(params["Entries"]) for _, params in sent) == [3, 10, 10]
    # And each entry is the job's single send: its body, its FIFO group and deduplication id (a batch sent again
    # collapses on a FIFO queue); its Id its index in the batch, never a nonce or token
    for _, params in sent:
        assert params["QueueUrl"] == polled_send(0)["QueueUrl"]
        assert [entry["Id"] for entry in params["Entries"]] == [str(n) for n in range(len(params["Entries"]))]
    by_job = {json.loads(entry["MessageBody"])["jobId"]: entry for entry in entries(sent)}
    assert len(by_job) == jobs
    for n in range(jobs):
        expected = {k: v for k, v in polled_send(n).items() if k != "QueueUrl"}
        assert {k: v for k, v in by_job[job_id(n)].items() if k != "Id"} == expected
    assert_no_marker(sent)
    assert NONCE_MARKER not in json.dumps(sent)


def test_an_entry_sqs_refused_fails_back_that_job_alone(
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
    # Given a poll of three jobs, and SQS refusing the second one's entry
    claimed_poll(stubber, table_stubber, 3)
    sqs_stubber.add_response(
        "send_message_batch", batch_answer(3, {1: "KmsThrottled"}), batch_of(*(polled_send(n) for n in range(3)))
    )
    stubber.add_response(
        "put_job_failure_result", {}, {"jobId": job_id(1), "failureDetails": failure_report("KmsThrottled")}
    )
    written(table_stubber)
    service = make_service(client, settings=make_settings(**CUSTOM_ONLY), handoffs=handoffs(sqs_client, table))

    # When the schedule fires
    result = lambda_handler(load_event("scheduled.json"), lambda_context, service=service)

    # Then that job, and only it, is failed back to CodePipeline; the others are queued; every record is deleted
    assert [(r["jobId"], r["handoff"], r.get("handoffError")) for r in result["results"]] == [
        (job_id(0), "queued", None),
        (job_id(1), "failedBack", "KmsThrottled"),
        (job_id(2), "queued", None),
    ]
    assert sorted(deleted(table_calls)) == sorted(r["id"] for r in items(table_calls, "BatchWriteItem"))
    metrics = emitted_metrics(emitted())
    assert (metrics["JobsQueued"], metrics["HandoffFailures"], metrics["HandoffsPending"]) == (2.0, 1.0, 0.0)


@pytest.mark.parametrize(("code", "status"), [("AccessDenied", 403), ("KmsAccessDenied", 400)])
def test_a_batch_refused_as_a_whole_fails_back_every_job_in_it(  # noqa: PLR0917 - its fixtures
    code: str,
    status: int,
    codepipeline: Stubbed,
    sqs: StubbedQueue,
    dynamodb: StubbedTable,
    lambda_context: FakeLambdaContext,
) -> None:
    client, stubber = codepipeline
    sqs_client, sqs_stubber = sqs
    table, table_stubber = dynamodb
    claimed_poll(stubber, table_stubber, 3)
    sqs_stubber.add_client_error("send_message_batch", code, "denied", status)
    for n in range(3):
        stubber.add_response("put_job_failure_result", {}, {"jobId": job_id(n), "failureDetails": failure_report(code)})
    written(table_stubber)
    service = make_service(client, settings=make_settings(**CUSTOM_ONLY), handoffs=handoffs(sqs_client, table))

    result = lambda_handler(load_event("scheduled.json"), lambda_context, service=service)

    assert [(r["handoff"], r["handoffError"]) for r in result["results"]] == [("failedBack", code)] * 3


@pytest.mark.parametrize(
    "lose",
    [
        pytest.param(
            lambda stub: stub.add_client_error("send_message_batch", "InternalError", http_status_code=500), id="5xx"
        ),
        # an answer that names an entry neither successful nor failed: that entry may be on the queue
        pytest.param(
            lambda stub: stub.add_response("send_message_batch", batch_answer(3, unnamed=(0, 1, 2))), id="unnamed"
        ),
    ],
)
def test_a_batch_whose_answer_was_lost_leaves_every_job_pending_and_recorded(  # noqa: PLR0917 - its fixtures
    lose: Callable[[Any], None],
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
    claimed_poll(stubber, table_stubber, 3)
    lose(sqs_stubber)
    written(table_stubber)
    service = make_service(client, settings=make_settings(**CUSTOM_ONLY), handoffs=handoffs(sqs_client, table))

    # When the batch's outcome is unknown: no job is failed back (no PutJobFailureResult is stubbed)
    with pytest.raises(HandoffPending) as caught:
        lambda_handler(load_event("scheduled.json"), lambda_context, service=service)

    # Then every job in it is pending, its record (written before the claim) rewritten `claimed`, under its own
    # key, without its nonce, free to settle at once, in one BatchWriteItem; no record is deleted
    assert str(caught.value).startswith("3 hand-off(s) pending in the job table, 0 lost")
    before, rewrites = items(table_calls, "BatchWriteItem")[:3], items(table_calls, "BatchWriteItem")[3:]
    assert [r["id"] for r in rewrites] == [r["id"] for r in before]
    assert {(r["state"], r["lease"], "nonce" in r) for r in rewrites} == {("claimed", "0", False)}
    assert [r["message"] for r in rewrites] == [r["message"] for r in before]
    assert [name for name, _ in table_calls].count("BatchWriteItem") == 2
    assert deleted(table_calls) == []
    assert emitted_metrics(emitted())["HandoffsPending"] == 3.0


def test_large_messages_split_a_batch_by_its_payload_limit(
    codepipeline: Stubbed, sqs: StubbedQueue, dynamodb: StubbedTable, lambda_context: FakeLambdaContext
) -> None:
    client, stubber = codepipeline
    sqs_client, sqs_stubber = sqs
    table, table_stubber = dynamodb
    sent = record_requests(sqs_client)
    # Given three jobs whose messages are each over a third of the batch payload limit (many input artifacts)
    artifact = {
        "name": "Source",
        "revision": "r" * 1500,
        "location": {"type": "S3", "s3Location": {"bucketName": "b", "objectKey": "k" * 1024}},
    }
    data = {"actionTypeId": CUSTOM, "inputArtifacts": [artifact] * 40}
    claimed_poll(stubber, table_stubber, 3, data)
    sqs_stubber.add_response("send_message_batch", batch_answer(2))
    sqs_stubber.add_response("send_message_batch", batch_answer(1))
    written(table_stubber)
    service = make_service(client, settings=make_settings(**CUSTOM_ONLY), handoffs=handoffs(sqs_client, table))

    result = lambda_handler(load_event("scheduled.json"), lambda_context, service=service)

    # Then no batch's bodies exceed the limit together: two calls, all three jobs queued
    assert [r["handoff"] for r in result["results"]] == ["queued"] * 3
    assert sorted(len(params["Entries"]) for _, params in sent) == [1, 2]
    sizes = [len(entry["MessageBody"].encode()) for entry in entries(sent)]
    assert all(size > SEND_BATCH_BYTES / 3 for size in sizes)
    for _, params in sent:
        assert sum(len(entry["MessageBody"].encode()) for entry in params["Entries"]) <= SEND_BATCH_BYTES


def test_a_direct_job_keeps_send_message(
    codepipeline: Stubbed, sqs: StubbedQueue, dynamodb: StubbedTable, lambda_context: FakeLambdaContext
) -> None:
    client, stubber = codepipeline
    sqs_client, sqs_stubber = sqs
    sent = record_requests(sqs_client)
    stubber.add_response("acknowledge_job", {"status": "InProgress"})
    sqs_stubber.add_response("send_message", {"MessageId": "m-1"})
    service = make_service(client, handoffs=handoffs(sqs_client, dynamodb[0]))

    result = lambda_handler(load_event("custom-job.json"), lambda_context, service=service)

    assert result["handoff"] == "queued"
    assert [name for name, _ in sent] == ["SendMessage"]


def test_a_standard_queues_entries_carry_no_fifo_ids(sqs: StubbedQueue) -> None:
    sqs_client, sqs_stubber = sqs
    url = "https://sqs.us-east-1.amazonaws.com/123456789012/codepipeline-jobs"
    sqs_stubber.add_response(
        "send_message_batch",
        batch_answer(2, {1: "InvalidMessageContents"}),
        {"QueueUrl": url, "Entries": [{"Id": "0", "MessageBody": "a"}, {"Id": "1", "MessageBody": "b"}]},
    )

    first, second = WorkQueue(sqs_client, url).send_batch([("a", "dedup-a"), ("b", "dedup-b")])

    assert first == "m-0"
    assert not isinstance(second, str)
    assert (second.operation, second.code, second.certain) == ("SendMessageBatch", "InvalidMessageContents", True)
