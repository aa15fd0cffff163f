"""Exactly once, over real HTTP: the findings of the exactly-once issue, each reproduced against the local
endpoint and moto (SQS, DynamoDB) and shown fixed. A proxy in front of moto's SQS loses answers after the message
was stored; the work function counts its runs."""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from chaos.proxy import FaultyProxy, ProxyFaults
from codepipeline_local import Faults, LocalCodePipeline
from codepipeline_local.model import ServiceError
from codepipeline_worker.acknowledger.handler import lambda_handler
from codepipeline_worker.shared.adapter import open_work_queue
from codepipeline_worker.shared.config import CommonSettings, load_config
from codepipeline_worker.shared.errors import HandoffPending, JobError
from codepipeline_worker.shared.messages import JobMessage
from codepipeline_worker.work import Job, Outcome, Success
from tests.conftest import TEST_ENV, FakeLambdaContext, closed_port, load_event
from tests.integration.conftest import (
    CLIENT_ID,
    CUSTOM,
    EVENT_TOKEN,
    PARTNER,
    AcknowledgerFactory,
    RunnerFactory,
    WorkQueues,
    WorkSideFactory,
    poll,
    record_requests,
)

if TYPE_CHECKING:
    from codepipeline_worker.acknowledger.service import JobService

# The acknowledger's calls in these tests: 3 attempts, 0.2 s to connect, 0.5 s to read. The proxy holds a late
# answer back 1.5 s: longer than the read timeout, so every attempt's answer is lost though its message landed.
QUICK = {"CONNECT_TIMEOUT_S": "0.2", "READ_TIMEOUT_S": "0.5"}


class Runs:
    """A work function that counts its runs per job: in a file, since each job's work runs in a child process."""

    def __init__(self) -> None:
        descriptor, name = tempfile.mkstemp(prefix="runs-")
        os.close(descriptor)
        self._path = Path(name)

    def __call__(self, job: Job) -> Outcome:
        with self._path.open("a") as runs:  # one short append per run: lines do not interleave
            runs.write(job.id + "\n")
        return Success(summary="ran")

    @property
    def count(self) -> Counter[str]:
        return Counter(self._path.read_text().split())


def invoke(event: Any, worker: JobService, remaining_ms: int = 180_000) -> Any:
    return lambda_handler(event, FakeLambdaContext(remaining_ms=remaining_ms), service=worker)


def drain(work: Any, rounds: int = 3) -> None:
    """Run the work function on what the queue holds, until a receive finds nothing."""
    for _ in range(rounds):
        received, _ = work.consume()
        if not received:
            return


def answers_lost(fault: str) -> ProxyFaults:
    """Every call reaches its service and its answer is lost: held past the read timeout (`slow`), or reset."""
    return ProxyFaults(slow=1.0 if fault == "slow" else 0.0, reset=1.0 if fault == "reset" else 0.0, slow_s=1.5)


def reconciled_and_run_once(
    endpoint: LocalCodePipeline,
    job_id: str,
    make_acknowledger: AcknowledgerFactory,
    make_runner: RunnerFactory,
    work_side: WorkSideFactory,
) -> None:
    """A poll (a retry, or the next tick): its reconciler queues the job, whose work then runs once."""
    retry = poll(make_acknowledger(ACTION_TYPES=CUSTOM, **QUICK))
    runs = Runs()
    drain(work_side(make_runner(runs)))
    assert retry["reconciled"]["queued"] == 1
    assert runs.count == {job_id: 1}
    assert endpoint.store.job(job_id)["status"] == "Succeeded"


# -- 1. an ambiguous send is never failed back ----------------------------------------------------------------


@pytest.mark.parametrize("fault", ["slow", "reset"])
def test_a_send_whose_answer_is_lost_after_sqs_took_it_is_not_failed_back_and_runs_once(  # noqa: PLR0917 - its fixtures
    fault: str,
    endpoint: LocalCodePipeline,
    secrets_url: str,
    work_queue: WorkQueues,
    make_acknowledger: AcknowledgerFactory,
    make_runner: RunnerFactory,
    work_side: WorkSideFactory,
) -> None:
    faults = answers_lost(fault)
    with FaultyProxy(secrets_url, faults) as proxy:
        # Given every SendMessage reaches SQS, and its answer is lost (held past the read timeout, or reset)
        job_id = endpoint.store.create_job(CUSTOM, job_id=load_event("custom-job.json")["jobId"], dispatched_nonce="3")
        acknowledger = make_acknowledger(sqs_url=proxy.url, **QUICK)

        # When the job is claimed from a direct event
        result = invoke(load_event("custom-job.json"), acknowledger)

        # Then it is not failed back: the hand-off is pending, recorded for the reconciler
        assert (result["outcome"], result["handoff"]) == ("acknowledged", "pending")
        assert endpoint.store.job(job_id)["status"] == "InProgress"
        assert faults.counts[fault] == 3  # all three attempts landed; their answers were lost
    # And the queue holds one message: the retries' copies were dropped by the FIFO queue's deduplication
    assert work_queue.depth() == (1, 0)

    # When the next poll's reconciler sends it again (through SQS as it is now), and the work function runs
    again = poll(make_acknowledger(**QUICK))
    runs = Runs()
    drain(work_side(make_runner(runs)))

    # Then the job ran once and succeeded
    assert again["reconciled"]["queued"] == 1
    assert runs.count == {job_id: 1}
    assert endpoint.store.job(job_id)["status"] == "Succeeded"
    assert work_queue.is_empty()


def test_a_resend_refused_while_an_earlier_copy_is_on_the_queue_is_not_failed_back_and_runs_once(  # noqa: PLR0917 - its fixtures
    endpoint: LocalCodePipeline,
    secrets_url: str,
    work_queue: WorkQueues,
    make_acknowledger: AcknowledgerFactory,
    make_runner: RunnerFactory,
    work_side: WorkSideFactory,
) -> None:
    # Given a job whose message reached SQS with every answer lost: pending, its copy on the queue
    job_id = endpoint.store.create_job(CUSTOM, job_id=load_event("custom-job.json")["jobId"], dispatched_nonce="3")
    with FaultyProxy(secrets_url, ProxyFaults(slow=1.0, slow_s=1.5)) as proxy:
        first = invoke(load_event("custom-job.json"), make_acknowledger(sqs_url=proxy.url, **QUICK))
    assert (first["outcome"], first["handoff"]) == ("acknowledged", "pending")
    assert work_queue.depth() == (1, 0)

    # When the next poll's reconciler sends it again and SQS certainly refuses that send
    refusing = ProxyFaults(refuse=1.0)
    with FaultyProxy(secrets_url, refusing) as proxy, pytest.raises(HandoffPending):
        poll(make_acknowledger(sqs_url=proxy.url, ACTION_TYPES=CUSTOM))

    # Then the job is not failed back: the copy on the queue may be its only message
    assert refusing.counts["refused"] == 1
    assert endpoint.store.job(job_id)["status"] == "InProgress"
    # And when the work function runs and a later poll's re-send goes through, the job ran once and succeeded
    runs = Runs()
    drain(work_side(make_runner(runs)))
    assert runs.count == {job_id: 1}
    assert endpoint.store.job(job_id)["status"] == "Succeeded"
    later = poll(make_acknowledger(ACTION_TYPES=CUSTOM))
    assert later["reconciled"]["queued"] == 1
    drain(work_side(make_runner(runs)))
    assert runs.count == {job_id: 1}
    assert work_queue.is_empty()


def test_a_send_sqs_certainly_refused_is_failed_back_and_never_runs(
    endpoint: LocalCodePipeline, work_queue: WorkQueues, make_acknowledger: AcknowledgerFactory
) -> None:
    # Given SQS cannot be reached at all: nothing was sent, on any attempt
    job_id = endpoint.store.create_job(CUSTOM, job_id=load_event("custom-job.json")["jobId"], dispatched_nonce="3")
    acknowledger = make_acknowledger(sqs_url=f"http://127.0.0.1:{closed_port()}", **QUICK)

    result = invoke(load_event("custom-job.json"), acknowledger)

    assert (result["handoff"], result["handoffError"]) == ("failedBack", "EndpointConnectionError")
    assert endpoint.store.job(job_id)["status"] == "Failed"
    assert work_queue.is_empty()


# -- 1b. a poll's hand-offs go in batches: each entry's fate is its job's --------------------------------------


def run_all(make_runner: RunnerFactory, work_side: WorkSideFactory) -> Runs:
    runs = Runs()
    drain(work_side(make_runner(runs)), rounds=10)
    return runs


def assert_ended_once(endpoint: LocalCodePipeline, jobs: list[str], runs: Runs, failed_back: set[str]) -> None:
    """Each job ended once: the failed-back ones Failed with the hand-off's reason and never run, every other one
    Succeeded, its work run once."""
    for job_id in jobs:
        job = endpoint.store.job(job_id)
        ended = [e for e in job["history"] if e["event"] in ("succeeded", "failed")]
        assert len(ended) == 1, (job_id, job["history"])
        if job_id in failed_back:
            assert job["status"] == "Failed"
            assert "could not put it on its work queue" in ended[0]["failureMessage"]
        else:
            assert job["status"] == "Succeeded"
    assert runs.count == {job_id: 1 for job_id in jobs if job_id not in failed_back}


@pytest.mark.parametrize("fault", ["slow", "reset"])
def test_a_batch_whose_answer_is_lost_after_sqs_took_it_leaves_its_jobs_pending_and_each_runs_once(  # noqa: PLR0917 - its fixtures
    fault: str,
    endpoint: LocalCodePipeline,
    secrets_url: str,
    work_queue: WorkQueues,
    make_acknowledger: AcknowledgerFactory,
    make_runner: RunnerFactory,
    work_side: WorkSideFactory,
) -> None:
    # Given 12 jobs for one poll (two SendMessageBatch calls: 10 and 2), and every batch reaching SQS with its
    # answer lost
    jobs = [endpoint.store.create_job(CUSTOM) for _ in range(12)]
    faults = answers_lost(fault)
    with FaultyProxy(secrets_url, faults) as proxy:
        acknowledger = make_acknowledger(sqs_url=proxy.url, ACTION_TYPES=CUSTOM, **QUICK)

        # When the schedule fires, then the poll fails for its pending hand-offs; no job is failed back
        with pytest.raises(HandoffPending) as caught:
            poll(acknowledger)
        assert str(caught.value).startswith("12 hand-off(s) pending")
        assert {endpoint.store.job(j)["status"] for j in jobs} == {"InProgress"}
        assert faults.counts[fault] == 2 * 3  # both batches, every attempt, landed; their answers were lost
    # And the queue holds each message once: the retried batches' copies were dropped by the FIFO queue
    assert work_queue.depth() == (12, 0)

    # When the retry's reconciler sends them again, and the work function runs
    again = poll(make_acknowledger(ACTION_TYPES=CUSTOM, **QUICK))
    runs = run_all(make_runner, work_side)

    # Then every job ran once and succeeded
    assert again["reconciled"]["queued"] == 12
    assert_ended_once(endpoint, jobs, runs, failed_back=set())
    assert work_queue.is_empty()


def test_the_entries_sqs_refused_in_a_batch_are_failed_back_the_others_run_once(  # noqa: PLR0917 - its fixtures
    endpoint: LocalCodePipeline,
    secrets_url: str,
    work_queue: WorkQueues,
    make_acknowledger: AcknowledgerFactory,
    make_runner: RunnerFactory,
    work_side: WorkSideFactory,
) -> None:
    # Given 12 jobs for one poll, and SQS refusing some entries of each batch (one claim thread: the seeded draws
    # meet the entries in one order)
    jobs = [endpoint.store.create_job(CUSTOM) for _ in range(12)]
    faults = ProxyFaults(refuse_entries=0.3, seed=3)
    with FaultyProxy(secrets_url, faults) as proxy:
        # (the SDK's default timeouts: an answer late on a loaded machine must not read as a lost one)
        acknowledger = make_acknowledger(sqs_url=proxy.url, ACTION_TYPES=CUSTOM, ACK_CONCURRENCY="1")

        # When the schedule fires
        result = poll(acknowledger)

    # Then exactly the refused entries' jobs are failed back, and the poll ends without a pending hand-off
    failed_back = {r["jobId"] for r in result["results"] if r["handoff"] == "failedBack"}
    assert 0 < len(failed_back) == faults.counts["entries refused"] < len(jobs)
    assert {r["handoffError"] for r in result["results"] if r["handoff"] == "failedBack"} == {"InternalError"}
    assert result["counts"]["queued"] == len(jobs) - len(failed_back)
    assert work_queue.depth() == (len(jobs) - len(failed_back), 0)

    # And when the work function runs, each job has ended once: the refused ones failed back, never run
    runs = run_all(make_runner, work_side)
    assert_ended_once(endpoint, jobs, runs, failed_back)


def test_a_batch_sqs_refused_fails_back_every_job_in_it_and_none_runs(
    endpoint: LocalCodePipeline, secrets_url: str, work_queue: WorkQueues, make_acknowledger: AcknowledgerFactory
) -> None:
    jobs = [endpoint.store.create_job(CUSTOM) for _ in range(12)]
    faults = ProxyFaults(refuse=1.0)
    with FaultyProxy(secrets_url, faults) as proxy:
        # (the SDK's default timeouts: a refusal answered late on a loaded machine must not read as a lost answer)
        result = poll(make_acknowledger(sqs_url=proxy.url, ACTION_TYPES=CUSTOM))

    assert [(r["handoff"], r["handoffError"]) for r in result["results"]] == [("failedBack", "KmsAccessDenied")] * 12
    assert faults.counts["refused"] == 2  # two batches, each refused at its first attempt (a 4xx is not retried)
    assert {endpoint.store.job(j)["status"] for j in jobs} == {"Failed"}
    assert work_queue.is_empty()


def test_an_entry_refused_by_a_retry_whose_first_attempt_sqs_took_is_not_a_certain_refusal(
    monkeypatch: pytest.MonkeyPatch, secrets_url: str, work_queue: WorkQueues
) -> None:
    # Given a batch of two whose first attempt reaches SQS with its answer lost, and whose retry (the SDK's) has
    # its second entry refused (seed 173 draws exactly that)
    faults = ProxyFaults(slow=0.5, refuse_entries=0.5, slow_s=1.5, seed=173)
    bodies = [JobMessage(job_id=f"{n:08x}-0000-4000-8000-000000000000", job_type="custom").to_body() for n in (1, 2)]
    with FaultyProxy(secrets_url, faults) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", proxy.url)
        queue = open_work_queue(work_queue.url, load_config(CommonSettings, {**TEST_ENV, **QUICK}))

        # When it is sent
        first, second = queue.send_batch([(body, JobMessage.from_body(body).dedup_id) for body in bodies])

    # Then the refused entry is not certainly refused (the first attempt stored it), and the queue holds each
    # message once
    assert (faults.counts["slow"], faults.counts["passed"], faults.counts["entries refused"]) == (1, 1, 1)
    assert isinstance(first, str)
    assert not isinstance(second, str)
    assert (second.code, second.certain) == ("InternalError", False)
    assert work_queue.depth() == (2, 0)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_under_every_batch_fault_at_once_each_job_ends_once(  # noqa: PLR0917 - its fixtures
    seed: int,
    endpoint: LocalCodePipeline,
    secrets_url: str,
    work_queue: WorkQueues,
    make_acknowledger: AcknowledgerFactory,
    make_runner: RunnerFactory,
    work_side: WorkSideFactory,
) -> None:
    # Given 30 jobs, and SQS answers lost after SQS took the batch, whole sends refused, and entries refused, drawn
    # per request and entry: a batch retried after a lost answer may see entries refused that its first attempt
    # stored, and a reconciler's re-send may be refused while an earlier copy is on the queue
    jobs = [endpoint.store.create_job(CUSTOM) for _ in range(30)]
    faults = ProxyFaults(slow=0.2, reset=0.2, refuse=0.1, refuse_entries=0.2, slow_s=1.5, seed=seed)
    with FaultyProxy(secrets_url, faults) as proxy:
        # When polls run through the faults until none leaves a hand-off pending (each retry's reconciler sends
        # the pending ones again, through the same faults)
        for _ in range(10):
            try:
                result = poll(make_acknowledger(sqs_url=proxy.url, ACTION_TYPES=CUSTOM, **QUICK))
            except HandoffPending:
                continue
            break
        else:
            pytest.fail("hand-offs still pending after 10 polls")
    # (the failed-back jobs, as CodePipeline recorded them: by a poll, or by a reconciler)
    failed_back = {j for j in jobs if endpoint.store.job(j)["status"] == "Failed"}
    assert result["reconciled"]["pending"] == 0
    runs = run_all(make_runner, work_side)

    # Then each job ended exactly once: failed back (never run), or queued and run once; nothing is left
    assert faults.counts["slow"] + faults.counts["reset"] > 0
    assert faults.counts["entries refused"] > 0
    assert_ended_once(endpoint, jobs, runs, failed_back)
    assert work_queue.is_empty()


# -- 2. the same job delivered twice is worked once -----------------------------------------------------------


# The two deliveries at once are two invocations in one process: they share Powertools' metrics, which the first
# to end flushes for both, leaving the other none to publish (in Lambda, each has an environment of its own).
@pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")
def test_a_job_delivered_twice_is_claimed_queued_and_run_once(
    endpoint: LocalCodePipeline,
    work_queue: WorkQueues,
    make_acknowledger: AcknowledgerFactory,
    make_runner: RunnerFactory,
    work_side: WorkSideFactory,
) -> None:
    # Given custom and partner jobs, each named twice in one batch, and the same events delivered again, one of
    # them twice at once
    custom = [endpoint.store.create_job(CUSTOM, dispatched_nonce=f"n{n}") for n in range(3)]
    partner = [
        endpoint.store.create_job(PARTNER, client_id=CLIENT_ID, client_token=EVENT_TOKEN, dispatched_nonce=f"p{n}")
        for n in range(2)
    ]
    events = [{"jobId": job_id, "nonce": f"n{n}"} for n, job_id in enumerate(custom)] + [
        {"jobId": job_id, "nonce": f"p{n}", "clientToken": EVENT_TOKEN, "clientId": CLIENT_ID}
        for n, job_id in enumerate(partner)
    ]
    acknowledger = make_acknowledger()

    batch = invoke({"jobs": events + events}, acknowledger)
    again = [invoke(event, acknowledger) for event in events]
    twice = [threading.Thread(target=invoke, args=(events[0], make_acknowledger())) for _ in range(2)]
    for thread in twice:
        thread.start()
    for thread in twice:
        thread.join()

    # Then each job was claimed, queued once (the batch's second mention is a duplicate; a later delivery's
    # message is dropped by the FIFO queue), and its work ran once
    assert Counter(r["outcome"] for r in batch["results"]) == {"acknowledged": 5, "duplicate": 5}
    assert {r["outcome"] for r in again} == {"acknowledged"}  # the same nonce: CodePipeline answers InProgress
    assert work_queue.depth() == (5, 0)
    runs = Runs()
    drain(work_side(make_runner(runs)))
    assert runs.count == dict.fromkeys(custom + partner, 1)
    assert {endpoint.store.job(job_id)["status"] for job_id in custom + partner} == {"Succeeded"}


def test_a_message_delivered_after_its_job_ran_runs_nothing(
    endpoint: LocalCodePipeline,
    work_queue: WorkQueues,
    make_acknowledger: AcknowledgerFactory,
    make_runner: RunnerFactory,
    work_side: WorkSideFactory,
) -> None:
    # Given a job claimed, queued and run
    job_id = endpoint.store.create_job(CUSTOM, dispatched_nonce="1")
    event = {"jobId": job_id, "nonce": "1"}
    acknowledger = make_acknowledger()
    invoke(event, acknowledger)
    runs = Runs()
    work = work_side(make_runner(runs))
    drain(work)
    # When its message comes again (the reconciler sent a hand-off again whose first send had landed), past the
    # FIFO queue's deduplication (moto forgets a deleted message's id; SQS keeps it 5 minutes)
    message = JobMessage(job_id=job_id, job_type="custom")
    work_queue.client.send_message(
        QueueUrl=work_queue.url,
        MessageBody=message.to_body(),
        MessageGroupId=message.dedup_id,
        MessageDeduplicationId=message.dedup_id,
    )
    requests = record_requests(endpoint)
    drain(work)

    # Then its work does not run again: its once-only record holds the outcome; the repeated report is refused
    assert runs.count == {job_id: 1}
    assert [r["operation"] for r in requests] == ["PutJobSuccessResult"]
    assert endpoint.store.job(job_id)["acknowledgements"] == 1


# -- 3. a claim starts only when it can finish -----------------------------------------------------------------


def test_no_claim_is_cut_off_by_the_deadline_and_none_is_left_claimed_with_nothing_queued(
    work_queue: WorkQueues, make_acknowledger: AcknowledgerFactory
) -> None:
    with LocalCodePipeline(dispatch_timeout_s=60.0) as endpoint:
        # Given a backlog, 0.3 s per CodePipeline call, two claim threads and 14 s left (13 s to work with): a
        # call's worst case is 1.2 s (one attempt: 0.7 s more than the call takes, so that a loaded machine does
        # not time it out), a polled job's claim 6 s (the claim, the send, a failure report, a record, and the
        # deletion of the record written before it), a poll's 8.4 s: not every claim can fit
        jobs = [endpoint.store.create_job(CUSTOM) for _ in range(60)]
        endpoint.set_faults(Faults(latency_s=0.3, operations=("PollForJobs", "AcknowledgeJob")))
        acknowledger = make_acknowledger(
            url=endpoint.url,
            ACTION_TYPES=CUSTOM,
            ACK_CONCURRENCY="2",
            AWS_MAX_ATTEMPTS="1",
            CONNECT_TIMEOUT_S="0.2",
            READ_TIMEOUT_S="1.0",
        )

        started = time.monotonic()
        result = invoke(load_event("scheduled.json"), acknowledger, remaining_ms=14_000)
        elapsed = time.monotonic() - started
        # Every claim thread has ended: what a frozen environment would leave behind, it has left now
        for thread in threading.enumerate():
            if thread.name.startswith(("codepipeline", "poll")):
                thread.join(timeout=10)

    # Then no job is reported DeadlineExceeded; each is queued, or not attempted (and left Dispatched)
    outcomes = Counter((r["outcome"], r.get("error"), r.get("handoff")) for r in result["results"])
    assert set(outcomes) <= {("acknowledged", None, "queued"), ("failed", "NotAttempted", None)}
    assert outcomes[("failed", "NotAttempted", None)] > 0
    assert elapsed < 14.0
    # And every job CodePipeline holds InProgress is on the queue
    claimed = {j for j in jobs if endpoint.store.job(j)["status"] == "InProgress"}
    assert len(claimed) == outcomes[("acknowledged", None, "queued")] == work_queue.depth()[0]


# -- 4. a lost hand-off fails the invocation, and the retry finishes it --------------------------------------


def test_a_hand_off_neither_queued_nor_failed_back_fails_the_poll_and_its_retry_finishes_it(  # noqa: PLR0917 - its fixtures
    endpoint: LocalCodePipeline,
    work_queue: WorkQueues,
    make_acknowledger: AcknowledgerFactory,
    make_runner: RunnerFactory,
    work_side: WorkSideFactory,
    emitted: Any,
) -> None:
    # Given SQS unreachable and CodePipeline refusing the failure report
    job_id = endpoint.store.create_job(CUSTOM)
    endpoint.set_faults(Faults(throttle=1.0, operations=("PutJobFailureResult",)))
    broken = make_acknowledger(sqs_url=f"http://127.0.0.1:{closed_port()}", ACTION_TYPES=CUSTOM, **QUICK)

    # When the schedule fires, then the invocation fails (the alarm fires; Lambda retries it), once its results
    # and metrics are recorded
    with pytest.raises(HandoffPending):
        poll(broken)
    assert '"HandoffsPending":[1.0]' in emitted()
    assert endpoint.store.job(job_id)["status"] == "InProgress"

    # When the retry (a poll) runs with SQS back, then its reconciler queues the job, and it runs once
    endpoint.set_faults(Faults())
    reconciled_and_run_once(endpoint, job_id, make_acknowledger, make_runner, work_side)


# -- 5. a poll is never dispatched late behind claims -----------------------------------------------------------


def test_a_poll_starts_while_the_previous_polls_claims_still_run(
    work_queue: WorkQueues, make_acknowledger: AcknowledgerFactory
) -> None:
    with LocalCodePipeline() as endpoint:
        # Given two full batches, one claim thread, and 0.2 s per acknowledgement
        jobs = [endpoint.store.create_job(CUSTOM) for _ in range(10)]
        endpoint.set_faults(Faults(latency_s=0.2, operations=("AcknowledgeJob",)))
        requests = record_requests(endpoint)
        acknowledger = make_acknowledger(url=endpoint.url, ACTION_TYPES=CUSTOM, MAX_BATCH_SIZE="5", ACK_CONCURRENCY="1")

        result = invoke(load_event("scheduled.json"), acknowledger)

    # Then the second poll did not wait for the first batch's five claims: it ran before the last of them
    operations = [r["operation"] for r in requests]
    second_poll = [n for n, op in enumerate(operations) if op == "PollForJobs"][1]
    fifth_claim = [n for n, op in enumerate(operations) if op == "AcknowledgeJob"][4]
    assert second_poll < fifth_claim
    assert result["counts"]["queued"] == len(jobs)


# -- 6. no nonce or client token in a failure record ------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        pytest.param({"jobId": "partner-1", "nonce": "5", "clientToken": EVENT_TOKEN}, id="partner-without-client-id"),
        pytest.param({"jobId": "11111111-abcd-1111-abcd-111111abcdef", "nonce": "stale"}, id="stale-nonce"),
        pytest.param({"jobs": [{"jobId": "11111111-abcd-1111-abcd-111111abcdef", "nonce": "stale"}]}, id="batch"),
        pytest.param({"jobId": "11111111-abcd-1111-abcd-111111abcdef", "nonse": "typo"}, id="invalid"),
    ],
)
def test_an_event_holding_a_secret_is_answered_never_failed(
    event: dict[str, Any], endpoint: LocalCodePipeline, make_acknowledger: AcknowledgerFactory
) -> None:
    # Given the job exists, dispatched with another nonce
    endpoint.store.create_job(CUSTOM, job_id="11111111-abcd-1111-abcd-111111abcdef", dispatched_nonce="fresh")

    # When the event comes, then the invocation returns: Lambda keeps a failed invocation's event, nonce and
    # client token included, in the failure destination for 14 days
    result = invoke(event, make_acknowledger())

    assert "errorType" not in result
    errors = [r.get("error") for r in result.get("results", [result])]
    assert errors[0] in {"ClientIdRequired", "InvalidNonceException", "InvalidJobEvent"}


# -- records of one job written by two invocations --------------------------------------------------------------


def test_a_stale_events_record_never_replaces_the_record_of_the_claim_that_landed(
    endpoint: LocalCodePipeline,
    make_acknowledger: AcknowledgerFactory,
    make_runner: RunnerFactory,
    work_side: WorkSideFactory,
) -> None:
    """A chaos run's job left InProgress with nothing queued (load average 9-14, moto's DynamoDB timing out): a
    poll's claim landed but its answer was lost; then a late job event, whose nonce the re-dispatch had made stale,
    got an ambiguous answer too and recorded its own claim under the same key, replacing the poll's record; the
    reconciler asked CodePipeline with the stale nonce, was told `InvalidNonceException` and dropped the record."""
    # Given a job whose direct event's dispatch timed out (its nonce is stale), dispatched again to a poll
    stale = "111111111"
    job_id = endpoint.store.create_job(CUSTOM, dispatched_nonce=stale)
    endpoint.store.dispatch_timeout_s = 0.0
    endpoint.store.jobs()  # the dispatch times out: the job is queued again
    endpoint.store.dispatch_timeout_s = 60.0
    acknowledge = endpoint.store.acknowledge_job
    lose_answers = threading.Event()
    fail_once = threading.Event()

    def ambiguous(params: dict[str, Any]) -> Any:
        if fail_once.is_set():  # an answer with no effect, yet no certain refusal: a 5xx
            fail_once.clear()
            raise ServiceError("InternalFailure", "The request processing has failed", status=500)
        answer = acknowledge(params)
        if lose_answers.is_set():  # the claim lands; its answer comes after the client's read timeout
            time.sleep(float(QUICK["READ_TIMEOUT_S"]) * 2)
        return answer

    endpoint.store.acknowledge_job = ambiguous  # type: ignore[method-assign]

    # When a poll claims it and every answer to its claim is lost (the claim landed: the job is InProgress); the
    # poll fails (no call of it got an answer), its record left for the reconciler
    lose_answers.set()
    with pytest.raises(JobError):
        poll(make_acknowledger(ACTION_TYPES=CUSTOM, **QUICK))
    lose_answers.clear()
    assert endpoint.store.job(job_id)["status"] == "InProgress"

    # and the late job event's claim, with its stale nonce, gets a 5xx and then InvalidNonceException
    fail_once.set()
    late = invoke({"jobId": job_id, "nonce": stale}, make_acknowledger(ACTION_TYPES=CUSTOM, **QUICK))
    assert late["outcome"] == "conflict"

    # Then the next poll's reconciler finds the poll's claim and queues the job, which runs once
    reconciled_and_run_once(endpoint, job_id, make_acknowledger, make_runner, work_side)
