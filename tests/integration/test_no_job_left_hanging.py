"""No pipeline left hanging, over real HTTP on 127.0.0.1 (the local CodePipeline endpoint, moto's SQS with a
redrive policy): jobs an invocation has no time for come back at once and run once each; work that hangs or
exits ends its own job; a job whose work keeps failing reaches the dead-letter queue and is failed back once,
named as a configuration error when the work function cannot start."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import pytest

from codepipeline_local import Faults, LocalCodePipeline
from codepipeline_worker.dead_letter import handler as dead_letter_handler
from codepipeline_worker.dead_letter.config import DeadLetterSettings
from codepipeline_worker.dead_letter.service import DeadLetterService
from codepipeline_worker.shared.adapter import open_work_queue
from codepipeline_worker.shared.config import load_config
from codepipeline_worker.shared.errors import ConfigurationError
from codepipeline_worker.work import Job, Outcome, Success
from codepipeline_worker.work.config import WorkerSettings
from codepipeline_worker.work.consume import consume_once
from codepipeline_worker.work.runner import WorkRunner
from tests.conftest import TEST_ENV
from tests.integration.conftest import (
    CLIENT_ID,
    CUSTOM,
    EVENT_TOKEN,
    MAX_RECEIVE_COUNT,
    REDELIVERY_WAIT_S,
    events,
    last_event,
    partner_job,
    poll,
)

if TYPE_CHECKING:
    from pathlib import Path

    from tests.integration.conftest import AcknowledgerFactory, RunnerFactory, WorkQueues, WorkSideFactory

# The work's runs, one line per run, appended by each job's child process.
RUNS_FILE = "runs.log"


def work_runs(directory: Path) -> list[str]:
    path = directory / RUNS_FILE
    return path.read_text().split() if path.exists() else []


def noting(directory: Path, seconds: float = 0.0) -> Any:
    """A work function that notes each run (in a file: it runs in a child process), takes `seconds`, succeeds."""

    def work(job: Job) -> Outcome:
        with (directory / RUNS_FILE).open("a") as runs:
            runs.write(job.id + "\n")
        if seconds:
            import time

            time.sleep(seconds)
        return Success(summary="done")

    return work


# -- the invocation's time --------------------------------------------------------------------------------------


def test_jobs_an_invocation_has_no_time_for_come_back_at_once_and_run_once_each(
    endpoint: LocalCodePipeline,
    work_queue: WorkQueues,
    tmp_path: Path,
    *,
    make_acknowledger: AcknowledgerFactory,
    make_runner: RunnerFactory,
    work_side: WorkSideFactory,
) -> None:
    # Given four jobs of 4 s each, limited to 6 s, whose report may take 7 s (one attempt): a job starts only with
    # 13 s left. An invocation has 16 s: it starts one job (with up to 3 s to spare), never a second, and the 7 s a
    # release of the others may take are left after the first (unless it takes 5 s more than its 4)
    # (Each round gives the last job back once more: the queue may receive it 4 times before setting it aside.)
    jobs = [endpoint.store.create_job(CUSTOM) for _ in range(4)]
    poll(make_acknowledger())
    work_queue.set_max_receive_count(len(jobs))
    runner = make_runner(noting(tmp_path, 4.0), AWS_MAX_ATTEMPTS="1", JOB_TIME_LIMIT_S="6")
    worker = work_side(runner, budget_s=17)

    # When the work side takes the four in one batch
    first = worker.consume()

    # Then it ran at most one (the old handler ran all four, 16 s of work in 16 s with nothing left to report), and
    # gave the others back at once: the next receive, which waits for nothing, gets them (the queue's visibility
    # timeout is 1 s)
    assert first[0] == 4
    assert first[1] >= 3
    rounds = [first]
    while work_queue.depth() != (0, 0) and len(rounds) < 20:
        rounds.append(worker.consume())
        assert rounds[-1][0] > 0, rounds  # visible again at once
    # And each job ran exactly once and succeeded
    assert sorted(work_runs(tmp_path)) == sorted(jobs)
    assert {endpoint.store.job(job_id)["status"] for job_id in jobs} == {"Succeeded"}
    assert all(events(endpoint, job_id).count("succeeded") == 1 for job_id in jobs)
    assert work_queue.dead_letters() == []


def behaves(job: Job) -> Outcome:
    """What the job's configuration says: Behave is hang, exit or succeed."""
    match job.configuration.get("Behave"):
        case "hang":
            import time

            time.sleep(600)
        case "exit":
            sys.exit("bad arguments")
    return Success(summary="done")


def test_work_that_hangs_or_exits_ends_its_own_job_once_and_the_batch_goes_on(
    endpoint: LocalCodePipeline,
    work_queue: WorkQueues,
    *,
    make_acknowledger: AcknowledgerFactory,
    make_runner: RunnerFactory,
    work_side: WorkSideFactory,
) -> None:
    hangs = endpoint.store.create_job(CUSTOM, configuration={"Behave": "hang"})
    exits = endpoint.store.create_job(CUSTOM, configuration={"Behave": "exit"})
    succeeds = partner_job(endpoint, {"Behave": "succeed"})
    poll(make_acknowledger())
    worker = work_side(make_runner(behaves, JOB_TIME_LIMIT_S="5"))

    assert worker.consume() == (3, 0)

    assert last_event(endpoint, hangs) == {
        "event": "failed",
        "status": "Failed",
        "failureType": "JobFailed",
        "failureMessage": (
            "The work did not finish within its time limit of 5 s and was stopped; "
            "it recorded no checkpoint to go on from."
        ),
    }
    assert last_event(endpoint, exits)["failureMessage"] == (
        "The work function raised SystemExit; the worker's log has where."
    )
    assert endpoint.store.job(succeeds)["status"] == "Succeeded"
    calls = endpoint.stats()["calls"]
    assert (calls["PutJobFailureResult"], calls["PutThirdPartyJobSuccessResult"]) == (2, 1)
    assert work_queue.is_empty()


# -- dead letters -------------------------------------------------------------------------------------------------


class DeadLetters:
    """The dead-letter handler's Lambda, fed from the work queue's dead-letter queue by `consume_once`."""

    def __init__(self, work_queue: WorkQueues, service: DeadLetterService) -> None:
        self.queue = open_work_queue(work_queue.dlq_url, load_config(WorkerSettings, TEST_ENV))
        self.service = service
        self.answers: list[dict[str, Any]] = []

    def consume(self) -> tuple[int, int]:
        def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
            answer: dict[str, Any] = dead_letter_handler.lambda_handler(event, context, service=self.service)
            self.answers.append(answer)
            return answer

        return consume_once(self.queue, handler, wait_s=0)


@pytest.fixture
def dead_letters(
    monkeypatch: pytest.MonkeyPatch,
    endpoint: LocalCodePipeline,
    secrets_url: str,
    secret_id: str,
    *,
    work_queue: WorkQueues,
    job_table: str,
) -> Any:
    def factory(
        work_function: str = "codepipeline_worker.examples.url_gate:check_url", secret: str | None = None
    ) -> DeadLetters:
        monkeypatch.setenv("AWS_ENDPOINT_URL_CODEPIPELINE", endpoint.url)
        monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", secrets_url)
        monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", secrets_url)
        variables = {
            "CLIENT_TOKEN_SECRET_ID": secret or secret_id,
            "WORK_FUNCTION": work_function,
            "JOB_TABLE_NAME": job_table,
        }
        settings = load_config(DeadLetterSettings, {**TEST_ENV, **variables})
        return DeadLetters(work_queue, DeadLetterService.from_settings(settings))

    return factory


def until_dead_lettered(consume: Any, work_queue: WorkQueues) -> list[tuple[int, int]]:
    """Receive, as Lambda's event source does, until the queue has moved the messages to its dead-letter queue:
    a message is received MAX_RECEIVE_COUNT times, and the next receive moves it."""
    rounds = [consume()]
    while work_queue.depth() != (0, 0) and len(rounds) < 10:
        rounds.append(consume(REDELIVERY_WAIT_S))
    return rounds


def test_a_job_whose_work_keeps_failing_is_dead_lettered_and_failed_back_once(
    endpoint: LocalCodePipeline,
    work_queue: WorkQueues,
    tmp_path: Path,
    *,
    make_acknowledger: AcknowledgerFactory,
    make_runner: RunnerFactory,
    work_side: WorkSideFactory,
    dead_letters: Any,
) -> None:
    # Given a job whose result cannot be reported: every PutJobSuccessResult is throttled, and not retried
    job_id = endpoint.store.create_job(CUSTOM)
    poll(make_acknowledger())
    endpoint.set_faults(Faults(throttle=1.0, operations=("PutJobSuccessResult",)))
    worker = work_side(make_runner(noting(tmp_path), AWS_MAX_ATTEMPTS="1"))

    # When the work queue has delivered it MAX_RECEIVE_COUNT times, each delivery ending unreported: the work ran
    # once, its outcome kept in its once-only record, and each later delivery only tried to report it again
    rounds = until_dead_lettered(lambda wait_s=0: worker.consume(wait_s), work_queue)
    assert rounds[:MAX_RECEIVE_COUNT] == [(1, 1)] * MAX_RECEIVE_COUNT
    assert work_runs(tmp_path) == [job_id]
    assert endpoint.store.job(job_id)["status"] == "InProgress"  # it would hold its pipeline until it timed out
    assert work_queue.depth(work_queue.dlq_url) == (1, 0)

    # Then the dead-letter handler fails it back, once, saying why and how often it was tried
    handler = dead_letters()
    assert handler.consume() == (1, 0)
    assert last_event(endpoint, job_id) == {
        "event": "failed",
        "status": "Failed",
        "failureType": "JobFailed",
        "failureMessage": (
            f"The job worker did not complete this job: its message was delivered {MAX_RECEIVE_COUNT} times without "
            "a result (each time the work could not report, was stopped by the function's timeout, or had no time "
            "to start) and was set aside. The work function's log has each attempt under this job's id."
        ),
    }
    assert work_queue.dead_letters() == []

    # And a dead letter delivered again finds the job ended: done, not failed twice
    work_queue.send(worker.bodies[0], work_queue.dlq_url)
    assert handler.consume() == (1, 0)
    assert handler.answers[-1] == {"batchItemFailures": []}
    assert events(endpoint, job_id).count("failed") == 1
    assert endpoint.stats()["calls"]["PutJobFailureResult"] == 2  # the second refused: the job had ended

    # And a late copy of its message on the work queue (a hand-off sent again) runs nothing: the dead-letter
    # handler marked the job's once-only record done
    endpoint.set_faults(Faults())
    work_queue.send(worker.bodies[0])
    assert worker.consume() == (1, 0)
    assert work_runs(tmp_path) == [job_id]
    assert worker.answers[-1] == {"batchItemFailures": []}
    assert events(endpoint, job_id).count("failed") == 1


def test_an_unimportable_work_function_fails_its_jobs_back_as_a_configuration_error(
    endpoint: LocalCodePipeline,
    work_queue: WorkQueues,
    *,
    secret_id: str,
    make_acknowledger: AcknowledgerFactory,
    work_side: WorkSideFactory,
    dead_letters: Any,
) -> None:
    # Given a deployment whose WORK_FUNCTION names a module that is not in the package
    broken = "mytool_not_shipped.deploy:run"
    custom = endpoint.store.create_job(CUSTOM)
    partner = partner_job(endpoint)
    poll(make_acknowledger())
    settings = load_config(WorkerSettings, {**TEST_ENV, "WORK_FUNCTION": broken, "CLIENT_TOKEN_SECRET_ID": secret_id})
    with pytest.raises(ConfigurationError) as cold_start:
        WorkRunner.from_settings(settings)
    problem = "WORK_FUNCTION: module mytool_not_shipped.deploy cannot be imported (ModuleNotFoundError)"
    assert str(cold_start.value) == f"invalid configuration: {problem}"

    # When every invocation fails at its cold start, as Lambda's does, until the queue sets the messages aside
    def cold_start_fails(event: dict[str, Any], context: Any) -> dict[str, Any]:
        raise cold_start.value

    worker = work_side(WorkRunner(None, None, lambda _job: Success()))  # type: ignore[arg-type]
    until_dead_lettered(lambda wait_s=0: consume_once(worker.queue, cold_start_fails, wait_s=wait_s), work_queue)

    # Then the dead-letter handler fails both jobs back, naming the configuration error
    assert dead_letters(broken).consume() == (2, 0)
    expected = (
        f"The work function cannot start: invalid configuration: {problem}. This job's message was delivered "
        f"{MAX_RECEIVE_COUNT} times without a result, then set aside. Fix the work function's configuration, then "
        "retry the action."
    )
    for job_id in (custom, partner):
        entry = last_event(endpoint, job_id)
        assert (entry["status"], entry["failureType"], entry["failureMessage"]) == (
            "Failed",
            "ConfigurationError",
            expected,
        )
    assert endpoint.stats()["calls"]["PutThirdPartyJobFailureResult"] == 1
    assert work_queue.is_empty()
    assert work_queue.dead_letters() == []
    assert EVENT_TOKEN not in json.dumps(endpoint.store.jobs())


def test_a_partner_dead_letter_without_its_token_waits_on_the_dead_letter_queue(
    endpoint: LocalCodePipeline, work_queue: WorkQueues, *, empty_secret_id: str, dead_letters: Any
) -> None:
    # Given a partner job's dead letter, and a dead-letter handler whose secret has no token for its client
    job_id = partner_job(endpoint)
    body = json.dumps({"version": 1, "jobId": job_id, "jobType": "thirdParty", "clientId": CLIENT_ID})
    work_queue.send(body, work_queue.dlq_url)

    # Then it is not failed back now, and stays on the dead-letter queue to be tried again
    assert dead_letters(secret=empty_secret_id).consume() == (1, 1)
    assert endpoint.stats()["calls"] == {}
    assert sum(work_queue.depth(work_queue.dlq_url)) == 1  # kept, to be tried again
