"""The dead-letter handler: each job whose message the work queue set aside is failed back to CodePipeline once,
saying why and after how many deliveries; a job already ended counts as done; what could not be failed back now
comes back later; no secret reaches the log."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from botocore.stub import ANY

from codepipeline_worker.dead_letter import handler as dead_letter_handler
from codepipeline_worker.dead_letter.handler import lambda_handler
from codepipeline_worker.dead_letter.service import ENDED_ANSWER, DeadLetterService, NotFailedBack
from codepipeline_worker.shared.adapter import CodePipelineAdapter, worst_case_call_s
from codepipeline_worker.shared.deadline import Deadline
from codepipeline_worker.shared.messages import JobMessage
from codepipeline_worker.work.once import RunOnce
from codepipeline_worker.work.runner import WorkRunner
from tests.conftest import FakeLambdaContext, emitted_metrics
from tests.unit.conftest import CLIENT_ID, CLIENT_TOKEN, TABLE, record_requests, secret_response, token_store
from tests.unit.test_once import stored
from tests.unit.test_worker_handler import record

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_codepipeline import CodePipelineClient

    from codepipeline_worker.shared.adapter import ClientTokenStore
    from tests.unit.conftest import Stubbed, StubbedSecrets, StubbedTable

pytestmark = pytest.mark.usefixtures("clean_metrics")

JOB = "dddddddd-abcd-4bcd-8bcd-0123456789ab"
OTHER_JOB = "eeeeeeee-abcd-4bcd-8bcd-0123456789ab"
PARTNER_JOB = "partner-dead-letter-1"
BROKEN = "WORK_FUNCTION: module mytool.deploy cannot be imported (ModuleNotFoundError)"
DID_NOT_COMPLETE = (
    "The job worker did not complete this job: its message was delivered {times} without a result (each time the "
    "work could not report, was stopped by the function's timeout, or had no time to start) and was set aside. "
    "The work function's log has each attempt under this job's id."
)


def dead_letter(message_id: str, body: str, receives: int | None = 6) -> dict[str, Any]:
    """A record of the dead-letter queue: SQS counts the work queue's receives and this one."""
    entry = record(message_id, body)
    if receives is None:
        del entry["attributes"]["ApproximateReceiveCount"]
    else:
        entry["attributes"]["ApproximateReceiveCount"] = str(receives)
    return entry


def custom_body(job_id: str = JOB) -> str:
    return JobMessage(job_id=job_id, job_type="custom").to_body()


def service(
    client: CodePipelineClient,
    tokens: ClientTokenStore | None = None,
    problem: str | None = None,
    checked: list[str] | None = None,
) -> DeadLetterService:
    def check(reference: str) -> str | None:
        if checked is not None:
            checked.append(reference)
        return problem

    return DeadLetterService(CodePipelineAdapter(client), tokens, "mytool.deploy:run", check=check)


def test_a_dead_letter_fails_its_job_back_once_saying_why_and_how_often_it_was_tried(
    codepipeline: Stubbed, emitted: Callable[[], str]
) -> None:
    client, stubber = codepipeline
    stubber.add_response(
        "put_job_failure_result",
        {},
        {"jobId": JOB, "failureDetails": {"type": "JobFailed", "message": DID_NOT_COMPLETE.format(times="5 times")}},
    )

    answer = lambda_handler(
        {"Records": [dead_letter("d-1", custom_body())]}, FakeLambdaContext(), service=service(client)
    )

    assert answer == {"batchItemFailures": []}
    output = emitted()
    assert '"message":"dead letter: job failed back"' in output
    assert '"deliveries":5' in output
    assert emitted_metrics(output)["JobsFailedBack"] == 1.0


def test_a_dead_letter_without_a_receive_count_is_failed_back_all_the_same(codepipeline: Stubbed) -> None:
    client, stubber = codepipeline
    stubber.add_response(
        "put_job_failure_result",
        {},
        {
            "jobId": JOB,
            "failureDetails": {"type": "JobFailed", "message": DID_NOT_COMPLETE.format(times="several times")},
        },
    )

    result = service(client).fail_back(JobMessage(job_id=JOB, job_type="custom"), None)

    assert (result.result, result.deliveries) == ("failedBack", None)


def test_a_partner_job_is_failed_back_with_its_client_token(
    codepipeline: Stubbed, secrets: StubbedSecrets, emitted: Callable[[], str]
) -> None:
    client, stubber = codepipeline
    sm_client, sm_stubber = secrets
    sm_stubber.add_response("get_secret_value", secret_response({CLIENT_ID: CLIENT_TOKEN}))
    stubber.add_response(
        "put_third_party_job_failure_result",
        {},
        {
            "jobId": PARTNER_JOB,
            "clientToken": CLIENT_TOKEN,
            "failureDetails": {"type": "JobFailed", "message": DID_NOT_COMPLETE.format(times="5 times")},
        },
    )
    body = JobMessage(job_id=PARTNER_JOB, job_type="thirdParty", client_id=CLIENT_ID).to_body()

    answer = lambda_handler(
        {"Records": [dead_letter("d-1", body)]}, FakeLambdaContext(), service=service(client, token_store(sm_client))
    )

    assert answer == {"batchItemFailures": []}
    assert CLIENT_TOKEN not in emitted() + json.dumps(answer)


def test_a_work_function_that_cannot_start_is_named_as_a_configuration_error_checked_once(
    codepipeline: Stubbed,
) -> None:
    client, stubber = codepipeline
    message = (
        f"The work function cannot start: invalid configuration: {BROKEN}. This job's message was delivered 5 "
        "times without a result, then set aside. Fix the work function's configuration, then retry the action."
    )
    for job_id in (JOB, OTHER_JOB):
        stubber.add_response(
            "put_job_failure_result",
            {},
            {"jobId": job_id, "failureDetails": {"type": "ConfigurationError", "message": message}},
        )
    checked: list[str] = []

    answer = lambda_handler(
        {"Records": [dead_letter("d-1", custom_body()), dead_letter("d-2", custom_body(OTHER_JOB))]},
        FakeLambdaContext(),
        service=service(client, problem=BROKEN, checked=checked),
    )

    assert answer == {"batchItemFailures": []}
    assert checked == ["mytool.deploy:run"]


@pytest.mark.parametrize("code", ["InvalidJobStateException", "JobNotFoundException", "InvalidJobException"])
def test_a_job_that_has_already_ended_counts_as_done(
    code: str, codepipeline: Stubbed, emitted: Callable[[], str]
) -> None:
    client, stubber = codepipeline
    stubber.add_client_error("put_job_failure_result", code)

    answer = lambda_handler(
        {"Records": [dead_letter("d-1", custom_body())]}, FakeLambdaContext(), service=service(client)
    )

    assert answer == {"batchItemFailures": []}
    output = emitted()
    assert '"message":"dead letter: the job had already ended"' in output
    assert emitted_metrics(output)["DeadLettersAlreadyDone"] == 1.0


@pytest.mark.parametrize("code", ["ThrottlingException", "InvalidClientTokenException", "AccessDeniedException"])
def test_a_failure_that_cannot_be_reported_now_is_tried_again_later(
    code: str, codepipeline: Stubbed, emitted: Callable[[], str]
) -> None:
    client, stubber = codepipeline
    stubber.add_client_error("put_job_failure_result", code, http_status_code=400)
    stubber.add_response("put_job_failure_result", {}, {"jobId": OTHER_JOB, "failureDetails": ANY})

    answer = lambda_handler(
        {"Records": [dead_letter("d-1", custom_body()), dead_letter("d-2", custom_body(OTHER_JOB))]},
        FakeLambdaContext(),
        service=service(client),
    )

    assert answer == {"batchItemFailures": [{"itemIdentifier": "d-1"}]}
    output = emitted()
    assert '"message":"dead letter: the job could not be failed back"' in output
    assert emitted_metrics(output)["DeadLettersNotFailedBack"] == 1.0


def test_a_partner_job_without_a_client_token_is_tried_again_later(
    codepipeline: Stubbed, secrets: StubbedSecrets
) -> None:
    client, _ = codepipeline
    calls = record_requests(client)
    sm_client, sm_stubber = secrets
    for _ in range(2):  # the cached read, and the fresh one a missing clientId forces
        sm_stubber.add_response("get_secret_value", secret_response({}))
    body = JobMessage(job_id=PARTNER_JOB, job_type="thirdParty", client_id=CLIENT_ID).to_body()

    with pytest.raises(NotFailedBack) as caught:
        service(client, token_store(sm_client)).fail_back(JobMessage.from_body(body), 6)

    assert caught.value.code == "ClientTokenNotFound"
    assert calls == []


def test_a_body_that_is_not_a_job_message_is_dropped_without_echoing_it(
    codepipeline: Stubbed, emitted: Callable[[], str]
) -> None:
    client, _ = codepipeline
    stray = json.dumps({"version": 1, "jobId": "not-a-uuid", "jobType": "custom", "hint": "stray-value-77"})

    answer = lambda_handler({"Records": [dead_letter("d-1", stray)]}, FakeLambdaContext(), service=service(client))

    assert answer == {"batchItemFailures": []}
    output = emitted()
    assert '"message":"not a job message"' in output
    assert emitted_metrics(output)["InvalidDeadLetters"] == 1.0
    assert "stray-value-77" not in output


def test_no_dead_letter_is_started_without_time_for_its_calls(codepipeline: Stubbed) -> None:
    client, _ = codepipeline
    calls = record_requests(client)
    tight = Deadline.after(2 * worst_case_call_s(1, 1.0, 2.0) - 1)

    with pytest.raises(NotFailedBack) as caught:
        service(client).fail_back(JobMessage(job_id=JOB, job_type="custom"), 6, tight)

    assert caught.value.code == "NotAttempted"
    assert calls == []


def test_the_default_service_is_built_from_the_environment() -> None:
    assert dead_letter_handler.settings.work_function == "codepipeline_worker.examples.url_gate:check_url"
    assert dead_letter_handler.default_service.work_function_problem() is None


# -- a job failed back never runs afterwards ----------------------------------------------------------------


@pytest.mark.parametrize("answer", ["failed back", "already ended"])
def test_a_job_failed_back_has_its_once_only_record_marked_done_and_a_late_copy_runs_nothing(
    answer: str, codepipeline: Stubbed, dynamodb: StubbedTable
) -> None:
    # Given a dead letter whose job is failed back now, or had already ended
    client, stubber = codepipeline
    table, table_stubber = dynamodb
    message = JobMessage(job_id=JOB, job_type="custom")
    if answer == "failed back":
        stubber.add_response("put_job_failure_result", {})
    else:
        stubber.add_client_error("put_job_failure_result", "InvalidJobStateException", http_status_code=400)
    table_stubber.add_response("update_item", {})
    writes = record_requests(table)
    once = RunOnce(table, TABLE)
    handler = DeadLetterService(CodePipelineAdapter(client), None, "mytool.deploy:run", once, check=lambda _: None)

    # When the handler has dealt with it
    handler.fail_back(message, 6)

    # Then the job's once-only record is marked done, with an answer that runs nothing
    [(operation, params)] = writes
    assert (operation, params["Key"]) == ("UpdateItem", {"id": {"S": f"work#{message.dedup_id}"}})
    record = json.loads(params["ExpressionAttributeValues"][":response_data"]["S"])
    assert record == ENDED_ANSWER
    # And a copy of its message delivered to the work function later is done with, its work not run, nothing
    # asked of CodePipeline
    table_stubber.add_client_error(
        "put_item",
        "ConditionalCheckFailedException",
        http_status_code=400,
        modeled_fields={"Item": stored("COMPLETED", record)},
    )
    runner = WorkRunner(CodePipelineAdapter(client), None, lambda _job: pytest.fail("ran"), RunOnce(table, TABLE))
    calls = record_requests(client)
    assert runner.run(message).result == "stale"
    assert calls == []


def test_a_once_only_record_not_marked_done_leaves_the_job_failed_back(
    codepipeline: Stubbed, dynamodb: StubbedTable, emitted: Callable[[], str]
) -> None:
    client, stubber = codepipeline
    table, table_stubber = dynamodb
    stubber.add_response("put_job_failure_result", {})
    table_stubber.add_client_error("update_item", "InternalServerError", http_status_code=500)
    handler = DeadLetterService(
        CodePipelineAdapter(client), None, "mytool.deploy:run", RunOnce(table, TABLE), check=lambda _: None
    )

    result = handler.fail_back(JobMessage(job_id=JOB, job_type="custom"), 6)

    assert result.result == "failedBack"
    assert "the job's once-only record was not marked done" in emitted()
