"""The real handler, with real SDK clients, over HTTP against the local endpoint: every event kind, stale
nonces, competing workers, throttling and an unreachable endpoint."""

from __future__ import annotations

import json
import threading
from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Any

import pytest

from codepipeline_local import Faults, LocalCodePipeline
from codepipeline_worker.acknowledger.handler import lambda_handler
from codepipeline_worker.shared.errors import JobError
from tests.conftest import FakeLambdaContext, closed_port, load_event
from tests.endpoint.conftest import CUSTOM as CUSTOM_ID_TYPE
from tests.endpoint.conftest import client_for
from tests.integration.conftest import CLIENT_ID, CUSTOM, EVENT_TOKEN, PARTNER, WorkerFactory, issued_secrets

if TYPE_CHECKING:
    from collections.abc import Callable

    from codepipeline_worker.acknowledger.service import JobService


def invoke(event: Any, worker: JobService, remaining_ms: int = 180_000) -> Any:
    return lambda_handler(event, FakeLambdaContext(remaining_ms=remaining_ms), service=worker)


def status(endpoint: LocalCodePipeline, job_id: str) -> str:
    return str(endpoint.store.job(job_id)["status"])


def dispatched_from(endpoint: LocalCodePipeline, event: dict[str, Any]) -> str:
    """The job an events/ file names, as if a poll had handed it out with the file's nonce."""
    nonce = event.get("nonce", "41")
    if "clientToken" in event or "clientId" in event:
        return endpoint.store.create_job(
            PARTNER, job_id=event["jobId"], dispatched_nonce=nonce, client_id=CLIENT_ID, client_token=EVENT_TOKEN
        )
    return endpoint.store.create_job(CUSTOM, job_id=event["jobId"], dispatched_nonce=nonce)


@pytest.mark.parametrize(
    "name", ["custom-job.json", "partner-job.json", "partner-job-token-only.json", "partner-job-client-id.json"]
)
def test_each_direct_job_event_claims_its_job(
    name: str, endpoint: LocalCodePipeline, make_worker: WorkerFactory
) -> None:
    event = load_event(name)
    job_id = dispatched_from(endpoint, event)

    result = invoke(event, make_worker())

    assert (result["jobId"], result["outcome"], result["status"]) == (job_id, "acknowledged", "InProgress")
    assert status(endpoint, job_id) == "InProgress"


def test_a_batch_claims_every_job(endpoint: LocalCodePipeline, make_worker: WorkerFactory) -> None:
    event = load_event("batch.json")
    for job in event["jobs"]:
        dispatched_from(endpoint, job)

    result = invoke(event, make_worker())

    assert result["counts"] == {"total": 4, "acknowledged": 4, "notClaimed": 0, "conflict": 0, "failed": 0}
    assert {j["status"] for j in endpoint.store.jobs()} == {"InProgress"}


def test_the_scheduled_poll_claims_custom_and_partner_jobs(
    endpoint: LocalCodePipeline, make_worker: WorkerFactory
) -> None:
    custom = [endpoint.store.create_job(CUSTOM) for _ in range(25)]
    partner = [endpoint.store.create_job(PARTNER, client_id=CLIENT_ID, client_token=EVENT_TOKEN) for _ in range(5)]

    result = invoke(load_event("scheduled.json"), make_worker(MAX_BATCH_SIZE="10"))

    assert result["polls"] == [
        {"actionType": CUSTOM, "polls": 3, "jobsFound": 25},
        {"actionType": PARTNER, "polls": 1, "jobsFound": 5},
    ]
    assert result["counts"]["acknowledged"] == 30
    assert all(status(endpoint, job_id) == "InProgress" for job_id in custom + partner)


def test_action_started_claims_a_job_that_becomes_pollable_later(
    endpoint: LocalCodePipeline, make_worker: WorkerFactory
) -> None:
    # Given the job is queued only once the first poll after the STARTED event has come back empty (on a condition,
    # not after a pause that a loaded machine may outlast before it polls)
    endpoint.store.add_action_type(CUSTOM)
    poll = endpoint.store.poll_for_jobs
    created: list[str] = []

    def poll_then_queue(params: dict[str, Any]) -> dict[str, Any]:
        answer = poll(params)
        if not created:
            created.append(endpoint.store.create_job(CUSTOM))
        return answer

    endpoint.store.poll_for_jobs = poll_then_queue  # type: ignore[method-assign]

    result = invoke(load_event("action-started.json"), make_worker())

    # Then the first poll found nothing, and a later one found the job and claimed it
    assert result["trigger"] == "actionStarted"
    assert result["polls"][0]["polls"] == 2
    assert [(r["jobId"], r["outcome"]) for r in result["results"]] == [(created[0], "acknowledged")]


def test_a_lambda_invoke_event_is_refused_without_a_call(
    endpoint: LocalCodePipeline, make_worker: WorkerFactory
) -> None:
    result = invoke(load_event("invalid-lambda-invoke.json"), make_worker())

    assert result["error"] == "InvalidJobEvent"
    assert "PutJobSuccessResult" in result["message"]
    assert endpoint.stats()["calls"] == {}


def test_a_stale_nonce_after_re_dispatch_is_a_conflict(make_worker: WorkerFactory) -> None:
    with LocalCodePipeline() as endpoint:
        # Given a job polled once, not acknowledged in time, and dispatched again: the dispatch timeout is set to
        # zero for the second poll only, so the test does not depend on how fast this machine is
        job_id = endpoint.store.create_job(CUSTOM)
        worker = make_worker(url=endpoint.url)
        poller = client_for(endpoint.url)
        [first] = poller.poll_for_jobs(actionTypeId=CUSTOM_ID_TYPE)["jobs"]
        endpoint.store.dispatch_timeout_s = 0.0
        [second] = poller.poll_for_jobs(actionTypeId=CUSTOM_ID_TYPE)["jobs"]
        endpoint.store.dispatch_timeout_s = 3600.0
        assert first["nonce"] != second["nonce"]

        # When a worker acknowledges with the first nonce, then it is told another holds the job
        stale = invoke({"jobId": job_id, "nonce": first["nonce"]}, worker)
        assert (stale["outcome"], stale["error"]) == ("conflict", "InvalidNonceException")
        # And with the fresh nonce, the job is claimed
        assert invoke({"jobId": job_id, "nonce": second["nonce"]}, worker)["outcome"] == "acknowledged"


# The workers are threads of one process, so they share Powertools' module-level Metrics: one invocation's flush
# can empty another's metrics, which then warns that it has none. On Lambda an execution environment runs one
# invocation at a time; here the warning says nothing about the claims under test.
# Rounds of polls that race with the endpoint's 0.1 s re-dispatch
RACING_ROUNDS = 3


@pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")
@pytest.mark.parametrize("workers", [2, 8])
def test_competing_workers_claim_each_job_exactly_once(workers: int, make_worker: WorkerFactory) -> None:
    # Given 200 jobs, a short re-dispatch time and random latency, so that jobs are often dispatched again to
    # another worker before the first acknowledges: the races a fleet of workers meets
    with LocalCodePipeline(dispatch_timeout_s=0.1) as endpoint:
        jobs = [endpoint.store.create_job(CUSTOM) for _ in range(200)]
        endpoint.set_faults(Faults(jitter_s=0.15, seed=workers))
        fleet = [make_worker(url=endpoint.url, ACTION_TYPES=CUSTOM) for _ in range(workers)]
        outcomes: dict[str, list[str]] = defaultdict(list)
        lock = threading.Lock()

        def run(worker: JobService) -> None:
            try:
                result = invoke(load_event("scheduled.json"), worker)
            except Exception as error:  # noqa: BLE001 - recorded, so that the test reports it, not the thread
                with lock:
                    outcomes["invocation failed"].append(f"{type(error).__name__}: {error}")
                return
            with lock:
                for entry in result["results"]:
                    outcomes[entry["jobId"]].append(entry["outcome"] + ":" + entry.get("error", ""))

        # When the workers poll at once, round after round, until no job is left queued. The first rounds race with
        # the 0.1 s re-dispatch; then it is set long, so the run ends however slow a loaded machine makes the claims
        # (on one, at load average 11, most claims came after the re-dispatch, and 40 rounds left jobs queued)
        rounds = 0
        while rounds < 40 and any(status(endpoint, j) != "InProgress" for j in jobs):
            rounds += 1
            if rounds == RACING_ROUNDS + 1:
                endpoint.store.dispatch_timeout_s = 3600.0
            threads = [threading.Thread(target=run, args=(worker,)) for worker in fleet]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

        # Then each job was claimed once: one acknowledgement on the endpoint and in the results, and every
        # other attempt at it was reported as a conflict
        summaries = endpoint.store.jobs()
        assert "invocation failed" not in outcomes, outcomes["invocation failed"]
        assert {s["status"] for s in summaries} == {"InProgress"}
        assert all(s["acknowledgements"] == 1 for s in summaries)
        for job_id in jobs:
            counted = Counter(outcomes[job_id])
            assert counted["acknowledged:"] == 1, (job_id, counted)
            assert set(counted) - {"acknowledged:"} <= {"conflict:InvalidNonceException"}, (job_id, counted)
        conflicts = sum(Counter(o)["conflict:InvalidNonceException"] for o in outcomes.values())
        dispatches = sum(s["dispatches"] for s in summaries)
        print(f"\n{workers} workers, 200 jobs: {rounds} rounds, {dispatches} dispatches, {conflicts} conflicts")


def test_thirty_percent_throttling_still_claims_every_job(make_worker: WorkerFactory) -> None:
    with LocalCodePipeline() as endpoint:
        jobs = [endpoint.store.create_job(CUSTOM) for _ in range(40)]
        endpoint.set_faults(Faults(throttle=0.3, seed=3))

        # Ten attempts per call: a poll's worst case then needs Lambda's longest timeout
        result = invoke(
            load_event("scheduled.json"),
            make_worker(url=endpoint.url, AWS_MAX_ATTEMPTS="10", ACTION_TYPES=CUSTOM),
            remaining_ms=900_000,
        )

        assert result["counts"]["acknowledged"] == 40
        assert all(status(endpoint, job_id) == "InProgress" for job_id in jobs)
        stats = endpoint.stats()
        assert stats["faults"]["throttle"] > 0
        print(f"\n30% throttling: {json.dumps(stats)}")


def test_an_unreachable_endpoint_fails_a_poll_and_is_named_in_a_job_events_result(make_worker: WorkerFactory) -> None:
    worker = make_worker(url=f"http://127.0.0.1:{closed_port()}", AWS_MAX_ATTEMPTS="2")

    with pytest.raises(JobError) as caught:
        invoke(load_event("scheduled.json"), worker)
    direct = invoke(load_event("custom-job.json"), worker)

    assert type(caught.value).__name__ == "EndpointConnectionError"
    assert (direct["outcome"], direct["error"]) == ("failed", "EndpointConnectionError")


def test_nothing_the_endpoint_hands_out_reaches_the_output(
    endpoint: LocalCodePipeline, make_worker: WorkerFactory, emitted: Callable[[], str]
) -> None:
    for _ in range(5):
        endpoint.store.create_job(CUSTOM)
        endpoint.store.create_job(PARTNER, client_id=CLIENT_ID, client_token=EVENT_TOKEN)

    result = invoke(load_event("scheduled.json"), make_worker())

    assert result["counts"]["acknowledged"] == 10
    issued = issued_secrets(endpoint)
    text = emitted() + json.dumps(result)
    assert len(issued) == 45  # 10 nonces, 30 artifact credentials, 5 partner client tokens
    assert EVENT_TOKEN not in text
    assert not [value for value in issued if value in text]
