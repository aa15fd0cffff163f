"""Scheduled polls and action STARTED events: what is polled, what is acknowledged, and what time allows."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import pytest

from codepipeline_worker.acknowledger.events import CustomJobEvent
from codepipeline_worker.acknowledger.handler import lambda_handler
from codepipeline_worker.acknowledger.service import JobService
from codepipeline_worker.shared.adapter import AwsCallError
from codepipeline_worker.shared.deadline import Deadline
from codepipeline_worker.shared.errors import JobError
from tests.conftest import FakeLambdaContext, emitted_metrics, load_event
from tests.unit.conftest import (
    CLIENT_ID,
    CLIENT_TOKEN,
    CUSTOM,
    PARTNER,
    SECRET_ID,
    make_service,
    make_settings,
    secret_response,
    token_store,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from pydantic import SecretStr

    from codepipeline_worker.acknowledger.config import PollTarget
    from codepipeline_worker.shared.models import QueryParam
    from tests.unit.conftest import Stubbed, StubbedSecrets

CUSTOM_ONLY = {"ACTION_TYPES": "Custom/Build/MyTool/1"}
PARTNER_ONLY = {"ACTION_TYPES": "ThirdParty/Deploy/PartnerTool/2"}


def job_id(n: int) -> str:
    return f"{n:08x}-abcd-4bcd-8bcd-0123456789ab"


def polled(*numbers: int) -> dict[str, Any]:
    """A PollForJobs answer, with the job data (artifact credentials among it) that real answers carry."""
    return {
        "jobs": [
            {
                "id": job_id(n),
                "nonce": f"nonce-{n}",
                "accountId": "123456789012",
                "data": {
                    "actionTypeId": CUSTOM,
                    "artifactCredentials": {"accessKeyId": "AKIA", "secretAccessKey": "s", "sessionToken": "t"},
                    "pipelineContext": {"pipelineName": "my-pipeline"},
                },
            }
            for n in numbers
        ]
    }


def test_scheduled_poll_repolls_full_batches_and_acknowledges_every_job(
    codepipeline: Stubbed, lambda_context: FakeLambdaContext, emitted: Callable[[], str]
) -> None:
    client, stubber = codepipeline
    settings = make_settings(**CUSTOM_ONLY, MAX_BATCH_SIZE="2", POLL_QUERY_PARAM="ProjectName=demo")
    poll_params = {"actionTypeId": CUSTOM, "maxBatchSize": 2, "queryParam": {"ProjectName": "demo"}}
    # Given a first poll that fills the batch and a second that does not
    stubber.add_response("poll_for_jobs", polled(1, 2), poll_params)
    stubber.add_response("acknowledge_job", {"status": "InProgress"}, {"jobId": job_id(1), "nonce": "nonce-1"})
    stubber.add_response("acknowledge_job", {"status": "InProgress"}, {"jobId": job_id(2), "nonce": "nonce-2"})
    stubber.add_response("poll_for_jobs", polled(3), poll_params)
    stubber.add_response("acknowledge_job", {"status": "InProgress"}, {"jobId": job_id(3), "nonce": "nonce-3"})

    # When the schedule fires
    result = lambda_handler(
        load_event("scheduled.json"), lambda_context, service=make_service(client, settings=settings)
    )

    # Then it polled twice and acknowledged all three jobs
    assert result["trigger"] == "scheduled"
    assert result["polls"] == [{"actionType": "Custom/Build/MyTool/1", "polls": 2, "jobsFound": 3}]
    assert [r["jobId"] for r in result["results"]] == [job_id(1), job_id(2), job_id(3)]
    assert {r["outcome"] for r in result["results"]} == {"acknowledged"}
    assert all(r["actionType"] == "Custom/Build/MyTool/1" for r in result["results"])
    assert result["counts"]["acknowledged"] == 3
    metrics = emitted_metrics(emitted())
    assert (metrics["JobsPolled"], metrics["JobsAcknowledged"], metrics["PollFailures"]) == (3.0, 3.0, 0.0)


def test_a_full_batch_of_jobs_already_polled_ends_the_polling(
    codepipeline: Stubbed, lambda_context: FakeLambdaContext
) -> None:
    client, stubber = codepipeline
    settings = make_settings(**CUSTOM_ONLY, MAX_BATCH_SIZE="2")
    poll_params = {"actionTypeId": CUSTOM, "maxBatchSize": 2}
    # Given two jobs dispatched again, with new nonces, before their first claims landed (their dispatch timed
    # out): the second poll is full, but of jobs the first one returned
    stubber.add_response("poll_for_jobs", polled(1, 2), poll_params)
    stubber.add_response(
        "poll_for_jobs",
        {"jobs": [{**job, "nonce": job["nonce"] + "-again"} for job in polled(1, 2)["jobs"]]},
        poll_params,
    )
    for _ in range(4):
        stubber.add_response("acknowledge_job", {"status": "InProgress"})

    # When the schedule fires
    result = lambda_handler(
        load_event("scheduled.json"), lambda_context, service=make_service(client, settings=settings)
    )

    # Then it polled twice, not a third time (the stubber holds no third answer: a third poll would fail it), and
    # claimed each dispatch it was given
    assert result["polls"] == [{"actionType": "Custom/Build/MyTool/1", "polls": 2, "jobsFound": 4}]
    assert sorted(r["jobId"] for r in result["results"]) == [job_id(1), job_id(1), job_id(2), job_id(2)]
    stubber.assert_no_pending_responses()


def test_scheduled_poll_of_a_partner_action_gets_nonces_from_job_details(
    codepipeline: Stubbed, secrets: StubbedSecrets, lambda_context: FakeLambdaContext
) -> None:
    client, stubber = codepipeline
    sm_client, sm_stubber = secrets
    settings = make_settings(**PARTNER_ONLY, CLIENT_TOKEN_SECRET_ID=SECRET_ID)
    stubber.add_response(
        "poll_for_third_party_jobs",
        {"jobs": [{"jobId": job_id(7), "clientId": CLIENT_ID}]},
        {"actionTypeId": PARTNER, "maxBatchSize": 25},
    )
    sm_stubber.add_response("get_secret_value", secret_response({CLIENT_ID: CLIENT_TOKEN}), {"SecretId": SECRET_ID})
    stubber.add_response(
        "get_third_party_job_details",
        {"jobDetails": {"id": job_id(7), "nonce": "partner-nonce"}},
        {"jobId": job_id(7), "clientToken": CLIENT_TOKEN},
    )
    stubber.add_response(
        "acknowledge_third_party_job",
        {"status": "InProgress"},
        {"jobId": job_id(7), "nonce": "partner-nonce", "clientToken": CLIENT_TOKEN},
    )
    service = make_service(client, token_store(sm_client), settings=settings)

    result = lambda_handler(load_event("scheduled.json"), lambda_context, service=service)

    assert result["results"] == [
        {
            "jobId": job_id(7),
            "jobType": "thirdParty",
            "outcome": "acknowledged",
            "status": "InProgress",
            "actionType": "ThirdParty/Deploy/PartnerTool/2",
        }
    ]


def test_the_secret_is_read_once_for_many_partner_jobs(
    codepipeline: Stubbed, secrets: StubbedSecrets, lambda_context: FakeLambdaContext
) -> None:
    client, stubber = codepipeline
    sm_client, sm_stubber = secrets
    settings = make_settings(**PARTNER_ONLY, CLIENT_TOKEN_SECRET_ID=SECRET_ID)
    stubber.add_response(
        "poll_for_third_party_jobs", {"jobs": [{"jobId": job_id(n), "clientId": CLIENT_ID} for n in (1, 2)]}
    )
    # Given one GetSecretValue answer only: a second read would find no stubbed response
    sm_stubber.add_response("get_secret_value", secret_response({CLIENT_ID: CLIENT_TOKEN}))
    for n in (1, 2):
        stubber.add_response("get_third_party_job_details", {"jobDetails": {"id": job_id(n), "nonce": f"n{n}"}})
        stubber.add_response("acknowledge_third_party_job", {"status": "InProgress"})

    result = lambda_handler(
        load_event("scheduled.json"), lambda_context, service=make_service(client, token_store(sm_client), settings)
    )

    assert result["counts"]["acknowledged"] == 2


def test_a_failed_poll_is_reported_and_the_other_action_types_still_work(
    codepipeline: Stubbed, lambda_context: FakeLambdaContext, emitted: Callable[[], str]
) -> None:
    client, stubber = codepipeline
    stubber.add_client_error("poll_for_jobs", "ActionTypeNotFoundException")
    stubber.add_response("poll_for_third_party_jobs", {"jobs": []})

    result = lambda_handler(load_event("scheduled.json"), lambda_context, service=make_service(client))

    assert result["polls"] == [
        {"actionType": "Custom/Build/MyTool/1", "polls": 0, "jobsFound": 0, "error": "ActionTypeNotFoundException"},
        {"actionType": "ThirdParty/Deploy/PartnerTool/2", "polls": 1, "jobsFound": 0},
    ]
    assert result["counts"]["total"] == 0
    assert emitted_metrics(emitted())["PollFailures"] == 1.0


def test_when_every_poll_fails_the_invocation_fails(codepipeline: Stubbed, lambda_context: FakeLambdaContext) -> None:
    client, stubber = codepipeline
    stubber.add_client_error("poll_for_jobs", "AccessDeniedException")
    stubber.add_client_error("poll_for_third_party_jobs", "AccessDeniedException")

    with pytest.raises(JobError) as caught:
        lambda_handler(load_event("scheduled.json"), lambda_context, service=make_service(client))

    assert type(caught.value).__name__ == "AccessDeniedException"
    assert "AccessDeniedException x2" in str(caught.value)


def test_when_every_acknowledgement_fails_systemically_the_invocation_fails(
    codepipeline: Stubbed, lambda_context: FakeLambdaContext
) -> None:
    client, stubber = codepipeline
    stubber.add_response("poll_for_jobs", polled(1))
    stubber.add_client_error("acknowledge_job", "AccessDeniedException")

    with pytest.raises(JobError) as caught:
        lambda_handler(
            load_event("scheduled.json"),
            lambda_context,
            service=make_service(client, settings=make_settings(**CUSTOM_ONLY)),
        )

    assert type(caught.value).__name__ == "AccessDeniedException"


def test_a_polled_job_that_does_not_match_the_api_is_reported_not_acknowledged(
    codepipeline: Stubbed, lambda_context: FakeLambdaContext
) -> None:
    client, stubber = codepipeline
    answer = polled(1, 2)
    del answer["jobs"][1]["nonce"]
    stubber.add_response("poll_for_jobs", answer)
    stubber.add_response("acknowledge_job", {"status": "InProgress"}, {"jobId": job_id(1), "nonce": "nonce-1"})

    result = lambda_handler(
        load_event("scheduled.json"),
        lambda_context,
        service=make_service(client, settings=make_settings(**CUSTOM_ONLY)),
    )

    assert [(r["jobId"], r["outcome"], r.get("error")) for r in result["results"]] == [
        (job_id(2), "failed", "InvalidServiceResponse"),
        (job_id(1), "acknowledged", None),
    ]


def test_a_partner_poll_without_client_id_is_reported(codepipeline: Stubbed, lambda_context: FakeLambdaContext) -> None:
    client, stubber = codepipeline
    stubber.add_response("poll_for_third_party_jobs", {"jobs": [{"jobId": job_id(1)}]})

    result = lambda_handler(
        load_event("scheduled.json"),
        lambda_context,
        service=make_service(client, settings=make_settings(**PARTNER_ONLY)),
    )

    assert result["results"][0]["error"] == "InvalidServiceResponse"


def test_action_started_polls_again_until_the_job_appears(
    codepipeline: Stubbed, lambda_context: FakeLambdaContext
) -> None:
    client, stubber = codepipeline
    # Given the job is not pollable at the first try
    stubber.add_response("poll_for_jobs", {"jobs": []}, {"actionTypeId": CUSTOM, "maxBatchSize": 25})
    stubber.add_response("poll_for_jobs", polled(5), {"actionTypeId": CUSTOM, "maxBatchSize": 25})
    stubber.add_response("acknowledge_job", {"status": "InProgress"}, {"jobId": job_id(5), "nonce": "nonce-5"})

    service = make_service(client, delays=(0.01, 0.01))

    result = lambda_handler(load_event("action-started.json"), lambda_context, service=service)

    assert result["trigger"] == "actionStarted"
    assert result["polls"] == [{"actionType": "Custom/Build/MyTool/1", "polls": 2, "jobsFound": 1}]
    assert result["counts"]["acknowledged"] == 1


def test_action_started_gives_up_after_its_retries(codepipeline: Stubbed, lambda_context: FakeLambdaContext) -> None:
    client, stubber = codepipeline
    for _ in range(3):  # the first poll and two retries (make_service's delays)
        stubber.add_response("poll_for_jobs", {"jobs": []})

    result = lambda_handler(load_event("action-started.json"), lambda_context, service=make_service(client))

    assert result["polls"] == [{"actionType": "Custom/Build/MyTool/1", "polls": 3, "jobsFound": 0}]
    assert result["results"] == []


def test_the_scheduled_poll_does_not_retry_empty_polls(
    codepipeline: Stubbed, lambda_context: FakeLambdaContext
) -> None:
    client, stubber = codepipeline
    stubber.add_response("poll_for_jobs", {"jobs": []})

    result = lambda_handler(
        load_event("scheduled.json"),
        lambda_context,
        service=make_service(client, settings=make_settings(**CUSTOM_ONLY)),
    )

    assert result["polls"][0]["polls"] == 1


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"owner": "AWS", "provider": "CodeBuild"}, "action type AWS/Build/CodeBuild/1 is not in ACTION_TYPES"),
        ({"version": "2"}, "action type Custom/Build/MyTool/2 is not in ACTION_TYPES"),
        ({"state": "SUCCEEDED"}, "the action's state is SUCCEEDED, not STARTED"),
    ],
)
def test_other_action_events_are_ignored_with_a_log_line(
    change: dict[str, str],
    reason: str,
    codepipeline: Stubbed,
    lambda_context: FakeLambdaContext,
    emitted: Callable[[], str],
) -> None:
    client, _ = codepipeline
    event = load_event("action-started.json")
    if "state" in change:
        event["detail"]["state"] = change["state"]
    else:
        event["detail"]["type"].update(change)

    result = lambda_handler(event, lambda_context, service=make_service(client))

    assert result == {"ignored": True, "reason": reason}
    output = emitted()
    assert '"message":"event ignored"' in output
    assert '"pipeline":"my-pipeline"' in output


class _SlowAdapter:
    """Answers job calls from a script; a call listed in `hang` blocks until the test releases it."""

    def __init__(self, hang: set[str]) -> None:
        self.hang = hang
        self.release = threading.Event()

    def _answer(self, key: str, answer: Any) -> Any:
        if key in self.hang:
            self.release.wait(10)
        return answer

    def acknowledge_job(self, job_id: str, nonce: SecretStr) -> str:
        return str(self._answer(job_id, "InProgress"))

    def poll_for_jobs(self, target: PollTarget, max_batch_size: int, query_param: QueryParam | None) -> Any:
        return self._answer(str(target), polled(1)["jobs"])

    def poll_for_third_party_jobs(self, target: PollTarget, max_batch_size: int) -> Any:
        if "fail" in self.hang:
            raise AwsCallError("PollForThirdPartyJobs", "ThrottlingException")
        return self._answer(str(target), [])


@pytest.fixture
def slow() -> Iterator[_SlowAdapter]:
    adapter = _SlowAdapter(set())
    yield adapter
    adapter.release.set()


# Budgets small enough for a test: one call's worst case is 0.15 s (one attempt, 0.05 s to connect, 0.1 s to read).
QUICK = {"AWS_MAX_ATTEMPTS": "1", "CONNECT_TIMEOUT_S": "0.05", "READ_TIMEOUT_S": "0.1"}


class _Clock:
    """The deadline's clock, moved by the test's adapters instead of by wall time."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    import types

    from codepipeline_worker.shared import deadline as deadline_module

    fake = _Clock()
    monkeypatch.setattr(deadline_module, "time", types.SimpleNamespace(monotonic=fake.monotonic))
    return fake


def test_a_claim_that_outlives_its_budget_is_reported_and_not_waited_for(slow: _SlowAdapter) -> None:
    # Given 0.3 s of time (1.3 s left less the 1 s margin), one thread, and a second job whose call never answers
    # (no SDK call can do that: each is bounded by its budget; the service does not rely on it)
    slow.hang = {job_id(2)}
    service = JobService(make_settings(ACK_CONCURRENCY="1", **QUICK), slow)  # type: ignore[arg-type]
    jobs = [{"jobId": job_id(n), "nonce": "n"} for n in (1, 2, 3)]

    # When the batch is handled
    result = lambda_handler({"jobs": jobs}, FakeLambdaContext(remaining_ms=1300), service=service)

    # Then the invocation returned without waiting, with the fate of each job
    assert [(r["outcome"], r.get("error")) for r in result["results"]] == [
        ("acknowledged", None),
        ("failed", "DeadlineExceeded"),
        ("failed", "NotAttempted"),
    ]


def test_a_poll_that_does_not_answer_in_time_is_reported(slow: _SlowAdapter) -> None:
    slow.hang = {"Custom/Build/MyTool/1"}
    service = JobService(make_settings(ACK_CONCURRENCY="2", **QUICK), slow)  # type: ignore[arg-type]

    result = lambda_handler(load_event("scheduled.json"), FakeLambdaContext(remaining_ms=2000), service=service)

    assert result["polls"] == [
        {"actionType": "Custom/Build/MyTool/1", "polls": 0, "jobsFound": 0, "error": "DeadlineExceeded"},
        {"actionType": "ThirdParty/Deploy/PartnerTool/2", "polls": 1, "jobsFound": 0},
    ]


def test_a_poll_starts_only_when_its_worst_case_fits_at_the_moment_it_starts(clock: _Clock) -> None:
    # Given full batches keep coming back, each poll taking 0.2 s, and a custom poll's worst case of 0.3 s (the
    # poll and a claim, at 0.15 s each)
    class Polls(_SlowAdapter):
        def poll_for_jobs(self, target: PollTarget, max_batch_size: int, query_param: QueryParam | None) -> Any:
            clock.now += 0.2
            return polled(int(clock.now * 10))["jobs"]

    service = JobService(make_settings(MAX_BATCH_SIZE="1", **CUSTOM_ONLY, **QUICK), Polls(set()))  # type: ignore[arg-type]

    # When 0.45 s remain
    result = service.poll(service._settings.action_types, Deadline(clock.now + 0.45), trigger="scheduled")

    # Then it polled once (0.45 s left), not again (0.25 s left), and claimed what it found
    assert [s.model_dump() for s in result.polls] == [
        {"action_type": "Custom/Build/MyTool/1", "polls": 1, "jobs_found": 1, "error": None}
    ]
    assert result.counts.acknowledged == 1


def test_a_claim_starts_only_when_its_worst_case_fits(codepipeline: Stubbed, clock: _Clock) -> None:
    client, _ = codepipeline
    jobs = [CustomJobEvent.model_validate({"jobId": job_id(n), "nonce": "n"}) for n in (1, 2)]
    service = make_service(client, settings=make_settings(**QUICK))

    # Stubber holds no answer: any call would fail with another code than NotAttempted
    result = service.acknowledge_batch(jobs, Deadline(clock.now + 0.149))

    assert [(r.outcome, r.error) for r in result.results] == [("failed", "NotAttempted")] * 2
    assert "CodePipeline will dispatch the job again" in (result.results[0].reason or "")


def test_a_poll_never_waits_behind_claims_for_a_thread(lambda_context: FakeLambdaContext) -> None:
    # Given one claim thread, held by the first poll's claim until the second poll has happened
    second_poll = threading.Event()

    class Adapter:
        polls = 0

        def poll_for_jobs(self, target: PollTarget, max_batch_size: int, query_param: QueryParam | None) -> Any:
            self.polls += 1
            if self.polls == 2:
                second_poll.set()
            return polled(self.polls)["jobs"] if self.polls <= 2 else []

        def acknowledge_job(self, job_id: str, nonce: SecretStr) -> str:
            assert second_poll.wait(10), "the second poll waited for the first poll's claim"
            return "InProgress"

    service = JobService(make_settings(MAX_BATCH_SIZE="1", ACK_CONCURRENCY="1", **CUSTOM_ONLY), Adapter())  # type: ignore[arg-type]

    result = lambda_handler(load_event("scheduled.json"), lambda_context, service=service)

    assert result["polls"] == [{"actionType": "Custom/Build/MyTool/1", "polls": 3, "jobsFound": 2}]
    assert result["counts"]["acknowledged"] == 2


def test_an_unexpected_exception_fails_only_its_job(lambda_context: FakeLambdaContext) -> None:
    class Broken:
        def acknowledge_job(self, job_id: str, nonce: SecretStr) -> str:
            if job_id == job_id_two:
                raise RuntimeError("boom with a secret inside")
            return "InProgress"

    job_id_two = job_id(2)
    service = JobService(make_settings(), Broken())  # type: ignore[arg-type]
    jobs = [{"jobId": job_id(n), "nonce": "n"} for n in (1, 2)]

    result = lambda_handler({"jobs": jobs}, lambda_context, service=service)

    assert [r.get("error") for r in result["results"]] == [None, "InternalError"]


def test_a_later_poll_missing_the_deadline_does_not_fail_a_run_that_claimed_jobs(slow: _SlowAdapter) -> None:
    # Given the first poll answers a full batch and the second never answers
    class SecondPollHangs(_SlowAdapter):
        polls = 0

        def poll_for_jobs(self, target: PollTarget, max_batch_size: int, query_param: QueryParam | None) -> Any:
            self.polls += 1
            if self.polls > 1:
                self.release.wait(10)
            return polled(self.polls)["jobs"]

    adapter = SecondPollHangs(set())
    settings = make_settings(MAX_BATCH_SIZE="1", ACK_CONCURRENCY="2", **CUSTOM_ONLY, **QUICK)
    service = JobService(settings, adapter)  # type: ignore[arg-type]
    try:
        # When the run ends at its deadline
        result = lambda_handler(load_event("scheduled.json"), FakeLambdaContext(remaining_ms=2000), service=service)
    finally:
        adapter.release.set()

    # Then it reports the job it claimed and the poll that did not finish, and does not fail
    assert result["counts"]["acknowledged"] == 1
    assert result["polls"] == [
        {"actionType": "Custom/Build/MyTool/1", "polls": 1, "jobsFound": 1, "error": "DeadlineExceeded"}
    ]


def test_a_single_job_is_claimed_inline_under_any_timeout(lambda_context: FakeLambdaContext) -> None:
    threads: list[str] = []

    class Recording:
        def acknowledge_job(self, job_id: str, nonce: SecretStr) -> str:
            threads.append(threading.current_thread().name)
            return "InProgress"

    service = JobService(make_settings(), Recording())  # type: ignore[arg-type]
    event = {"jobId": job_id(1), "nonce": "n"}

    # With the template's timeout, and with Lambda's default 3 s (too little for the claim's worst case: no call)
    first = lambda_handler(event, lambda_context, service=service)
    second = lambda_handler(event, FakeLambdaContext(remaining_ms=3_000), service=service)

    assert threads == [threading.main_thread().name]
    assert (first["outcome"], second["error"]) == ("acknowledged", "NotAttempted")


def test_the_worst_case_of_one_call() -> None:
    from codepipeline_worker.shared.adapter import worst_case_call_s

    # Each attempt connects (1 s) and waits for its answer (2 s); standard mode pauses at most 1, 2, 4... 20 s
    assert worst_case_call_s(1, 1.0, 2.0) == 3
    assert worst_case_call_s(3, 1.0, 2.0) == 3 * 3 + 1 + 2
    assert worst_case_call_s(10, 1.0, 2.0) == 10 * 3 + 1 + 2 + 4 + 8 + 16 + 20 * 4
