"""The work function's Lambda entry point: an SQS batch in, `batchItemFailures` out, naming exactly the records
to deliver again."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from codepipeline_worker.shared.adapter import CodePipelineAdapter
from codepipeline_worker.shared.messages import JobMessage
from codepipeline_worker.work import Failure, Success
from codepipeline_worker.work.handler import lambda_handler, process_batch
from codepipeline_worker.work.runner import JOB_OVERHEAD_S, WorkRunner
from tests.conftest import FakeLambdaContext, emitted_metrics
from tests.unit.conftest import CLIENT_TOKEN

if TYPE_CHECKING:
    from collections.abc import Callable

    from botocore.stub import Stubber
    from mypy_boto3_codepipeline import CodePipelineClient

    from codepipeline_worker.work import Job, Outcome
    from tests.unit.conftest import Stubbed

pytestmark = pytest.mark.usefixtures("clean_metrics")

JOB_A = "aaaaaaaa-abcd-4bcd-8bcd-0123456789ab"
JOB_C = "cccccccc-abcd-4bcd-8bcd-0123456789ab"
NONCE_MARKER = "nonce-in-a-bad-message-MARKER"
ACCESS_KEY = "AKIAWORKER0HANDLER0KEY"
SECRET_KEY = "worker-handler-secret-key-MARKER"
SESSION_TOKEN = "worker-handler-session-MARKER"
SECRETS = (NONCE_MARKER, ACCESS_KEY, SECRET_KEY, SESSION_TOKEN, CLIENT_TOKEN)
ARN = "arn:aws:sqs:us-east-1:123456789012:codepipeline-jobs"


def record(message_id: str, body: str) -> dict[str, Any]:
    """One record of Lambda's SQS event."""
    return {
        "messageId": message_id,
        "receiptHandle": f"handle-{message_id}",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1700000000000"},
        "messageAttributes": {},
        "md5OfBody": "0" * 32,
        "eventSource": "aws:sqs",
        "eventSourceARN": ARN,
        "awsRegion": "us-east-1",
    }


def job_body(job_id: str) -> str:
    return JobMessage(job_id=job_id, job_type="custom").to_body()


def stubbed_runner(client: CodePipelineClient, work: Callable[[Job], Outcome]) -> WorkRunner:
    return WorkRunner(CodePipelineAdapter(client), None, work, time_limit_s=30)


def details(stubber: Stubber, *job_ids: str) -> None:
    """GetJobDetails for each job, which the runner reads before the work function runs."""
    for job_id in job_ids:
        stubber.add_response("get_job_details", {"jobDetails": {"id": job_id, "data": {}}}, {"jobId": job_id})


def work(job: Job) -> Outcome:
    """Job A reads its credentials and quotes one in its summary; job C fails."""
    if job.id == JOB_A:
        credentials = job.artifact_credentials
        assert credentials is not None
        return Success(summary=f"deployed with {credentials.secret_access_key.get_secret_value()}")
    return Failure(message="the gate stayed red")


def test_only_the_invalid_and_the_unreported_records_come_back(
    codepipeline: Stubbed, emitted: Callable[[], str]
) -> None:
    client, stubber = codepipeline
    credentials = {"accessKeyId": ACCESS_KEY, "secretAccessKey": SECRET_KEY, "sessionToken": SESSION_TOKEN}
    stubber.add_response(
        "get_job_details", {"jobDetails": {"data": {"artifactCredentials": credentials}}}, {"jobId": JOB_A}
    )
    stubber.add_response(
        "put_job_success_result", {}, {"jobId": JOB_A, "executionDetails": {"summary": "deployed with ***"}}
    )
    stubber.add_response("get_job_details", {"jobDetails": {"data": {}}}, {"jobId": JOB_C})
    stubber.add_client_error(
        "put_job_failure_result",
        "ThrottlingException",
        http_status_code=400,
        expected_params={"jobId": JOB_C, "failureDetails": {"type": "JobFailed", "message": "the gate stayed red"}},
    )
    not_a_job = json.dumps({"version": 1, "jobId": JOB_A, "jobType": "custom", "nonce": NONCE_MARKER})
    event = {"Records": [record("m-a", job_body(JOB_A)), record("m-b", not_a_job), record("m-c", job_body(JOB_C))]}

    answer = lambda_handler(event, FakeLambdaContext(), runner=stubbed_runner(client, work))

    assert answer == {"batchItemFailures": [{"itemIdentifier": "m-b"}, {"itemIdentifier": "m-c"}]}
    output = emitted()
    assert '"message":"not a job message"' in output
    assert "not a job message: nonce" in output
    metrics = emitted_metrics(output)
    assert (metrics["JobsSucceeded"], metrics["InvalidMessages"]) == (1.0, 1.0)
    for secret in SECRETS:
        assert secret not in output, f"{secret!r} leaked"


def test_a_batch_whose_jobs_are_all_reported_returns_nothing(codepipeline: Stubbed) -> None:
    client, stubber = codepipeline
    details(stubber, JOB_A, JOB_C)
    stubber.add_response(
        "put_job_failure_result", {}, {"jobId": JOB_A, "failureDetails": {"type": "JobFailed", "message": "no"}}
    )
    stubber.add_response("put_job_success_result", {}, {"jobId": JOB_C})
    event = {"Records": [record("m-a", job_body(JOB_A)), record("m-c", job_body(JOB_C))]}

    def outcome(job: Job) -> Outcome:
        return Failure(message="no") if job.id == JOB_A else Success()

    answer = process_batch(event, None, stubbed_runner(client, outcome))

    assert answer == {"batchItemFailures": []}


def test_a_stale_job_is_done_not_redelivered(codepipeline: Stubbed) -> None:
    client, stubber = codepipeline
    details(stubber, JOB_A, JOB_C)
    stubber.add_client_error("put_job_success_result", "JobNotFoundException")
    stubber.add_response("put_job_success_result", {})
    event = {"Records": [record("m-a", job_body(JOB_A)), record("m-c", job_body(JOB_C))]}

    answer = process_batch(event, None, stubbed_runner(client, lambda _job: Success()))

    assert answer == {"batchItemFailures": []}


def test_a_batch_in_which_every_record_fails_fails_the_invocation() -> None:
    # Lambda then returns every message to the queue, as it would for the records named one by one
    event = {"Records": [record("m-b", "{}"), record("m-x", "not json")]}

    with pytest.raises(BatchProcessingError):
        process_batch(event, None, WorkRunner(None, None, lambda _job: Success()))  # type: ignore[arg-type]


def test_the_work_function_sees_its_share_of_the_invocations_deadline_less_a_margin(codepipeline: Stubbed) -> None:
    # Given a batch of one, 30 s left, and no JOB_TIME_LIMIT_S: the job's limit is the invocation's time less the
    # deadline's margin (1 s), less its report at its worst and its overhead
    client, stubber = codepipeline
    details(stubber, JOB_A)
    stubber.add_response("put_job_success_result", {}, {"jobId": JOB_A})
    remaining: list[float | None] = []

    def timed(job: Job) -> Outcome:
        remaining.append(job.remaining_time_s())
        return Success()

    runner = WorkRunner(CodePipelineAdapter(client), None, timed, batch_size=1, isolate=False)
    lambda_handler({"Records": [record("m-a", job_body(JOB_A))]}, FakeLambdaContext(remaining_ms=30_000), runner=runner)

    [left] = remaining
    assert left is not None
    limit = 29.0 - runner.reserve_s - JOB_OVERHEAD_S
    assert limit - 1.0 < left <= limit


def test_the_default_runner_is_built_from_the_environment() -> None:
    from codepipeline_worker.examples.url_gate import check_url
    from codepipeline_worker.work import handler as worker_handler

    assert worker_handler.settings.work_function == "codepipeline_worker.examples.url_gate:check_url"
    assert worker_handler.default_runner._work is check_url
