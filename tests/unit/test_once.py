"""Each job's work runs once: Powertools Idempotency's protocol and record layout on the job table, against a
Stubber-checked DynamoDB client. The record's key is the job's (`work#` and a hash of its type and id), its
in-progress expiry the run's deadline, its data the outcome; a second delivery gets the stored outcome, a
concurrent one is told to come back."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import pytest

from codepipeline_worker.shared.adapter import CodePipelineAdapter
from codepipeline_worker.shared.messages import JobMessage
from codepipeline_worker.work import Success
from codepipeline_worker.work.once import KEY_PREFIX, RECORD_LIFETIME_S, RecordUnavailable, RunOnce, WorkInProgress
from codepipeline_worker.work.runner import JobNotReported, WorkRunner
from tests.unit.conftest import TABLE, record_requests

if TYPE_CHECKING:
    from tests.unit.conftest import Stubbed, StubbedTable

JOB = "11111111-abcd-1111-abcd-111111abcdef"
MESSAGE = JobMessage(job_id=JOB, job_type="custom")
ANSWER = {"kind": "success", "outcome": {"summary": "done"}}


def stored(status: str, data: dict[str, Any] | None = None, in_progress_until_ms: int | None = None) -> dict[str, Any]:
    """The record DynamoDB hands back with a failed conditional put (ReturnValuesOnConditionCheckFailure)."""
    item: dict[str, Any] = {
        "id": {"S": "work#x"},
        "status": {"S": status},
        "expiration": {"N": str(int(time.time()) + 3600)},
    }
    if data is not None:
        item["data"] = {"S": json.dumps(data)}
    if in_progress_until_ms is not None:
        item["in_progress_expiration"] = {"N": str(in_progress_until_ms)}
    return item


def already(stubber: Any, item: dict[str, Any]) -> None:
    """The conditional put finds a record: DynamoDB answers with it."""
    stubber.add_client_error(
        "put_item", "ConditionalCheckFailedException", http_status_code=400, modeled_fields={"Item": item}
    )


def test_a_first_delivery_runs_the_work_and_stores_its_outcome_with_the_record(dynamodb: StubbedTable) -> None:
    client, stubber = dynamodb
    requests = record_requests(client)
    stubber.add_response("put_item", {})
    stubber.add_response("update_item", {})
    ran: list[str] = []

    def work() -> dict[str, Any]:
        ran.append("ran")
        return ANSWER

    deadline = time.monotonic() + 30
    answer = RunOnce(client, TABLE).run(MESSAGE, work, deadline)

    assert (answer, ran) == (ANSWER, ["ran"])
    [(_, put), (_, update)] = requests
    key = put["Item"]["id"]["S"]
    assert key.startswith(f"{KEY_PREFIX}#")
    assert JOB not in key  # a hash of the job's type and id
    assert put["Item"]["status"]["S"] == "INPROGRESS"
    # The in-progress record expires with the run's deadline: a delivery after a killed run runs it again
    expiry_ms = int(put["Item"]["in_progress_expiration"]["N"])
    assert abs(expiry_ms - (time.time() + 30) * 1000) < 2000
    assert int(put["Item"]["expiration"]["N"]) >= time.time() + RECORD_LIFETIME_S - 60
    assert update["Key"] == {"id": {"S": key}}
    assert json.loads(update["ExpressionAttributeValues"][":response_data"]["S"]) == ANSWER


def test_a_delivery_after_the_work_ran_gets_the_stored_outcome_and_runs_nothing(dynamodb: StubbedTable) -> None:
    client, stubber = dynamodb
    stubber.add_client_error(
        "put_item",
        "ConditionalCheckFailedException",
        http_status_code=400,
        modeled_fields={"Item": stored("COMPLETED", ANSWER)},
    )

    answer = RunOnce(client, TABLE).run(MESSAGE, lambda: pytest.fail("the work ran again"), None)

    assert answer == ANSWER


def test_a_delivery_while_the_work_runs_elsewhere_comes_back_later(dynamodb: StubbedTable) -> None:
    client, stubber = dynamodb
    running = stored("INPROGRESS", in_progress_until_ms=int((time.time() + 60) * 1000))
    already(stubber, running)

    with pytest.raises(WorkInProgress):
        RunOnce(client, TABLE).run(MESSAGE, lambda: pytest.fail("ran beside the other run"), None)


def test_a_table_that_cannot_be_written_runs_nothing(dynamodb: StubbedTable) -> None:
    client, stubber = dynamodb
    stubber.add_client_error("put_item", "ProvisionedThroughputExceededException", "slow down", 400)

    with pytest.raises(RecordUnavailable) as caught:
        RunOnce(client, TABLE).run(MESSAGE, lambda: pytest.fail("ran without its record"), None)

    assert caught.value.code == "ProvisionedThroughputExceededException"


def test_work_that_did_not_finish_leaves_no_record_so_the_next_delivery_runs_it(dynamodb: StubbedTable) -> None:
    client, stubber = dynamodb
    stubber.add_response("put_item", {})
    stubber.add_response("delete_item", {})

    def interrupted() -> dict[str, Any]:
        raise RuntimeError("details unavailable")

    with pytest.raises(RuntimeError):
        RunOnce(client, TABLE).run(MESSAGE, interrupted, None)


def test_a_record_not_completed_still_returns_the_answer_of_the_work_that_ran(dynamodb: StubbedTable) -> None:
    """The work ran: its answer is reported. A copy delivered later finds the job ended and runs nothing."""
    client, stubber = dynamodb
    stubber.add_response("put_item", {})
    stubber.add_client_error("update_item", "InternalServerError", http_status_code=500)

    assert RunOnce(client, TABLE).run(MESSAGE, lambda: ANSWER, None) == ANSWER


def test_a_conflict_without_the_record_reads_it(dynamodb: StubbedTable) -> None:
    """An endpoint that does not return the record with a failed conditional put: it is read, consistently."""
    client, stubber = dynamodb
    stubber.add_client_error("put_item", "ConditionalCheckFailedException", http_status_code=400)
    stubber.add_response("get_item", {"Item": stored("COMPLETED", ANSWER)})

    assert RunOnce(client, TABLE).run(MESSAGE, lambda: pytest.fail("the work ran again"), None) == ANSWER


def test_a_completed_record_without_an_answer_runs_nothing(dynamodb: StubbedTable) -> None:
    client, stubber = dynamodb
    already(stubber, stored("COMPLETED"))

    with pytest.raises(RecordUnavailable) as caught:
        RunOnce(client, TABLE).run(MESSAGE, lambda: pytest.fail("ran"), None)

    assert caught.value.code == "RecordWithoutAnswer"


def test_an_outcome_can_be_stored_for_a_job_that_ended_elsewhere(dynamodb: StubbedTable) -> None:
    client, stubber = dynamodb
    requests = record_requests(client)
    stubber.add_response("update_item", {})

    RunOnce(client, TABLE).record(MESSAGE, {"stale": "FailedBack"})

    [(operation, update)] = requests
    assert operation == "UpdateItem"
    assert update["ExpressionAttributeValues"][":status"] == {"S": "COMPLETED"}
    stubber.add_client_error("update_item", "AccessDeniedException", http_status_code=400)
    with pytest.raises(RecordUnavailable):
        RunOnce(client, TABLE).record(MESSAGE, {"stale": "FailedBack"})


def test_the_runner_reports_a_stored_outcome_without_reading_details_or_running(
    codepipeline: Stubbed, dynamodb: StubbedTable
) -> None:
    client, stubber = codepipeline
    table, table_stubber = dynamodb
    outcome = {"kind": "success", "outcome": {"summary": "ran before"}}
    table_stubber.add_client_error(
        "put_item",
        "ConditionalCheckFailedException",
        http_status_code=400,
        modeled_fields={"Item": stored("COMPLETED", outcome)},
    )
    stubber.add_client_error(
        "put_job_success_result",
        "InvalidJobStateException",
        http_status_code=400,
        expected_params={"jobId": JOB, "executionDetails": {"summary": "ran before"}},
    )
    runner = WorkRunner(CodePipelineAdapter(client), None, lambda _job: pytest.fail("ran again"), RunOnce(table, TABLE))

    # The report is repeated (an earlier one may have failed); CodePipeline refuses it once the job has ended
    assert runner.run(MESSAGE).result == "stale"


def test_the_runner_records_a_job_codepipeline_no_longer_has_and_never_runs_it(
    codepipeline: Stubbed, dynamodb: StubbedTable
) -> None:
    client, stubber = codepipeline
    table, table_stubber = dynamodb
    requests = record_requests(table)
    table_stubber.add_response("put_item", {})
    stubber.add_client_error("get_job_details", "JobNotFoundException", http_status_code=400)
    table_stubber.add_response("update_item", {})
    runner = WorkRunner(CodePipelineAdapter(client), None, lambda _job: Success(), RunOnce(table, TABLE))

    result = runner.run(MESSAGE)

    assert (result.result, result.error) == ("stale", "JobNotFoundException")
    assert json.loads(requests[1][1]["ExpressionAttributeValues"][":response_data"]["S"]) == {
        "stale": "JobNotFoundException"
    }


@pytest.mark.parametrize(
    ("put", "code"),
    [
        ({"Item": stored("INPROGRESS", in_progress_until_ms=int((time.time() + 600) * 1000))}, "WorkInProgress"),
        (None, "InternalServerError"),
    ],
)
def test_the_runner_sends_the_message_back_when_the_work_cannot_run_now(
    put: dict[str, Any] | None, code: str, codepipeline: Stubbed, dynamodb: StubbedTable
) -> None:
    client, _ = codepipeline
    table, table_stubber = dynamodb
    if put is None:
        table_stubber.add_client_error("put_item", code, http_status_code=500)
    else:
        table_stubber.add_client_error(
            "put_item", "ConditionalCheckFailedException", http_status_code=400, modeled_fields=put
        )
    runner = WorkRunner(CodePipelineAdapter(client), None, lambda _job: pytest.fail("ran"), RunOnce(table, TABLE))

    with pytest.raises(JobNotReported) as caught:
        runner.run(MESSAGE)

    assert caught.value.code == code
