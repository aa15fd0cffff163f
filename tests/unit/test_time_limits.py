"""The work side's time: each job's work runs in a child process stopped at its time limit and is reported once
(still running from its last checkpoint, or failed); a job starts only while the invocation's time holds its
limit and its report, and the others go back to the queue at once; whatever the work does (raise SystemExit,
exit, crash, start processes) ends only its own job."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from botocore.stub import ANY

from codepipeline_worker.shared import deadline as deadline_module
from codepipeline_worker.shared.adapter import CodePipelineAdapter, WorkQueue, worst_case_call_s
from codepipeline_worker.shared.config import load_config
from codepipeline_worker.shared.deadline import Deadline
from codepipeline_worker.shared.errors import ConfigurationError
from codepipeline_worker.shared.isolation import run_in_child
from codepipeline_worker.shared.messages import JobMessage
from codepipeline_worker.shared.observability import metrics
from codepipeline_worker.work import Job, Success
from codepipeline_worker.work import config as worker_config
from codepipeline_worker.work.config import WorkerSettings
from codepipeline_worker.work.handler import lambda_handler
from codepipeline_worker.work.once import RunOnce
from codepipeline_worker.work.runner import JOB_OVERHEAD_S, JobNotStarted, WorkRunner
from tests.conftest import TEST_ENV, FakeLambdaContext, emitted_metrics
from tests.unit.conftest import QUEUE_URL, TABLE, record_requests
from tests.unit.test_worker_handler import details, job_body, record

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_codepipeline import CodePipelineClient

    from codepipeline_worker.shared.isolation import Channel
    from codepipeline_worker.work import Outcome
    from tests.unit.conftest import Stubbed, StubbedQueue, StubbedTable

pytestmark = pytest.mark.usefixtures("clean_metrics")

JOBS = [f"{n:08x}-abcd-4bcd-8bcd-0123456789ab" for n in range(1, 9)]
# One report at its worst, as these tests set it.
REPORT_S = 7.0


def runner(client: CodePipelineClient, work: Callable[[Job], Any], **options: Any) -> WorkRunner:
    return WorkRunner(CodePipelineAdapter(client), None, work, **options)


def job_message(job_id: str) -> JobMessage:
    return JobMessage(job_id=job_id, job_type="custom")


def event(*job_ids: str) -> dict[str, Any]:
    return {"Records": [record(f"m-{n}", job_body(job_id)) for n, job_id in enumerate(job_ids, start=1)]}


class FakeClock:
    """The monotonic clock the invocation's deadline reads, moved on by the work it times."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()

    class Time:
        monotonic = fake.monotonic

    monkeypatch.setattr(deadline_module, "time", Time)
    return fake


# -- no job starts without the time to run and report it -----------------------------------------------------


def test_no_job_starts_when_the_time_left_cannot_hold_its_limit_and_its_report(
    codepipeline: Stubbed, sqs: StubbedQueue, clock: FakeClock, emitted: Callable[[], str]
) -> None:
    # Given 40 s (39 s before the deadline's margin), jobs limited to 5 s that each take 5 s, and one report at
    # its worst taking 7 s: a job starts only with 12 s left
    client, stubber = codepipeline
    details(stubber, *JOBS[:6])
    for _ in range(6):
        stubber.add_response("put_job_success_result", {})
    sqs_client, sqs_stubber = sqs
    sqs_stubber.add_response(
        "change_message_visibility_batch",
        {"Successful": [{"Id": "0"}, {"Id": "1"}], "Failed": []},
        {
            "QueueUrl": QUEUE_URL,
            "Entries": [
                {"Id": "0", "ReceiptHandle": "handle-m-7", "VisibilityTimeout": 0},
                {"Id": "1", "ReceiptHandle": "handle-m-8", "VisibilityTimeout": 0},
            ],
        },
    )
    started: dict[str, float] = {}

    def five_seconds(job: Job) -> Outcome:
        started[job.id] = clock.now
        clock.now += 5
        return Success()

    work = runner(client, five_seconds, time_limit_s=5, worst_call_s=REPORT_S, isolate=False)

    # When a batch of 8 comes
    answer = lambda_handler(
        event(*JOBS), FakeLambdaContext(remaining_ms=40_000), runner=work, queue=WorkQueue(sqs_client, QUEUE_URL)
    )

    # Then six ran, each with its 5 s and a report's 7 s ahead of it; the last two were not started, and go back
    # to the queue at once, visible again for the next invocation
    expires_at = 1000.0 + 39
    assert list(started) == JOBS[:6]
    assert all(expires_at - at >= 5 + REPORT_S for at in started.values())
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m-7"}, {"itemIdentifier": "m-8"}]}
    output = emitted()
    assert output.count('"message":"no time left to start the job: it goes back to the queue"') == 2
    assert emitted_metrics(output)["JobsNotStarted"] == 2.0


def test_a_job_not_started_makes_no_call(codepipeline: Stubbed, clock: FakeClock) -> None:
    client, _ = codepipeline
    calls = record_requests(client)

    with pytest.raises(JobNotStarted) as caught:
        runner(client, lambda _job: Success(), time_limit_s=5).run(
            job_message(JOBS[0]), Deadline(clock.now + 5 + worst_case_call_s(3, 1.0, 2.0) - 0.001)
        )

    assert caught.value.job_id == JOBS[0]
    assert calls == []


def test_a_job_not_started_writes_no_once_only_record(
    codepipeline: Stubbed, dynamodb: StubbedTable, clock: FakeClock
) -> None:
    # Given a runner with once-only records: its reserve holds the record's completion and the report
    client, _ = codepipeline
    table, _ = dynamodb
    calls, writes = record_requests(client), record_requests(table)
    work = runner(client, lambda _job: Success(), once=RunOnce(table, TABLE), time_limit_s=5)
    assert work.reserve_s == 2 * worst_case_call_s(3, 1.0, 2.0)

    # When the time left is just short of the limit and that reserve
    with pytest.raises(JobNotStarted):
        work.run(job_message(JOBS[0]), Deadline(clock.now + 5 + work.reserve_s - 0.001))

    # Then nothing was called, nothing written: the job is as it was, for the next invocation
    assert (calls, writes) == ([], [])


def test_a_job_whose_record_took_its_time_is_not_started_and_its_record_deleted(
    codepipeline: Stubbed, dynamodb: StubbedTable, clock: FakeClock
) -> None:
    # Given the time for one job with 1 s to spare, and a once-only record whose write takes 6 s: what is left
    # after it cannot hold any work with the calls after it
    client, _ = codepipeline
    table, table_stubber = dynamodb
    table_stubber.add_response("put_item", {})
    table_stubber.add_response("delete_item", {})
    table.meta.events.register("after-call.dynamodb.PutItem", lambda **_: setattr(clock, "now", clock.now + 6))
    calls, writes = record_requests(client), record_requests(table)
    work = runner(client, lambda _job: pytest.fail("started"), once=RunOnce(table, TABLE), time_limit_s=5)

    # When the job comes
    with pytest.raises(JobNotStarted):
        work.run(job_message(JOBS[0]), Deadline(clock.now + 5 + work.reserve_s + 1))

    # Then it was not started, nothing asked of CodePipeline, and its record is gone: the next delivery runs it
    assert calls == []
    assert [operation for operation, _ in writes] == ["PutItem", "DeleteItem"]


def test_work_stopped_at_its_limit_is_stored_and_reported_once_and_a_redelivery_runs_nothing(
    codepipeline: Stubbed, dynamodb: StubbedTable, tmp_path: Path
) -> None:
    # Given work that hangs, limited to 1 s, on a runner with once-only records
    client, stubber = codepipeline
    table, table_stubber = dynamodb
    details(stubber, JOBS[0])
    stubber.add_response("put_job_failure_result", {}, {"jobId": JOBS[0], "failureDetails": ANY})
    table_stubber.add_response("put_item", {})
    table_stubber.add_response("update_item", {})
    writes = record_requests(table)
    runs = tmp_path / "runs"

    def hangs(job: Job) -> Outcome:
        with runs.open("a") as marks:
            marks.write(job.id + "\n")
        return hang(job)

    work = runner(client, hangs, once=RunOnce(table, TABLE), time_limit_s=1)

    # When it runs, is stopped and reported
    assert work.run(job_message(JOBS[0])).result == "failed"

    # Then its failure was stored with its record before the report
    [(_, put), (_, update)] = writes
    stored_answer = json.loads(update["ExpressionAttributeValues"][":response_data"]["S"])
    assert stored_answer["kind"] == "failure"
    assert stored_answer["outcome"]["message"].startswith("The work did not finish within its time limit of 1 s")
    # And a redelivery (its report lost, say) reports that failure again and runs nothing
    table_stubber.add_client_error(
        "put_item",
        "ConditionalCheckFailedException",
        http_status_code=400,
        modeled_fields={
            "Item": {**put["Item"], "status": {"S": "COMPLETED"}, "data": {"S": json.dumps(stored_answer)}}
        },
    )
    stubber.add_client_error("put_job_failure_result", "InvalidJobStateException", http_status_code=400)
    assert work.run(job_message(JOBS[0])).result == "stale"
    assert runs.read_text().split() == [JOBS[0]]


def test_a_function_whose_time_cannot_hold_one_job_fails_the_invocation_and_says_why(
    codepipeline: Stubbed, sqs: StubbedQueue, clock: FakeClock, emitted: Callable[[], str]
) -> None:
    # Given 10 s for a job limited to 5 s, whose report may take 7 s
    client, _ = codepipeline
    sqs_client, sqs_stubber = sqs
    sqs_stubber.add_response("change_message_visibility_batch", {"Successful": [{"Id": "0"}], "Failed": []})
    work = runner(client, lambda _job: Success(), time_limit_s=5, worst_call_s=REPORT_S, isolate=False)

    # Then the invocation fails (an alarm on the function's errors fires), and the log says what to change
    with pytest.raises(BatchProcessingError):
        lambda_handler(
            event(JOBS[0]), FakeLambdaContext(remaining_ms=10_000), runner=work, queue=WorkQueue(sqs_client, QUEUE_URL)
        )
    assert "the function's time cannot hold one job" in emitted()


def first_of_two(
    client: CodePipelineClient, sqs_client: Any, clock: FakeClock, *, takes_s: float, limit_s: float, budget_ms: int
) -> dict[str, Any]:
    """A batch of two jobs whose first takes `takes_s` (limited to `limit_s`; a report may take 7 s), in
    `budget_ms`: what the handler answers."""

    def work(job: Job) -> Outcome:
        clock.now += takes_s
        return Success()

    answer: dict[str, Any] = lambda_handler(
        event(JOBS[0], JOBS[1]),
        FakeLambdaContext(remaining_ms=budget_ms),
        runner=runner(client, work, time_limit_s=limit_s, worst_call_s=REPORT_S, isolate=False),
        queue=WorkQueue(sqs_client, QUEUE_URL),
    )
    return answer


def test_without_time_for_the_release_the_jobs_not_started_wait_for_their_visibility_timeout(
    codepipeline: Stubbed, sqs: StubbedQueue, clock: FakeClock
) -> None:
    # Given 21 s, and a job (limited to 14 s, plus 7 s to report) that overruns and leaves 2 s: not enough for the
    # next one, nor for a release at its worst (3 s with the settings' defaults)
    client, stubber = codepipeline
    details(stubber, JOBS[0])
    stubber.add_response("put_job_success_result", {})
    sqs_client, _ = sqs  # no call expected

    answer = first_of_two(client, sqs_client, clock, takes_s=19, limit_s=14, budget_ms=22_000)

    assert answer == {"batchItemFailures": [{"itemIdentifier": "m-2"}]}


def test_a_release_that_fails_changes_nothing_but_the_log(
    codepipeline: Stubbed, sqs: StubbedQueue, clock: FakeClock, emitted: Callable[[], str]
) -> None:
    # Given 24 s, and a job (limited to 12 s, plus 7 s to report) that leaves 12 s: not enough for the next one
    client, stubber = codepipeline
    details(stubber, JOBS[0])
    stubber.add_response("put_job_success_result", {})
    sqs_client, sqs_stubber = sqs
    sqs_stubber.add_client_error("change_message_visibility_batch", "AWS.SimpleQueueService.NonExistentQueue")

    answer = first_of_two(client, sqs_client, clock, takes_s=12, limit_s=12, budget_ms=25_000)

    assert answer == {"batchItemFailures": [{"itemIdentifier": "m-2"}]}
    assert "jobs not started were not released" in emitted()


def test_the_default_time_limit_shares_the_functions_time_among_a_full_batch(clock: FakeClock) -> None:
    client: Any = None
    default = WorkRunner(client, None, lambda _job: Success())
    deadline = Deadline(clock.now + 299)

    # 299 s, less one report at its worst (12 s with 3 attempts), for 10 jobs, less each one's overhead
    assert default.time_limit_for(deadline) == pytest.approx(
        (299 - worst_case_call_s(3, 1.0, 2.0)) / 10 - JOB_OVERHEAD_S
    )
    assert WorkRunner(client, None, lambda _job: Success(), batch_size=1).time_limit_for(deadline) == pytest.approx(
        299 - worst_case_call_s(3, 1.0, 2.0) - JOB_OVERHEAD_S
    )
    assert WorkRunner(client, None, lambda _job: Success(), time_limit_s=60).time_limit_for(deadline) == 60
    assert default.time_limit_for(None) is None  # no deadline, no limit
    assert default.time_limit_for(Deadline(clock.now + 10)) == 0.0  # nothing fits: no job starts


def test_the_work_sees_its_time_limit(codepipeline: Stubbed) -> None:
    client, stubber = codepipeline
    details(stubber, JOBS[0])
    stubber.add_response("put_job_success_result", {}, {"jobId": JOBS[0], "executionDetails": {"summary": ANY}})
    calls = record_requests(client)

    def timed(job: Job) -> Outcome:
        return Success(summary=json.dumps([job.time_limit_s, job.remaining_time_s()]))

    lambda_handler(
        event(JOBS[0]), FakeLambdaContext(remaining_ms=60_000), runner=runner(client, timed, time_limit_s=20)
    )

    [(_, params)] = [call for call in calls if call[0] != "GetJobDetails"]
    limit, remaining = json.loads(params["executionDetails"]["summary"])
    assert limit == 20
    assert 0 < remaining <= 20


# -- work that overruns its limit ------------------------------------------------------------------------------


def hang(job: Job) -> Outcome:
    time.sleep(600)
    return Success()


def test_work_that_hangs_is_stopped_at_its_time_limit_and_the_job_failed_and_the_batch_goes_on(
    codepipeline: Stubbed, emitted: Callable[[], str]
) -> None:
    client, stubber = codepipeline
    message = (
        "The work did not finish within its time limit of 5 s and was stopped; it recorded no checkpoint to go on from."
    )
    stubber.add_response(
        "put_job_failure_result", {}, {"jobId": JOBS[0], "failureDetails": {"type": "JobFailed", "message": message}}
    )
    stubber.add_response("put_job_success_result", {}, {"jobId": JOBS[1]})
    details(stubber, JOBS[0], JOBS[1])

    def first_hangs(job: Job) -> Outcome:
        return hang(job) if job.id == JOBS[0] else Success()

    answer = lambda_handler(
        event(JOBS[0], JOBS[1]), FakeLambdaContext(), runner=runner(client, first_hangs, time_limit_s=5)
    )

    assert answer == {"batchItemFailures": []}
    output = emitted()
    assert '"message":"the work reached its time limit and was stopped"' in output
    assert emitted_metrics(output)["WorkTimeouts"] == 1.0


def test_work_stopped_at_its_limit_continues_from_its_last_checkpoint(codepipeline: Stubbed) -> None:
    # The checkpoint is the work's first step, then it hangs; the limit leaves it 5 s to get there
    client, stubber = codepipeline
    details(stubber, JOBS[0])
    stubber.add_response(
        "put_job_success_result",
        {},
        {
            "jobId": JOBS[0],
            "continuationToken": "copied:3",
            "executionDetails": {"summary": "copied 3 of 5", "percentComplete": 60},
        },
    )

    def copy(job: Job) -> Outcome:
        job.checkpoint("copied:3", percent_complete=60, summary="copied 3 of 5")
        return hang(job)

    result = runner(client, copy, time_limit_s=5).run(job_message(JOBS[0]))

    assert result.result == "continued"


def test_a_checkpoint_is_checked_where_the_work_makes_it(codepipeline: Stubbed) -> None:
    client, stubber = codepipeline
    details(stubber, JOBS[0])
    stubber.add_response("put_job_failure_result", {}, {"jobId": JOBS[0], "failureDetails": ANY})
    calls = record_requests(client)

    def bad(job: Job) -> Outcome:
        job.checkpoint("")
        return Success()

    runner(client, bad, time_limit_s=30).run(job_message(JOBS[0]))

    [(_, params)] = [call for call in calls if call[0] != "GetJobDetails"]
    assert params["failureDetails"]["message"].startswith("The work function returned an invalid StillRunning")


def test_what_the_work_started_is_stopped_with_it(codepipeline: Stubbed) -> None:
    client, stubber = codepipeline
    details(stubber, JOBS[0])
    stubber.add_response(
        "put_job_success_result", {}, {"jobId": JOBS[0], "continuationToken": ANY, "executionDetails": ANY}
    )
    calls = record_requests(client)

    def spawn(job: Job) -> Outcome:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        job.checkpoint(str(child.pid))
        return hang(job)

    runner(client, spawn, time_limit_s=5).run(job_message(JOBS[0]))

    [(_, params)] = [call for call in calls if call[0] != "GetJobDetails"]
    pid = int(params["continuationToken"])
    assert wait_until(lambda: not alive(pid))


def alive(pid: int) -> bool:
    """Running, or stopped: not gone, and not a zombie left for init to reap."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in {"Z", "X"}


def wait_until(condition: Callable[[], bool], timeout_s: float = 60.0) -> bool:
    """Poll the condition until it holds; the timeout only bounds a failing test."""
    ends = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > ends:
            return False
        time.sleep(0.02)
    return True


class Gate:
    """A details call that waits until the test opens it."""

    def __init__(self) -> None:
        self.opened = threading.Event()
        self.calls = 0

    def job_details(self, job_id: str) -> Any:
        self.calls += 1
        self.opened.wait(60)
        return {"actionConfiguration": {"configuration": {"Url": "https://example.com"}}}


def test_a_details_call_counts_within_the_time_limit(codepipeline: Stubbed) -> None:
    # Given CodePipeline does not answer the details call the work waits for
    client, stubber = codepipeline
    stubber.add_response("put_job_failure_result", {}, {"jobId": JOBS[0], "failureDetails": ANY})
    calls = record_requests(client)
    work = runner(client, lambda job: Success(summary=job.configuration["Url"]), time_limit_s=1)
    gate = Gate()
    work._codepipeline.job_details = gate.job_details  # type: ignore[method-assign]

    try:
        result = work.run(job_message(JOBS[0]))
    finally:
        gate.opened.set()

    # Then the job was stopped at its limit all the same, and failed saying so
    assert (result.result, gate.calls) == ("failed", 1)
    [(_, params)] = [call for call in calls if call[0] != "GetJobDetails"]
    assert "time limit of 1 s" in params["failureDetails"]["message"]


# -- whatever the work does ends only its job --------------------------------------------------------------


def raises(error: BaseException) -> Callable[[Job], Outcome]:
    def work(job: Job) -> Outcome:
        raise error

    return work


def exits(job: Job) -> Outcome:
    os._exit(3)


def killed(job: Job) -> Outcome:
    os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's out-of-memory killer does
    return hang(job)


@pytest.mark.parametrize(
    ("isolate", "work", "message"),
    [
        (True, raises(SystemExit(2)), "The work function raised SystemExit; the worker's log has where."),
        (False, raises(SystemExit(2)), "The work function raised SystemExit; the worker's log has where."),
        (True, raises(KeyboardInterrupt()), "The work function raised KeyboardInterrupt; the worker's log has where."),
        (False, raises(KeyboardInterrupt()), "The work function raised KeyboardInterrupt; the worker's log has where."),
        (True, raises(GeneratorExit()), "The work function raised GeneratorExit; the worker's log has where."),
        (False, raises(GeneratorExit()), "The work function raised GeneratorExit; the worker's log has where."),
        (True, exits, "The work ended without a result (exit code 3); the worker's log may say why."),
        (True, killed, "The work ended without a result (killed by SIGKILL); the worker's log may say why."),
    ],
    ids=[
        "SystemExit",
        "SystemExit-in-process",
        "KeyboardInterrupt",
        "KeyboardInterrupt-in-process",
        "GeneratorExit",
        "GeneratorExit-in-process",
        "os._exit",
        "SIGKILL",
    ],
)
def test_whatever_the_work_does_fails_only_its_job_once(
    isolate: bool, work: Callable[[Job], Outcome], message: str, codepipeline: Stubbed
) -> None:
    client, stubber = codepipeline
    stubber.add_response(
        "put_job_failure_result", {}, {"jobId": JOBS[0], "failureDetails": {"type": "JobFailed", "message": message}}
    )
    stubber.add_response("put_job_success_result", {}, {"jobId": JOBS[1]})
    details(stubber, JOBS[0], JOBS[1])

    def first_fails(job: Job) -> Outcome:
        return work(job) if job.id == JOBS[0] else Success()

    answer = lambda_handler(
        event(JOBS[0], JOBS[1]),
        FakeLambdaContext(),
        runner=runner(client, first_fails, isolate=isolate, time_limit_s=30),
    )

    assert answer == {"batchItemFailures": []}


def test_an_outcome_of_a_class_of_the_work_crosses_the_process(codepipeline: Stubbed) -> None:
    client, stubber = codepipeline
    details(stubber, JOBS[0])
    stubber.add_response(
        "put_job_success_result", {}, {"jobId": JOBS[0], "executionDetails": {"summary": "from a subclass"}}
    )

    class Done(Success):  # defined in a function: pickle cannot name it
        pass

    result = runner(client, lambda _job: Done(summary="from a subclass")).run(job_message(JOBS[0]))

    assert result.result == "succeeded"


def test_the_works_own_metrics_are_published_once_and_the_parents_by_the_parent(
    codepipeline: Stubbed, capfd: pytest.CaptureFixture[str]
) -> None:
    client, stubber = codepipeline
    details(stubber, JOBS[0])
    stubber.add_response("put_job_success_result", {})
    metrics.add_metric(name="PendingInTheParent", unit="Count", value=1)

    def measured(job: Job) -> Outcome:
        metrics.add_metric(name="FromTheWork", unit="Count", value=7)
        return Success()

    runner(client, measured).run(job_message(JOBS[0]))
    child_output = capfd.readouterr().out
    metrics.flush_metrics()
    parent_output = capfd.readouterr().out

    assert emitted_metrics(child_output) == {"FromTheWork": 7.0}
    assert emitted_metrics(parent_output) == {"PendingInTheParent": 1.0, "JobsSucceeded": 1.0}


# -- the child process ---------------------------------------------------------------------------------------


def test_the_child_is_killed_and_reaped_whatever_the_parent_meets() -> None:
    pids: list[int] = []

    def serve(request: Any) -> Any:
        pids.append(request)
        raise KeyboardInterrupt

    def child(channel: Channel) -> None:
        channel.tell(os.getpid())
        time.sleep(600)

    with pytest.raises(KeyboardInterrupt):
        run_in_child(child, None, serve)

    [pid] = pids
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reaped already: no zombie left behind


def test_a_result_that_cannot_cross_the_process_is_a_child_that_died() -> None:
    ended = run_in_child(lambda _channel: threading.Lock(), 30)  # a lock cannot be pickled

    assert (ended.how, ended.status) == ("died", "exit code 70")


def test_a_child_asks_and_the_parent_answers() -> None:
    answered: list[tuple[Any, Any]] = []

    ended = run_in_child(lambda channel: channel.ask(20) + 1, 30, lambda n: n * 2, lambda *pair: answered.append(pair))

    assert (ended.how, ended.value) == ("returned", 41)
    assert answered == [(20, 40)]


# -- settings ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variables", "problem"),
    [
        ({"JOB_TIME_LIMIT_S": "901"}, "JOB_TIME_LIMIT_S: Input should be less than or equal to 900"),
        ({"JOB_TIME_LIMIT_S": "-1"}, "JOB_TIME_LIMIT_S: Input should be greater than or equal to 0"),
        ({"WORK_BATCH_SIZE": "11"}, "WORK_BATCH_SIZE: Input should be less than or equal to 10"),
        ({"JOB_ISOLATION": "thread"}, "JOB_ISOLATION: Input should be 'process' or 'none'"),
        ({"JOB_QUEUE_URL": "not a url"}, "JOB_QUEUE_URL: String should match pattern"),
    ],
)
def test_bad_time_settings_fail_the_cold_start(variables: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigurationError, match=problem):
        load_config(WorkerSettings, {**TEST_ENV, **variables})


def test_process_isolation_needs_fork(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker_config, "fork_available", lambda: False)

    with pytest.raises(ConfigurationError, match=r"JOB_ISOLATION=process needs os\.fork"):
        load_config(WorkerSettings, TEST_ENV)
    assert load_config(WorkerSettings, {**TEST_ENV, "JOB_ISOLATION": "none"}).job_isolation == "none"


def test_the_runner_takes_its_limits_from_the_settings() -> None:
    settings = load_config(
        WorkerSettings, {**TEST_ENV, "JOB_TIME_LIMIT_S": "42", "JOB_ISOLATION": "none", "AWS_MAX_ATTEMPTS": "1"}
    )

    built = WorkRunner.from_settings(settings)

    # Its reserve: completing the job's once-only record and its report, each one attempt at its worst
    one_call_s = worst_case_call_s(1, settings.connect_timeout_s, settings.read_timeout_s)
    assert (built.time_limit_for(None), built._isolate, built.reserve_s) == (42, False, 2 * one_call_s)
