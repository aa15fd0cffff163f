"""The handler end to end, for every direct event kind and error path, against Stubber-checked clients."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from codepipeline_worker.acknowledger.handler import lambda_handler
from tests.conftest import FakeLambdaContext, emitted_metrics, load_event, log_lines
from tests.unit.conftest import (
    CLIENT_ID,
    CLIENT_TOKEN,
    SECRET_ID,
    make_service,
    make_settings,
    secret_response,
    token_store,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_codepipeline import CodePipelineClient

    from tests.unit.conftest import Stubbed, StubbedSecrets

CUSTOM_ID = "11111111-abcd-1111-abcd-111111abcdef"
PARTNER_ID = "22222222-abcd-2222-abcd-222222abcdef"
TOKEN_ONLY_ID = "33333333-abcd-3333-abcd-333333abcdef"
CLIENT_ID_JOB = "44444444-abcd-4444-abcd-444444abcdef"
EVENT_TOKEN = "replace-with-the-partner-client-token"


def count_calls(client: CodePipelineClient) -> list[str]:
    calls: list[str] = []
    client.meta.events.register("provide-client-params.codepipeline", lambda model, **_: calls.append(model.name))
    return calls


def test_custom_job_is_acknowledged(
    codepipeline: Stubbed, lambda_context: FakeLambdaContext, emitted: Callable[[], str]
) -> None:
    client, stubber = codepipeline
    stubber.add_response("acknowledge_job", {"status": "InProgress"}, {"jobId": CUSTOM_ID, "nonce": "3"})

    result = lambda_handler(load_event("custom-job.json"), lambda_context, service=make_service(client))

    assert result == {"jobId": CUSTOM_ID, "jobType": "custom", "outcome": "acknowledged", "status": "InProgress"}
    assert json.loads(json.dumps(result)) == result
    assert emitted_metrics(emitted())["JobsAcknowledged"] == 1.0


def test_partner_job_with_nonce_and_token_is_acknowledged(
    codepipeline: Stubbed, lambda_context: FakeLambdaContext
) -> None:
    client, stubber = codepipeline
    stubber.add_response(
        "acknowledge_third_party_job",
        {"status": "InProgress"},
        {"jobId": PARTNER_ID, "nonce": "7", "clientToken": EVENT_TOKEN},
    )

    result = lambda_handler(load_event("partner-job.json"), lambda_context, service=make_service(client))

    assert result == {"jobId": PARTNER_ID, "jobType": "thirdParty", "outcome": "acknowledged", "status": "InProgress"}


def test_partner_job_without_nonce_gets_it_from_job_details(
    codepipeline: Stubbed, lambda_context: FakeLambdaContext
) -> None:
    client, stubber = codepipeline
    # Given GetThirdPartyJobDetails hands out the nonce (with artifact credentials the worker must not keep)
    stubber.add_response(
        "get_third_party_job_details",
        {"jobDetails": {"id": TOKEN_ONLY_ID, "nonce": "42", "data": {"artifactCredentials": _credentials()}}},
        {"jobId": TOKEN_ONLY_ID, "clientToken": EVENT_TOKEN},
    )
    stubber.add_response(
        "acknowledge_third_party_job",
        {"status": "InProgress"},
        {"jobId": TOKEN_ONLY_ID, "nonce": "42", "clientToken": EVENT_TOKEN},
    )

    result = lambda_handler(load_event("partner-job-token-only.json"), lambda_context, service=make_service(client))

    assert result["outcome"] == "acknowledged"
    assert "AKIA" not in json.dumps(result)


def test_partner_job_with_client_id_looks_the_token_up(
    codepipeline: Stubbed, secrets: StubbedSecrets, lambda_context: FakeLambdaContext
) -> None:
    client, stubber = codepipeline
    sm_client, sm_stubber = secrets
    sm_stubber.add_response("get_secret_value", secret_response({CLIENT_ID: CLIENT_TOKEN}), {"SecretId": SECRET_ID})
    stubber.add_response(
        "get_third_party_job_details",
        {"jobDetails": {"id": CLIENT_ID_JOB, "nonce": "9"}},
        {"jobId": CLIENT_ID_JOB, "clientToken": CLIENT_TOKEN},
    )
    stubber.add_response(
        "acknowledge_third_party_job",
        {"status": "InProgress"},
        {"jobId": CLIENT_ID_JOB, "nonce": "9", "clientToken": CLIENT_TOKEN},
    )
    service = make_service(client, token_store(sm_client))

    result = lambda_handler(load_event("partner-job-client-id.json"), lambda_context, service=service)

    assert result["outcome"] == "acknowledged"


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("InvalidNonceException", "another worker claimed the job, or the nonce is stale"),
        ("JobNotFoundException", "no such job"),
        ("ValidationException", "rejected the request"),
        ("AccessDeniedException", "could not be reached or refused"),
        ("ThrottlingException", "could not be reached or refused"),
    ],
)
def test_a_failed_single_job_returns_the_api_error_code_rather_than_failing(
    code: str, message: str, codepipeline: Stubbed, lambda_context: FakeLambdaContext
) -> None:
    client, stubber = codepipeline
    stubber.add_client_error(
        "acknowledge_job", code, "Service message", 400, expected_params={"jobId": CUSTOM_ID, "nonce": "3"}
    )

    # A failed invocation's event, nonce included, would be kept in the failure destination: the error is returned
    result = lambda_handler(load_event("custom-job.json"), lambda_context, service=make_service(client))

    assert result["jobId"] == CUSTOM_ID
    assert result["outcome"] == ("conflict" if code == "InvalidNonceException" else "failed")
    assert result["error"] == code
    assert message in result["reason"]
    assert "Service message" not in json.dumps(result)


def test_a_wrong_client_token_is_returned_as_invalid_client_token(
    codepipeline: Stubbed, lambda_context: FakeLambdaContext
) -> None:
    client, stubber = codepipeline
    stubber.add_client_error("acknowledge_third_party_job", "InvalidClientTokenException", "bad token")

    result = lambda_handler(load_event("partner-job.json"), lambda_context, service=make_service(client))

    assert (result["outcome"], result["error"]) == ("failed", "InvalidClientTokenException")


@pytest.mark.parametrize("status", ["Created", "Queued", "Dispatched", "TimedOut", "Succeeded", "Failed"])
def test_any_status_but_in_progress_is_not_claimed(
    status: str, codepipeline: Stubbed, lambda_context: FakeLambdaContext
) -> None:
    client, stubber = codepipeline
    stubber.add_response("acknowledge_job", {"status": status})

    result = lambda_handler(load_event("custom-job.json"), lambda_context, service=make_service(client))

    assert result == {"jobId": CUSTOM_ID, "jobType": "custom", "outcome": "notClaimed", "status": status}


def test_a_status_outside_the_api_is_a_failure(codepipeline: Stubbed, lambda_context: FakeLambdaContext) -> None:
    client, stubber = codepipeline
    stubber.add_response("acknowledge_job", {"status": "Weird"})

    result = lambda_handler(load_event("custom-job.json"), lambda_context, service=make_service(client))

    assert (result["outcome"], result["error"]) == ("failed", "InvalidServiceResponse")


def test_partner_job_by_client_id_without_a_secret_fails_without_calls(
    codepipeline: Stubbed, lambda_context: FakeLambdaContext
) -> None:
    client, _ = codepipeline
    calls = count_calls(client)

    result = lambda_handler(load_event("partner-job-client-id.json"), lambda_context, service=make_service(client))

    assert (result["outcome"], result["error"]) == ("failed", "ClientTokenNotConfigured")
    assert "CLIENT_TOKEN_SECRET_ID" in result["reason"]
    assert calls == []


def test_job_details_without_a_nonce_fail_the_job(codepipeline: Stubbed, lambda_context: FakeLambdaContext) -> None:
    client, stubber = codepipeline
    stubber.add_response("get_third_party_job_details", {"jobDetails": {"id": TOKEN_ONLY_ID}})

    result = lambda_handler(load_event("partner-job-token-only.json"), lambda_context, service=make_service(client))

    assert result["error"] == "NonceUnavailable"


def test_job_details_errors_are_reported_by_code(codepipeline: Stubbed, lambda_context: FakeLambdaContext) -> None:
    client, stubber = codepipeline
    stubber.add_client_error("get_third_party_job_details", "InvalidJobException", "job is not in a valid state")

    result = lambda_handler(load_event("partner-job-token-only.json"), lambda_context, service=make_service(client))

    assert result["error"] == "InvalidJobException"


@pytest.mark.parametrize("name", ["invalid-typo.json", "invalid-docs-example-id.json", "invalid-lambda-invoke.json"])
def test_an_invalid_event_is_answered_with_invalid_job_event_and_calls_nothing(
    name: str, codepipeline: Stubbed, lambda_context: FakeLambdaContext, emitted: Callable[[], str]
) -> None:
    client, _ = codepipeline
    calls = count_calls(client)

    # No retry can make it valid, and a failed invocation's event would be kept in the failure destination
    result = lambda_handler(load_event(name), lambda_context, service=make_service(client))

    assert result["error"] == "InvalidJobEvent"
    assert result["message"].startswith(("invalid event", "a Lambda-invoke action event"))
    assert calls == []
    output = emitted()
    assert '"message":"invalid event"' in output
    assert emitted_metrics(output)["InvalidEvents"] == 1.0


def test_batch_returns_one_result_per_job_in_order(
    codepipeline: Stubbed, secrets: StubbedSecrets, lambda_context: FakeLambdaContext, emitted: Callable[[], str]
) -> None:
    client, stubber = codepipeline
    sm_client, sm_stubber = secrets
    # Given four jobs: acknowledged, claimed by another worker, not claimed, and one whose token is unknown
    stubber.add_response("acknowledge_job", {"status": "InProgress"}, {"jobId": CUSTOM_ID, "nonce": "3"})
    stubber.add_client_error(
        "acknowledge_job",
        "InvalidNonceException",
        expected_params={"jobId": "55555555-abcd-5555-abcd-555555abcdef", "nonce": "4"},
    )
    stubber.add_response(
        "acknowledge_third_party_job",
        {"status": "TimedOut"},
        {"jobId": PARTNER_ID, "nonce": "7", "clientToken": EVENT_TOKEN},
    )
    sm_stubber.add_response("get_secret_value", secret_response({}), {"SecretId": SECRET_ID})
    sm_stubber.add_response("get_secret_value", secret_response({}), {"SecretId": SECRET_ID})
    service = make_service(client, token_store(sm_client))

    # When the batch is handled
    result = lambda_handler(load_event("batch.json"), lambda_context, service=service)

    # Then each job has its own outcome, and the counts add up
    assert result["results"] == [
        {"jobId": CUSTOM_ID, "jobType": "custom", "outcome": "acknowledged", "status": "InProgress"},
        {
            "jobId": "55555555-abcd-5555-abcd-555555abcdef",
            "jobType": "custom",
            "outcome": "conflict",
            "error": "InvalidNonceException",
            "reason": "another worker claimed the job, or the nonce is stale",
        },
        {"jobId": PARTNER_ID, "jobType": "thirdParty", "outcome": "notClaimed", "status": "TimedOut"},
        {
            "jobId": CLIENT_ID_JOB,
            "jobType": "thirdParty",
            "outcome": "failed",
            "error": "ClientTokenNotFound",
            "reason": "the client-token secret has no entry for the job's clientId",
        },
    ]
    assert result["counts"] == {"total": 4, "acknowledged": 1, "notClaimed": 1, "conflict": 1, "failed": 1}
    metrics = emitted_metrics(emitted())
    assert (metrics["JobsAcknowledged"], metrics["JobConflicts"], metrics["JobsNotClaimed"], metrics["JobsFailed"]) == (
        1.0,
        1.0,
        1.0,
        1.0,
    )


def test_a_batch_whose_every_call_failed_returns_the_errors_and_counts_them_for_the_alarm(
    codepipeline: Stubbed, lambda_context: FakeLambdaContext, emitted: Callable[[], str]
) -> None:
    client, stubber = codepipeline
    stubber.add_client_error("acknowledge_job", "ThrottlingException", http_status_code=400)
    stubber.add_client_error("acknowledge_job", "AccessDeniedException", http_status_code=400)
    event = {"jobs": [load_event("custom-job.json"), {"jobId": "55555555-abcd-5555-abcd-555555abcdef", "nonce": "4"}]}

    # A batch holds nonces: it is never failed into the failure destination; JobsFailed drives the alarm instead
    result = lambda_handler(event, lambda_context, service=make_service(client))

    assert [r["error"] for r in result["results"]] == ["ThrottlingException", "AccessDeniedException"]
    assert emitted_metrics(emitted())["JobsFailed"] == 2.0


def test_a_job_named_twice_in_a_batch_is_claimed_once(
    codepipeline: Stubbed, lambda_context: FakeLambdaContext, emitted: Callable[[], str]
) -> None:
    client, stubber = codepipeline
    stubber.add_response("acknowledge_job", {"status": "InProgress"}, {"jobId": CUSTOM_ID, "nonce": "3"})
    calls = count_calls(client)
    job = load_event("custom-job.json")

    result = lambda_handler(
        {"jobs": [job, dict(job), {**job, "nonce": "9"}]}, lambda_context, service=make_service(client)
    )

    assert calls == ["AcknowledgeJob"]
    assert [r["outcome"] for r in result["results"]] == ["acknowledged", "duplicate", "duplicate"]
    assert result["results"][1]["error"] == "DuplicateInBatch"
    assert result["counts"] == {
        "total": 3,
        "acknowledged": 1,
        "notClaimed": 0,
        "conflict": 0,
        "failed": 0,
        "duplicate": 2,
    }
    assert emitted_metrics(emitted())["JobsDuplicated"] == 2.0


def test_batch_with_job_errors_only_returns_results(codepipeline: Stubbed, lambda_context: FakeLambdaContext) -> None:
    client, stubber = codepipeline
    stubber.add_client_error("acknowledge_job", "JobNotFoundException")

    result = lambda_handler({"jobs": [load_event("custom-job.json")]}, lambda_context, service=make_service(client))

    assert result["counts"]["failed"] == 1
    assert result["results"][0]["error"] == "JobNotFoundException"


def test_batch_acknowledges_concurrently(lambda_context: FakeLambdaContext) -> None:
    # Given an adapter whose acknowledgements wait until four are in flight at once
    import threading

    from codepipeline_worker.acknowledger.service import JobService

    barrier = threading.Barrier(4, timeout=5)

    class BarrierAdapter:
        def acknowledge_job(self, job_id: str, nonce: Any) -> str:
            barrier.wait()
            return "InProgress"

    service = JobService(make_settings(ACK_CONCURRENCY="4"), BarrierAdapter())  # type: ignore[arg-type]
    jobs = [{"jobId": f"{i:08x}-abcd-1111-abcd-111111abcdef", "nonce": str(i)} for i in range(8)]

    # When a batch of eight is handled, then all eight are acknowledged (a serial worker would break the barrier)
    result = lambda_handler({"jobs": jobs}, lambda_context, service=service)
    assert result["counts"]["acknowledged"] == 8


def test_the_default_service_is_built_from_the_environment() -> None:
    from codepipeline_worker.acknowledger import handler

    assert handler.settings.action_type_names() == ["Custom/Build/MyTool/1", "ThirdParty/Deploy/PartnerTool/2"]
    assert handler.default_service is not None


def _credentials() -> dict[str, str]:
    return {
        "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
        "secretAccessKey": "wJalrXUtnFEMI-secret",
        "sessionToken": "FwoG-session",
    }


def test_a_batch_logs_its_claimed_jobs_in_one_info_line(
    codepipeline: Stubbed, lambda_context: FakeLambdaContext, emitted: Callable[[], str]
) -> None:
    """One INFO line per job cost about 45 µs of CPU each: a batch's claimed jobs are named in its summary line."""
    client, stubber = codepipeline
    ids = [f"{n}{n}{n}{n}{n}{n}{n}{n}-abcd-1111-abcd-111111abcdef" for n in range(1, 6)]
    for _ in ids:
        stubber.add_response("acknowledge_job", {"status": "InProgress"})

    lambda_handler({"jobs": [{"jobId": i, "nonce": "3"} for i in ids]}, lambda_context, service=make_service(client))

    [line] = log_lines(emitted(), "INFO")
    assert (line["message"], line["acknowledged"], sorted(line["acknowledged_job_ids"])) == ("jobs done", 5, ids)


def test_a_single_job_is_named_in_its_invocations_metrics_line_not_in_an_info_line_of_its_own(
    codepipeline: Stubbed, lambda_context: FakeLambdaContext, emitted: Callable[[], str]
) -> None:
    """A second INFO line cost about 8 % of a warm direct job's CPU: the invocation's one line is its EMF metrics
    line, which names the job as Powertools metadata (searchable in the log, not a metric dimension)."""
    client, stubber = codepipeline
    stubber.add_response("acknowledge_job", {"status": "InProgress"})

    lambda_handler(load_event("custom-job.json"), lambda_context, service=make_service(client))

    output = emitted()
    assert log_lines(output, "INFO") == []
    [blob] = [json.loads(line) for line in output.splitlines() if line.startswith("{") and '"JobsAcknowledged"' in line]
    assert blob["job"] == {"job_id": CUSTOM_ID, "job_type": "custom", "outcome": "acknowledged", "status": "InProgress"}
    assert blob["JobsAcknowledged"] == [1.0]


def test_a_job_not_claimed_is_named_in_the_metrics_line_too(
    codepipeline: Stubbed, lambda_context: FakeLambdaContext, emitted: Callable[[], str]
) -> None:
    client, stubber = codepipeline
    stubber.add_client_error("acknowledge_job", "JobNotFoundException", http_status_code=400)

    lambda_handler(load_event("custom-job.json"), lambda_context, service=make_service(client))

    [blob] = [json.loads(line) for line in emitted().splitlines() if line.startswith("{") and '"JobsFailed"' in line]
    assert blob["job"] == {"job_id": CUSTOM_ID, "job_type": "custom", "outcome": "failed"}
