"""Scheduled polls and action STARTED events: what is polled, what is acknowledged, and what time allows."""

from __future__ import annotations

import threading
import time
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


def test_scheduled_poll_of_a_partner_action_gets_nonces_from_job_details(
    codepipeline: Stubbed, secrets: StubbedSecrets, lambda_context: FakeLambdaContext
) -> None:
    client, stubber = codepipeline
    sm_client, sm_stubber = secrets
    settings = make_settings(**PARTNER_ONLY, CLIENT_TOKEN_SECRET_ID=SECRET_ID)
    stubber.add_response(
        "poll_for_third_party_jobs",
        {"jobs": [{"jobId": job_id(7), "clientId": CLIENT_ID}]},
        {"actionTypeId": PARTNER, "maxBatchSize": 10},
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
    stubber.add_response("poll_for_jobs", {"jobs": []}, {"actionTypeId": CUSTOM, "maxBatchSize": 10})
    stubber.add_response("poll_for_jobs", polled(5), {"actionTypeId": CUSTOM, "maxBatchSize": 10})
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


def test_work_stops_at_the_deadline_and_every_job_is_reported(slow: _SlowAdapter) -> None:
    # Given 0.3 s of time (1.3 s left less the 1 s margin) and a second job whose call never answers
    slow.hang = {job_id(2)}
    service = JobService(make_settings(), slow)  # type: ignore[arg-type]
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
    service = JobService(make_settings(ACK_CONCURRENCY="2"), slow)  # type: ignore[arg-type]

    result = lambda_handler(load_event("scheduled.json"), FakeLambdaContext(remaining_ms=1300), service=service)

    assert result["polls"] == [
        {"actionType": "Custom/Build/MyTool/1", "polls": 0, "jobsFound": 0, "error": "DeadlineExceeded"},
        {"actionType": "ThirdParty/Deploy/PartnerTool/2", "polls": 1, "jobsFound": 0},
    ]


def test_no_new_poll_starts_when_too_little_time_is_left(slow: _SlowAdapter) -> None:
    # Given full batches keep coming back, but only 1.5 s remain after the margin
    service = JobService(make_settings(MAX_BATCH_SIZE="1", **CUSTOM_ONLY), slow)  # type: ignore[arg-type]

    result = lambda_handler(load_event("scheduled.json"), FakeLambdaContext(remaining_ms=2500), service=service)

    # Then it polled once: a job polled without time to acknowledge it would wait for re-dispatch
    assert result["polls"] == [{"actionType": "Custom/Build/MyTool/1", "polls": 1, "jobsFound": 1}]


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


def test_with_no_time_left_nothing_is_called_and_every_job_is_reported(codepipeline: Stubbed) -> None:
    client, _ = codepipeline
    jobs = [CustomJobEvent.model_validate({"jobId": job_id(n), "nonce": "n"}) for n in (1, 2)]

    # Stubber holds no answer: any call would fail with another code than NotAttempted
    with pytest.raises(JobError) as caught:
        make_service(client).acknowledge_batch(jobs, Deadline(time.monotonic() - 1))

    assert type(caught.value).__name__ == "NotAttempted"
    assert "NotAttempted x2" in str(caught.value)


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
    service = JobService(make_settings(MAX_BATCH_SIZE="1", ACK_CONCURRENCY="2", **CUSTOM_ONLY), adapter)  # type: ignore[arg-type]
    try:
        # When the run ends at its deadline
        result = lambda_handler(load_event("scheduled.json"), FakeLambdaContext(remaining_ms=4000), service=service)
    finally:
        adapter.release.set()

    # Then it reports the job it claimed and the poll that did not finish, and does not fail
    assert result["counts"]["acknowledged"] == 1
    assert result["polls"] == [
        {"actionType": "Custom/Build/MyTool/1", "polls": 1, "jobsFound": 1, "error": "DeadlineExceeded"}
    ]


def test_a_single_job_is_claimed_inline_when_no_call_can_outlast_the_deadline(
    lambda_context: FakeLambdaContext,
) -> None:
    threads: list[str] = []

    class Recording:
        def acknowledge_job(self, job_id: str, nonce: SecretStr) -> str:
            threads.append(threading.current_thread().name)
            return "InProgress"

    service = JobService(make_settings(), Recording())  # type: ignore[arg-type]
    event = {"jobId": job_id(1), "nonce": "n"}

    # With 60 s left (3 attempts of 7 s and 6 s of pauses fit), inline; with 20 s left, through the pool
    lambda_handler(event, lambda_context, service=service)
    lambda_handler(event, FakeLambdaContext(remaining_ms=20_000), service=service)

    assert threads[0] == threading.main_thread().name
    assert threads[1].startswith("codepipeline")


def test_the_worst_case_of_one_call() -> None:
    from codepipeline_worker.shared.adapter import worst_case_call_s

    assert worst_case_call_s(1) == 7
    assert worst_case_call_s(3) == 3 * 7 + 2 + 4
    assert worst_case_call_s(10) == 10 * 7 + 2 + 4 + 8 + 16 + 20 * 5
