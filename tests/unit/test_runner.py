"""The work side: the work function's outcome becomes exactly one Put*Result call, and no secret or exception
text reaches CodePipeline or the log."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from botocore import xform_name
from botocore.exceptions import ClientError
from pydantic import BaseModel

from codepipeline_worker.examples.url_gate import check_url
from codepipeline_worker.shared import tokens as service_module
from codepipeline_worker.shared.adapter import CodePipelineAdapter
from codepipeline_worker.shared.config import load_config
from codepipeline_worker.shared.errors import ConfigurationError
from codepipeline_worker.shared.messages import JobMessage
from codepipeline_worker.shared.observability import metrics
from codepipeline_worker.work import CurrentRevision, Failure, StillRunning, Success
from codepipeline_worker.work.config import WorkerSettings
from codepipeline_worker.work.runner import JobNotReported, RunResult, WorkRunner, load_work_function
from tests.conftest import TEST_ENV, emitted_metrics
from tests.unit.conftest import (
    CLIENT_ID,
    CLIENT_TOKEN,
    CUSTOM,
    SECRET_ID,
    record_requests,
    secret_response,
    token_store,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from botocore.stub import Stubber
    from mypy_boto3_codepipeline import CodePipelineClient

    from codepipeline_worker.shared.adapter import ClientTokenStore
    from codepipeline_worker.work import Job, Outcome
    from tests.unit.conftest import Stubbed, StubbedSecrets

pytestmark = pytest.mark.usefixtures("clean_metrics")

JOB = "11111111-abcd-1111-abcd-111111abcdef"
PARTNER_JOB = "partner-job-0001"
OTHER_CLIENT = "0d4c3b2a-1234-4abc-9def-0123456789ab"
ACCESS_KEY = "AKIARUNNER0ACCESS0KEY"
SECRET_KEY = "runner-secret-access-key-MARKER"
SESSION_TOKEN = "runner-session-token-MARKER"
CREDENTIALS = {"accessKeyId": ACCESS_KEY, "secretAccessKey": SECRET_KEY, "sessionToken": SESSION_TOKEN}
EXCEPTION_MARKER = "exception-text-MARKER-9d3f"
DETAILS = {
    "actionTypeId": CUSTOM,
    "actionConfiguration": {"configuration": {"Url": "https://deploy.example.com/health", "MaxChecks": "3"}},
    "pipelineContext": {"pipelineName": "pipeline-from-details", "stage": {"name": "Deploy"}},
    "inputArtifacts": [{"name": "BuildOutput", "revision": "rev-1"}],
    "outputArtifacts": [{"name": "GateResult"}],
    "artifactCredentials": CREDENTIALS,
    "continuationToken": "token-from-details",
}


def custom_message() -> JobMessage:
    return JobMessage(job_id=JOB, job_type="custom")


def partner_message() -> JobMessage:
    return JobMessage(job_id=PARTNER_JOB, job_type="thirdParty", client_id=CLIENT_ID)


def context_message() -> JobMessage:
    """A message from a poll: the context is in it, and the work function needs no GetJobDetails for it."""
    return JobMessage.model_validate(
        {
            "jobId": JOB,
            "jobType": "custom",
            "accountId": "123456789012",
            "actionType": CUSTOM,
            "pipelineContext": {"pipelineName": "pipeline-from-message"},
            "inputArtifacts": [{"name": "FromMessage"}],
            "outputArtifacts": [],
            "continuationToken": "token-from-message",
        }
    )


def stub_details(stubber: Stubber) -> None:
    """GetJobDetails, which the runner calls before the work function runs."""
    stubber.add_response("get_job_details", {"jobDetails": {"id": JOB, "data": {}}}, {"jobId": JOB})


def stub_partner_details(stubber: Stubber) -> None:
    stubber.add_response(
        "get_third_party_job_details",
        {"jobDetails": {"id": PARTNER_JOB, "data": {}}},
        {"jobId": PARTNER_JOB, "clientToken": CLIENT_TOKEN},
    )


def make_runner(
    client: CodePipelineClient,
    work: Callable[[Job], Any],
    tokens: ClientTokenStore | None = None,
    *,
    isolate: bool = True,
) -> WorkRunner:
    """A runner of `work`, in a child process by default, as deployed; `isolate=False` runs it in this process,
    for a test whose work function writes down what it saw."""
    return WorkRunner(CodePipelineAdapter(client), tokens, work, isolate=isolate)


def returning(outcome: Any) -> Callable[[Job], Any]:
    return lambda _job: outcome


def partner_tokens(secrets: StubbedSecrets, mapping: dict[str, str] | None = None) -> ClientTokenStore:
    client, stubber = secrets
    stubber.add_response(
        "get_secret_value",
        secret_response({CLIENT_ID: CLIENT_TOKEN} if mapping is None else mapping),
        {"SecretId": SECRET_ID},
    )
    return token_store(client)


# -- each outcome, one exact request ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "operation", "params", "result"),
    [
        pytest.param(
            Success(
                summary="deployed",
                external_execution_id="ext-1",
                output_variables={"StatusCode": "200", "Build@Id_1-x": "b-7"},
                current_revision=CurrentRevision(revision="r1", change_identifier="c1", revision_summary="first"),
            ),
            "put_job_success_result",
            {
                "jobId": JOB,
                "executionDetails": {"summary": "deployed", "externalExecutionId": "ext-1"},
                "currentRevision": {"revision": "r1", "changeIdentifier": "c1", "revisionSummary": "first"},
                "outputVariables": {"StatusCode": "200", "Build@Id_1-x": "b-7"},
            },
            {"jobId": JOB, "jobType": "custom", "result": "succeeded"},
            id="success",
        ),
        pytest.param(
            Success(),
            "put_job_success_result",
            {"jobId": JOB},
            {"jobId": JOB, "jobType": "custom", "result": "succeeded"},
            id="bare-success",
        ),
        pytest.param(
            StillRunning(
                continuation_token="round-2", percent_complete=40, summary="waiting", external_execution_id="e"
            ),
            "put_job_success_result",
            {
                "jobId": JOB,
                "continuationToken": "round-2",
                "executionDetails": {"summary": "waiting", "externalExecutionId": "e", "percentComplete": 40},
            },
            {"jobId": JOB, "jobType": "custom", "result": "continued"},
            id="still-running",
        ),
        pytest.param(
            StillRunning(continuation_token="round-2"),
            "put_job_success_result",
            {"jobId": JOB, "continuationToken": "round-2"},
            {"jobId": JOB, "jobType": "custom", "result": "continued"},
            id="bare-still-running",
        ),
        pytest.param(
            Failure(message="the gate stayed red", type="ConfigurationError", external_execution_id="ext-9"),
            "put_job_failure_result",
            {
                "jobId": JOB,
                "failureDetails": {
                    "type": "ConfigurationError",
                    "message": "the gate stayed red",
                    "externalExecutionId": "ext-9",
                },
            },
            {"jobId": JOB, "jobType": "custom", "result": "failed", "failureType": "ConfigurationError"},
            id="failure",
        ),
    ],
)
def test_each_outcome_is_reported_with_one_exact_request(
    *,
    outcome: Outcome,
    operation: str,
    params: dict[str, Any],
    result: dict[str, str],
    codepipeline: Stubbed,
    emitted: Callable[[], str],
) -> None:
    client, stubber = codepipeline
    stub_details(stubber)
    stubber.add_response(operation, {}, params)
    calls = record_requests(client)

    run = make_runner(client, returning(outcome)).run(custom_message())

    assert run.to_json() == result
    assert [xform_name(name) for name, _ in calls] == ["get_job_details", operation]
    assert '"message":"job reported"' in emitted()


@pytest.mark.parametrize(
    ("outcome", "operation", "params", "result"),
    [
        pytest.param(
            Success(
                summary="deployed",
                current_revision=CurrentRevision(revision="r1", change_identifier="c1"),
            ),
            "put_third_party_job_success_result",
            {
                "jobId": PARTNER_JOB,
                "clientToken": CLIENT_TOKEN,
                "executionDetails": {"summary": "deployed"},
                "currentRevision": {"revision": "r1", "changeIdentifier": "c1"},
            },
            "succeeded",
            id="success",
        ),
        pytest.param(
            StillRunning(continuation_token="round-2", percent_complete=50),
            "put_third_party_job_success_result",
            {
                "jobId": PARTNER_JOB,
                "clientToken": CLIENT_TOKEN,
                "continuationToken": "round-2",
                "executionDetails": {"percentComplete": 50},
            },
            "continued",
            id="still-running",
        ),
        pytest.param(
            Failure(message="no", type="RevisionUnavailable"),
            "put_third_party_job_failure_result",
            {
                "jobId": PARTNER_JOB,
                "clientToken": CLIENT_TOKEN,
                "failureDetails": {"type": "RevisionUnavailable", "message": "no"},
            },
            "failed",
            id="failure",
        ),
    ],
)
def test_a_partner_outcome_is_reported_with_the_client_token_of_its_client_id(
    *,
    outcome: Outcome,
    operation: str,
    params: dict[str, Any],
    result: str,
    codepipeline: Stubbed,
    secrets: StubbedSecrets,
    emitted: Callable[[], str],
) -> None:
    client, stubber = codepipeline
    stub_partner_details(stubber)
    stubber.add_response(operation, {}, params)

    run = make_runner(client, returning(outcome), partner_tokens(secrets)).run(partner_message())

    assert (run.job_type, run.result) == ("thirdParty", result)
    assert CLIENT_TOKEN not in emitted()


# -- the job's details: read before the work function runs, once -------------------------------------------------


def test_the_details_are_read_before_the_work_runs_and_the_message_context_comes_first(
    codepipeline: Stubbed,
) -> None:
    client, stubber = codepipeline
    seen: dict[str, Any] = {}

    def work(job: Job) -> Outcome:
        seen.update(
            id=job.id,
            type=job.type,
            client=job.client_id,
            pipeline=job.pipeline_context.pipeline_name,
            action_type=str(job.action_type),
            inputs=[a.name for a in job.input_artifacts],
            outputs=job.output_artifacts,
            token=job.continuation_token,
            remaining=job.remaining_time_s(),
            text=repr(job),
        )
        return Success()

    stub_details(stubber)
    stubber.add_response("put_job_success_result", {}, {"jobId": JOB})
    calls = record_requests(client)

    make_runner(client, work, isolate=False).run(context_message())

    assert [operation for operation, _ in calls] == ["GetJobDetails", "PutJobSuccessResult"]
    assert seen == {
        "id": JOB,
        "type": "custom",
        "client": None,
        "pipeline": "pipeline-from-message",
        "action_type": "Custom/Build/MyTool/1",
        "inputs": ["FromMessage"],
        "outputs": [],
        "token": "token-from-message",
        "remaining": None,
        "text": f"Job(id='{JOB}', type='custom')",
    }


def test_details_are_fetched_once_however_often_the_work_function_reads_them(codepipeline: Stubbed) -> None:
    client, stubber = codepipeline
    stubber.add_response("get_job_details", {"jobDetails": {"id": JOB, "data": DETAILS}}, {"jobId": JOB})

    def work(job: Job) -> Outcome:
        credentials = job.artifact_credentials
        assert credentials is not None
        assert credentials.access_key_id.get_secret_value() == ACCESS_KEY
        assert ACCESS_KEY not in repr(job.details())
        return Success(
            output_variables={
                "Pipeline": job.pipeline_context.pipeline_name or "",
                "Url": job.configuration["Url"],
                "MaxChecks": job.configuration["MaxChecks"],
                "ActionType": str(job.action_type),
                "Inputs": ",".join(a.name or "" for a in job.input_artifacts),
                "Outputs": ",".join(a.name or "" for a in job.output_artifacts),
                "Token": job.continuation_token or "",
            }
        )

    stubber.add_response(
        "put_job_success_result",
        {},
        {
            "jobId": JOB,
            "outputVariables": {
                "Pipeline": "pipeline-from-details",
                "Url": "https://deploy.example.com/health",
                "MaxChecks": "3",
                "ActionType": "Custom/Build/MyTool/1",
                "Inputs": "BuildOutput",
                "Outputs": "GateResult",
                "Token": "token-from-details",
            },
        },
    )
    calls = record_requests(client)

    result = make_runner(client, work).run(custom_message())

    assert result.result == "succeeded"
    assert [operation for operation, _ in calls] == ["GetJobDetails", "PutJobSuccessResult"]


def test_a_partner_job_reads_its_details_with_its_client_token(codepipeline: Stubbed, secrets: StubbedSecrets) -> None:
    client, stubber = codepipeline
    stubber.add_response(
        "get_third_party_job_details",
        {"jobDetails": {"id": PARTNER_JOB, "nonce": "n", "data": DETAILS}},
        {"jobId": PARTNER_JOB, "clientToken": CLIENT_TOKEN},
    )
    stubber.add_response(
        "put_third_party_job_success_result",
        {},
        {"jobId": PARTNER_JOB, "clientToken": CLIENT_TOKEN, "executionDetails": {"summary": "pipeline-from-details"}},
    )

    def work(job: Job) -> Outcome:
        return Success(summary=job.pipeline_context.pipeline_name)

    assert make_runner(client, work, partner_tokens(secrets)).run(partner_message()).result == "succeeded"


# -- what the work function did wrong becomes the job's failure ---------------------------------------------


def test_an_exception_fails_the_job_with_its_type_only(codepipeline: Stubbed, emitted: Callable[[], str]) -> None:
    client, stubber = codepipeline
    stub_details(stubber)

    def work(job: Job) -> Outcome:
        raise RuntimeError(f"could not deploy: {EXCEPTION_MARKER}")

    stubber.add_response(
        "put_job_failure_result",
        {},
        {
            "jobId": JOB,
            "failureDetails": {
                "type": "JobFailed",
                "message": "The work function raised RuntimeError; the worker's log has where.",
            },
        },
    )
    calls = record_requests(client)

    result = make_runner(client, work).run(custom_message())

    assert result.to_json() == {"jobId": JOB, "jobType": "custom", "result": "failed", "failureType": "JobFailed"}
    output = emitted()
    assert '"message":"the work function raised"' in output
    assert '"error_type":"RuntimeError"' in output
    assert "test_runner.py" in output  # where it was raised, for the person who debugs it
    assert EXCEPTION_MARKER not in output
    assert EXCEPTION_MARKER not in json.dumps(calls)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        pytest.param(
            lambda: Success(output_variables={"bad key": "x"}),
            "The work function returned an invalid Success: output_variables.bad key.[key]:"
            " String should match pattern '^[A-Za-z0-9@_-]+$'",
            id="variable-key",
        ),
        pytest.param(
            lambda: Success(output_variables={"Big": "v" * 122_878}),
            "The work function returned an invalid Success: output_variables: output variables total 122881 bytes;"
            " CodePipeline allows 122880 per action",
            id="variables-size",
        ),
        pytest.param(
            lambda: StillRunning(continuation_token=""),
            "The work function returned an invalid StillRunning: continuation_token:"
            " String should have at least 1 character",
            id="empty-token",
        ),
        pytest.param(
            lambda: StillRunning(continuation_token="t", percent_complete=101),
            "The work function returned an invalid StillRunning: percent_complete:"
            " Input should be less than or equal to 100",
            id="percent",
        ),
        pytest.param(
            lambda: Failure(message="x", type="Oops"),  # type: ignore[arg-type]
            "The work function returned an invalid Failure: type: Input should be 'JobFailed', 'ConfigurationError',"
            " 'PermissionError', 'RevisionOutOfSync', 'RevisionUnavailable' or 'SystemUnavailable'",
            id="failure-type",
        ),
        pytest.param(
            lambda: Success(current_revision=CurrentRevision(revision="r", change_identifier="")),
            "The work function returned an invalid CurrentRevision: change_identifier:"
            " String should have at least 1 character",
            id="revision",
        ),
    ],
)
def test_an_invalid_outcome_fails_the_job_naming_the_problem(
    build: Callable[[], Outcome], message: str, codepipeline: Stubbed, emitted: Callable[[], str]
) -> None:
    client, stubber = codepipeline
    stub_details(stubber)
    stubber.add_response(
        "put_job_failure_result", {}, {"jobId": JOB, "failureDetails": {"type": "JobFailed", "message": message}}
    )

    result = make_runner(client, lambda _job: build()).run(custom_message())

    assert result.result == "failed"
    assert '"message":"the work function built an invalid result"' in emitted()


def test_a_validation_error_of_another_model_is_an_exception_like_any_other(codepipeline: Stubbed) -> None:
    client, stubber = codepipeline
    stub_details(stubber)

    class Mine(BaseModel):
        port: int

    def work(job: Job) -> Outcome:
        Mine.model_validate({"port": EXCEPTION_MARKER})
        return Success()

    stubber.add_response(
        "put_job_failure_result",
        {},
        {
            "jobId": JOB,
            "failureDetails": {
                "type": "JobFailed",
                "message": "The work function raised ValidationError; the worker's log has where.",
            },
        },
    )

    assert make_runner(client, work).run(custom_message()).result == "failed"


@pytest.mark.parametrize(("returned", "name"), [({"status": "ok"}, "dict"), (None, "NoneType"), ("Success", "str")])
def test_anything_but_an_outcome_fails_the_job(
    returned: Any, name: str, codepipeline: Stubbed, emitted: Callable[[], str]
) -> None:
    client, stubber = codepipeline
    stub_details(stubber)
    stubber.add_response(
        "put_job_failure_result",
        {},
        {
            "jobId": JOB,
            "failureDetails": {
                "type": "JobFailed",
                "message": f"The work function returned {name}, not Success, Failure or StillRunning",
            },
        },
    )

    assert make_runner(client, returning(returned)).run(custom_message()).result == "failed"
    assert f'"returned_type":"{name}"' in emitted()


def test_a_partner_job_cannot_set_output_variables(codepipeline: Stubbed, secrets: StubbedSecrets) -> None:
    client, stubber = codepipeline
    stub_partner_details(stubber)
    stubber.add_response(
        "put_third_party_job_failure_result",
        {},
        {
            "jobId": PARTNER_JOB,
            "clientToken": CLIENT_TOKEN,
            "failureDetails": {
                "type": "JobFailed",
                "message": "Partner actions cannot set output variables (PutThirdPartyJobSuccessResult)",
            },
        },
    )
    work = returning(Success(output_variables={"StatusCode": "200"}))

    result = make_runner(client, work, partner_tokens(secrets)).run(partner_message())

    assert (result.result, result.failure_type) == ("failed", "JobFailed")


# -- secrets the runner knows are masked in what the work function wrote -------------------------------------


def test_the_client_token_and_credentials_are_masked_in_a_partner_summary(
    codepipeline: Stubbed, secrets: StubbedSecrets
) -> None:
    client, stubber = codepipeline
    stubber.add_response(
        "get_third_party_job_details", {"jobDetails": {"id": PARTNER_JOB, "data": {"artifactCredentials": CREDENTIALS}}}
    )

    def work(job: Job) -> Outcome:
        assert job.artifact_credentials is not None
        return Success(
            summary=f"used token {CLIENT_TOKEN} and key {ACCESS_KEY}",
            external_execution_id=SESSION_TOKEN,
        )

    stubber.add_response(
        "put_third_party_job_success_result",
        {},
        {
            "jobId": PARTNER_JOB,
            "clientToken": CLIENT_TOKEN,
            "executionDetails": {"summary": "used token *** and key ***", "externalExecutionId": "***"},
        },
    )

    assert make_runner(client, work, partner_tokens(secrets)).run(partner_message()).result == "succeeded"


@pytest.mark.parametrize(
    ("build", "operation", "params"),
    [
        pytest.param(
            lambda: Failure(message=f"S3 refused {SECRET_KEY} / {SESSION_TOKEN}"),
            "put_job_failure_result",
            {"jobId": JOB, "failureDetails": {"type": "JobFailed", "message": "S3 refused *** / ***"}},
            id="failure-message",
        ),
        pytest.param(
            lambda: Success(
                summary=f"key={ACCESS_KEY}", output_variables={"Key": ACCESS_KEY, "Note": f"s={SECRET_KEY}"}
            ),
            "put_job_success_result",
            {
                "jobId": JOB,
                "executionDetails": {"summary": "key=***"},
                "outputVariables": {"Key": "***", "Note": "s=***"},
            },
            id="success-variables",
        ),
        pytest.param(
            lambda: StillRunning(continuation_token="t", summary=f"still using {SESSION_TOKEN}"),
            "put_job_success_result",
            {"jobId": JOB, "continuationToken": "t", "executionDetails": {"summary": "still using ***"}},
            id="still-running",
        ),
        pytest.param(
            lambda: Success(
                current_revision=CurrentRevision(
                    revision=f"rev-{ACCESS_KEY}", change_identifier="c1", revision_summary=f"built with {SECRET_KEY}"
                )
            ),
            "put_job_success_result",
            {
                "jobId": JOB,
                "currentRevision": {
                    "revision": "rev-***",
                    "changeIdentifier": "c1",
                    "revisionSummary": "built with ***",
                },
            },
            id="current-revision",
        ),
    ],
)
def test_artifact_credentials_are_masked_in_every_text(
    build: Callable[[], Outcome], operation: str, params: dict[str, Any], codepipeline: Stubbed
) -> None:
    client, stubber = codepipeline
    stubber.add_response("get_job_details", {"jobDetails": {"id": JOB, "data": {"artifactCredentials": CREDENTIALS}}})
    stubber.add_response(operation, {}, params)

    def work(job: Job) -> Outcome:
        assert job.artifact_credentials is not None
        return build()

    make_runner(client, work).run(custom_message())


# -- what CodePipeline answers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["InvalidJobStateException", "JobNotFoundException", "InvalidJobException"])
def test_a_job_no_longer_this_workers_is_stale_not_an_error(
    code: str, codepipeline: Stubbed, emitted: Callable[[], str]
) -> None:
    client, stubber = codepipeline
    stub_details(stubber)
    stubber.add_client_error("put_job_success_result", code, "the job is done", 400, expected_params={"jobId": JOB})

    result = make_runner(client, returning(Success())).run(custom_message())

    assert result.to_json() == {"jobId": JOB, "jobType": "custom", "result": "stale", "error": code}
    assert "CodePipeline refused the result" in emitted()


@pytest.mark.parametrize("code", ["JobNotFoundException", "InvalidJobException"])
def test_details_of_a_job_no_longer_this_workers_make_it_stale(code: str, codepipeline: Stubbed) -> None:
    client, stubber = codepipeline
    stubber.add_client_error("get_job_details", code, expected_params={"jobId": JOB})
    calls = record_requests(client)

    result = make_runner(client, lambda job: Success(summary=job.configuration["Url"])).run(custom_message())

    assert (result.result, result.error) == ("stale", code)
    assert [operation for operation, _ in calls] == ["GetJobDetails"]


@pytest.mark.parametrize(
    ("code", "status"), [("ThrottlingException", 400), ("ServiceUnavailableException", 503), ("InternalFailure", 500)]
)
def test_a_result_that_cannot_be_reported_raises_for_redelivery(
    code: str, status: int, codepipeline: Stubbed, emitted: Callable[[], str]
) -> None:
    client, stubber = codepipeline
    stub_details(stubber)
    stubber.add_client_error("put_job_failure_result", code, "try later", status)

    with pytest.raises(JobNotReported) as caught:
        make_runner(client, returning(Failure(message="red"))).run(custom_message())

    assert (caught.value.job_id, caught.value.code) == (JOB, code)
    assert str(caught.value) == f"job {JOB}: the result was not reported ({code}); the message will be redelivered"
    assert '"message":"result not reported"' in emitted()


def test_details_that_cannot_be_read_raise_for_redelivery(codepipeline: Stubbed) -> None:
    client, stubber = codepipeline
    stubber.add_client_error("get_job_details", "ThrottlingException", http_status_code=400)

    with pytest.raises(JobNotReported) as caught:
        make_runner(client, lambda job: Success(summary=job.configuration["Url"])).run(custom_message())

    assert caught.value.code == "ThrottlingException"
    # The SDK's exception, which may quote values, is in no link of the chain
    chain: list[BaseException] = []
    link: BaseException | None = caught.value
    while link is not None:
        chain.append(link)
        link = link.__cause__ or link.__context__
    assert not any(isinstance(e, ClientError) for e in chain)


def test_oversized_output_variables_are_reported_as_a_failure(codepipeline: Stubbed) -> None:
    client, stubber = codepipeline
    stub_details(stubber)
    stubber.add_client_error(
        "put_job_success_result",
        "OutputVariablesSizeExceededException",
        expected_params={"jobId": JOB, "outputVariables": {"Big": "x"}},
    )
    stubber.add_response(
        "put_job_failure_result",
        {},
        {
            "jobId": JOB,
            "failureDetails": {"type": "JobFailed", "message": "The output variables exceed CodePipeline's size limit"},
        },
    )

    result = make_runner(client, returning(Success(output_variables={"Big": "x"}))).run(custom_message())

    assert (result.result, result.failure_type) == ("failed", "JobFailed")


def test_a_partner_job_without_a_token_for_its_client_id_is_not_run(
    codepipeline: Stubbed, secrets: StubbedSecrets, emitted: Callable[[], str]
) -> None:
    client, _ = codepipeline
    calls = record_requests(client)
    ran: list[str] = []
    sm_client, sm_stubber = secrets
    # The cached secret lacks the clientId, and so does the fresh read it forces
    sm_stubber.add_response("get_secret_value", secret_response({OTHER_CLIENT: "other"}))
    sm_stubber.add_response("get_secret_value", secret_response({OTHER_CLIENT: "other"}))

    def work(job: Job) -> Outcome:
        ran.append(job.id)
        return Success()

    with pytest.raises(JobNotReported) as caught:
        make_runner(client, work, token_store(sm_client), isolate=False).run(partner_message())

    assert caught.value.code == "ClientTokenNotFound"
    assert ran == []
    assert calls == []
    assert '"message":"no client token for a partner job"' in emitted()


def test_a_partner_job_without_a_token_store_is_not_run(codepipeline: Stubbed) -> None:
    client, _ = codepipeline

    with pytest.raises(JobNotReported) as caught:
        make_runner(client, returning(Success())).run(partner_message())

    assert caught.value.code == "ClientTokenNotConfigured"


# -- the work function and the runner, from configuration ------------------------------------------------------


def test_the_work_function_is_loaded_by_reference() -> None:
    assert load_work_function("codepipeline_worker.examples.url_gate:check_url") is check_url


@pytest.mark.parametrize(
    ("reference", "problem"),
    [
        (
            "no_such_package_x1.mod:run",
            "WORK_FUNCTION: module no_such_package_x1.mod cannot be imported (ModuleNotFoundError)",
        ),
        (
            "codepipeline_worker.examples.url_gate:missing",
            "WORK_FUNCTION: codepipeline_worker.examples.url_gate has no function missing",
        ),
        (
            "codepipeline_worker.examples.url_gate:TIMEOUT_S",
            "WORK_FUNCTION: codepipeline_worker.examples.url_gate.TIMEOUT_S is not a function",
        ),
    ],
)
def test_a_bad_work_function_reference_is_a_configuration_error(reference: str, problem: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_work_function(reference)

    assert str(caught.value) == f"invalid configuration: {problem}"
    assert caught.value.__context__ is None


@pytest.mark.parametrize("readable", [True, False])
def test_the_runner_is_built_from_the_worker_settings(
    readable: bool, secrets: StubbedSecrets, monkeypatch: pytest.MonkeyPatch, emitted: Callable[[], str]
) -> None:
    sm_client, sm_stubber = secrets
    if readable:
        sm_stubber.add_response("get_secret_value", secret_response({CLIENT_ID: CLIENT_TOKEN}))
    else:
        sm_stubber.add_client_error("get_secret_value", "ThrottlingException", http_status_code=400)
    # The cold-start read of the secret is shared with the acknowledger (service.checked_token_store)
    monkeypatch.setattr(service_module, "create_client_token_store", lambda _settings: token_store(sm_client))
    settings = load_config(WorkerSettings, {**TEST_ENV, "CLIENT_TOKEN_SECRET_ID": SECRET_ID})

    built = WorkRunner.from_settings(settings)

    assert built._work is check_url
    assert built._tokens is not None
    assert ("client-token secret not readable at cold start" in emitted()) is not readable


def test_a_runner_without_a_secret_has_no_token_store() -> None:
    built = WorkRunner.from_settings(load_config(WorkerSettings, TEST_ENV))

    assert built._tokens is None


def test_a_run_result_holds_no_text_of_the_work() -> None:
    result = RunResult(job_id=JOB, job_type="custom", result="failed", failure_type="JobFailed")

    assert result.to_json() == {"jobId": JOB, "jobType": "custom", "result": "failed", "failureType": "JobFailed"}


# -- a report CodePipeline rejects for good is not retried by running the work again ------------------------


@pytest.mark.parametrize("code", ["ValidationException", "AccessDeniedException"])
def test_a_result_rejected_for_good_fails_the_job_at_once(
    code: str, codepipeline: Stubbed, emitted: Callable[[], str]
) -> None:
    client, stubber = codepipeline
    stub_details(stubber)
    stubber.add_client_error("put_job_success_result", code, expected_params={"jobId": JOB})
    stubber.add_response(
        "put_job_failure_result",
        {},
        {
            "jobId": JOB,
            "failureDetails": {
                "type": "JobFailed",
                "message": f"CodePipeline rejected the work's result ({code}); "
                "the job is failed rather than run again.",
            },
        },
    )

    result = make_runner(client, returning(Success())).run(custom_message())

    assert (result.result, result.failure_type) == ("failed", "JobFailed")
    assert '"message":"CodePipeline rejected the result: the job is failed instead"' in emitted()


def test_a_failure_rejected_for_good_ends_the_job_here_not_in_another_run(
    codepipeline: Stubbed, secrets: StubbedSecrets, emitted: Callable[[], str]
) -> None:
    # Given the partner's client token is no longer the job's: every report of it is refused
    client, stubber = codepipeline
    tokens = partner_tokens(secrets)
    stub_partner_details(stubber)
    stubber.add_client_error("put_third_party_job_success_result", "InvalidClientTokenException")
    stubber.add_client_error("put_third_party_job_failure_result", "InvalidClientTokenException")

    result = make_runner(client, returning(Success()), tokens).run(partner_message())
    metrics.flush_metrics()

    # Then the message is done with (the work is not run again for a report that can never be made), and the
    # rejection is logged and counted for the alarm
    assert (result.result, result.error) == ("rejected", "InvalidClientTokenException")
    output = emitted()
    assert '"message":"CodePipeline rejected the failure report: the job cannot be reported by this worker"' in output
    assert emitted_metrics(output)["ResultsRejected"] == 1.0
    assert CLIENT_TOKEN not in output
