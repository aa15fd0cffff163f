"""The work side's models: the queue message, the outcomes with CodePipeline's limits, and the Job the work
function is given."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from pydantic import ValidationError

from codepipeline_worker.shared.messages import InvalidJobMessage, JobMessage
from codepipeline_worker.work import (
    ArtifactCredentials,
    Failure,
    Job,
    JobDetails,
    StillRunning,
    Success,
)
from codepipeline_worker.work.job import MAX_OUTPUT_VARIABLES_BYTES
from tests.unit.conftest import CLIENT_ID, CUSTOM

JOB = "11111111-abcd-1111-abcd-111111abcdef"
SECRET_MARKER = "secret-value-MARKER-31c7"


def valid() -> dict[str, Any]:
    return {"version": 1, "jobId": JOB, "jobType": "custom"}


# -- JobMessage -----------------------------------------------------------------------------------------------


def test_a_message_round_trips_through_its_body() -> None:
    message = JobMessage.from_job_data(
        JOB,
        "custom",
        {
            "actionTypeId": CUSTOM,
            "pipelineContext": {"pipelineName": "p", "stage": {"name": "s"}},
            "inputArtifacts": [
                {"name": "In", "location": {"type": "S3", "s3Location": {"bucketName": "b", "objectKey": "k"}}}
            ],
            "continuationToken": "c",
            "artifactCredentials": {"accessKeyId": SECRET_MARKER, "secretAccessKey": "s", "sessionToken": "t"},
            "actionConfiguration": {"configuration": {"Password": SECRET_MARKER}},
            "aFieldAwsAddsLater": SECRET_MARKER,
        },
        account_id="123456789012",
    )

    body = message.to_body()

    assert json.loads(body) == {
        "version": 1,
        "jobId": JOB,
        "jobType": "custom",
        "accountId": "123456789012",
        "actionType": CUSTOM,
        "pipelineContext": {"pipelineName": "p", "stage": {"name": "s"}},
        "inputArtifacts": [
            {"name": "In", "location": {"type": "S3", "s3Location": {"bucketName": "b", "objectKey": "k"}}}
        ],
        "outputArtifacts": [],
        "continuationToken": "c",
    }
    assert SECRET_MARKER not in body
    assert JobMessage.from_body(body) == message
    assert message.has_context


def test_a_message_from_no_job_data_still_has_an_empty_context() -> None:
    message = JobMessage.from_job_data(JOB, "custom", None)

    assert message.has_context
    assert json.loads(message.to_body()) == {
        "version": 1,
        "jobId": JOB,
        "jobType": "custom",
        "pipelineContext": {},
        "inputArtifacts": [],
        "outputArtifacts": [],
    }


@pytest.mark.parametrize(
    "data",
    [
        {"inputArtifacts": [{"name": "not an artifact name!"}]},
        {"pipelineContext": {"pipelineExecutionId": "not-a-uuid"}},
        {"actionTypeId": {"owner": "Someone", "category": "Build", "provider": "P", "version": "1"}},
        {"continuationToken": ""},
    ],
)
def test_job_data_that_does_not_fit_gives_an_ids_only_message(data: dict[str, Any]) -> None:
    message = JobMessage.from_job_data("p-1", "thirdParty", data, client_id=CLIENT_ID, account_id="123456789012")

    assert message == JobMessage(job_id="p-1", job_type="thirdParty", client_id=CLIENT_ID)
    assert not message.has_context


def test_an_ids_only_message_has_no_context() -> None:
    message = JobMessage.from_body(json.dumps(valid()))

    assert not message.has_context
    assert message.to_body() == '{"version":1,"jobId":"11111111-abcd-1111-abcd-111111abcdef","jobType":"custom"}'


@pytest.mark.parametrize(
    ("change", "fields"),
    [
        ({"nonce": SECRET_MARKER}, "nonce"),
        ({"clientToken": SECRET_MARKER}, "clientToken"),
        ({"artifactCredentials": {"accessKeyId": SECRET_MARKER}}, "artifactCredentials"),
        ({"version": 2}, "version"),
        ({"jobType": SECRET_MARKER}, "jobType"),
        ({"jobId": ""}, "jobId"),
        ({"jobId": "x" * 513}, "jobId"),
        ({"accountId": SECRET_MARKER}, "accountId"),
        ({"clientId": SECRET_MARKER}, "clientId"),
        ({"continuationToken": ""}, "continuationToken"),
        ({"pipelineContext": {"pipelineExecutionId": SECRET_MARKER}}, "pipelineContext.pipelineExecutionId"),
        ({"inputArtifacts": [{"name": SECRET_MARKER + " x"}]}, "inputArtifacts.0.name"),
        ({"nonce": "a", "clientToken": "b"}, "clientToken, nonce"),
    ],
)
def test_a_bad_message_names_its_fields_never_their_values(change: dict[str, Any], fields: str) -> None:
    with pytest.raises(InvalidJobMessage) as caught:
        JobMessage.from_body(json.dumps({**valid(), **change}))

    assert str(caught.value) == f"not a job message: {fields}"
    assert caught.value.__context__ is None
    assert caught.value.__cause__ is None


NOT_UUID = "a custom job's jobId is a UUID"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        pytest.param("not json " + SECRET_MARKER, "Invalid JSON: expected ident at line 1 column 2", id="not-json"),
        pytest.param("[]", "Input should be an object", id="array"),
        pytest.param(
            json.dumps({**valid(), "jobId": "not-a-uuid-" + SECRET_MARKER}), NOT_UUID, id="custom-id-not-uuid"
        ),
        pytest.param(json.dumps({**valid(), "jobId": JOB.upper()}), NOT_UUID, id="custom-id-upper-case"),
        pytest.param(
            json.dumps({**valid(), "jobType": "thirdParty", "jobId": "p-1"}),
            "a partner job's message needs its clientId: the work side reads the token by it",
            id="partner-without-client-id",
        ),
    ],
)
def test_a_message_that_is_not_a_job_is_refused_with_its_reason_and_without_echo(body: str, reason: str) -> None:
    with pytest.raises(InvalidJobMessage) as caught:
        JobMessage.from_body(body)

    assert str(caught.value) == f"not a job message: {reason}"
    assert SECRET_MARKER not in repr(caught.value)


def test_a_custom_job_id_must_be_a_uuid_and_a_partner_job_needs_its_client_id() -> None:
    with pytest.raises(ValidationError, match="a custom job's jobId is a UUID"):
        JobMessage(job_id="job-1", job_type="custom")
    with pytest.raises(ValidationError, match="needs its clientId"):
        JobMessage(job_id="job-1", job_type="thirdParty")

    partner = JobMessage(job_id="job-1", job_type="thirdParty", client_id=CLIENT_ID)
    assert partner.client_id == CLIENT_ID


def test_more_than_ten_bad_fields_are_cut_to_ten() -> None:
    extras = {f"extra{n:02d}": n for n in range(12)}

    with pytest.raises(InvalidJobMessage) as caught:
        JobMessage.from_body(json.dumps({**valid(), **extras}))

    assert str(caught.value) == "not a job message: " + ", ".join(f"extra{n:02d}" for n in range(10))


# -- outcomes -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["StatusCode", "a", "with@at", "under_score", "da-sh", "0123"])
def test_output_variable_keys_that_codepipeline_accepts(key: str) -> None:
    assert Success(output_variables={key: "v"}).output_variables == {key: "v"}


@pytest.mark.parametrize("key", ["", "bad key", "ok\nbad", "ok\n", "\nok", "dot.ted", "ünï", "a/b"])
def test_output_variable_keys_are_matched_whole(key: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Success(output_variables={key: "v"})

    assert caught.value.errors()[0]["type"] == "string_pattern_mismatch"


def test_no_output_variables_at_all() -> None:
    assert Success(output_variables=None).output_variables is None
    assert Success(output_variables={}).output_variables == {}


def test_output_variables_may_total_exactly_the_quota() -> None:
    # 3 bytes of key plus the value: exactly 122,880 bytes in all
    assert MAX_OUTPUT_VARIABLES_BYTES == 122_880
    at_quota = {"Key": "v" * (122_880 - 3)}

    assert Success(output_variables=at_quota).output_variables == at_quota
    with pytest.raises(ValidationError, match="output variables total 122881 bytes; CodePipeline allows 122880"):
        Success(output_variables={"Key": "v" * (122_880 - 2)})


def test_the_quota_counts_bytes_not_characters() -> None:
    # "é" is two bytes in UTF-8: half as many characters reach the quota
    with pytest.raises(ValidationError, match="total 122883 bytes"):
        Success(output_variables={"Key": "é" * 61_440})


def test_a_long_failure_message_is_cut_to_five_thousand_characters() -> None:
    cut = Failure(message="x" * 6_000).message
    exact = Failure(message="y" * 5_000).message

    assert len(cut) == 5_000
    assert cut == "x" * 4_999 + "…"
    assert exact == "y" * 5_000
    with pytest.raises(ValidationError):
        Failure(message="")


def test_outcome_limits() -> None:
    assert StillRunning(continuation_token="t" * 2048, percent_complete=0).percent_complete == 0
    with pytest.raises(ValidationError):
        StillRunning(continuation_token="t" * 2049)
    with pytest.raises(ValidationError):
        StillRunning(continuation_token="t", percent_complete=-1)
    with pytest.raises(ValidationError):
        Success(summary="s" * 2049)
    with pytest.raises(ValidationError):
        Success(unknown="x")  # type: ignore[call-arg]


# -- Job --------------------------------------------------------------------------------------------------------

DETAILS_DATA = {
    "actionTypeId": CUSTOM,
    "actionConfiguration": {"configuration": {"Url": "https://example.com", "Password": SECRET_MARKER}},
    "pipelineContext": {"pipelineName": "from-details"},
    "inputArtifacts": [{"name": "DetailsIn"}],
    "outputArtifacts": [{"name": "DetailsOut"}],
    "artifactCredentials": {"accessKeyId": "AKIA", "secretAccessKey": SECRET_MARKER, "sessionToken": "tok"},
    "continuationToken": "details-token",
}


class Loader:
    """Counts the details loads a Job makes."""

    def __init__(self) -> None:
        self.loads = 0

    def __call__(self, message: JobMessage) -> JobDetails:
        self.loads += 1
        return JobDetails.from_job_data(DETAILS_DATA)


def test_a_job_with_context_reads_it_from_the_message() -> None:
    loader = Loader()
    message = JobMessage.from_job_data(
        JOB,
        "custom",
        {
            "actionTypeId": CUSTOM,
            "pipelineContext": {"pipelineName": "from-message"},
            "inputArtifacts": [{"name": "MessageIn"}],
            "continuationToken": "message-token",
        },
    )
    job = Job(message, loader)

    assert job.pipeline_context.pipeline_name == "from-message"
    assert str(job.action_type) == "Custom/Build/MyTool/1"
    assert [a.name for a in job.input_artifacts] == ["MessageIn"]
    assert job.output_artifacts == []
    assert job.continuation_token == "message-token"
    assert loader.loads == 0
    # The configuration and the credentials are never in the message: asking for them loads the details, once
    assert job.configuration["Url"] == "https://example.com"
    assert job.artifact_credentials is not None
    assert loader.loads == 1


def test_a_job_with_ids_only_loads_its_details_once() -> None:
    loader = Loader()
    job = Job(JobMessage(job_id=JOB, job_type="custom"), loader)

    assert loader.loads == 0
    assert job.pipeline_context.pipeline_name == "from-details"
    assert str(job.action_type) == "Custom/Build/MyTool/1"
    assert [a.name for a in job.input_artifacts] == ["DetailsIn"]
    assert [a.name for a in job.output_artifacts] == ["DetailsOut"]
    assert job.continuation_token == "details-token"
    assert job.configuration == {"Url": "https://example.com", "Password": SECRET_MARKER}
    assert loader.loads == 1


def test_the_details_show_no_secret_in_their_repr() -> None:
    details = JobDetails.from_job_data(DETAILS_DATA)

    assert SECRET_MARKER not in repr(details)
    assert SECRET_MARKER not in str(details)
    assert details.artifact_credentials is not None
    assert SECRET_MARKER not in repr(details.artifact_credentials)
    assert details.artifact_credentials.secrets() == ["AKIA", SECRET_MARKER, "tok"]


def test_details_of_nothing_are_empty() -> None:
    details = JobDetails.from_job_data(None)

    assert (details.configuration, details.artifact_credentials, details.action_type) == ({}, None, None)
    assert details.pipeline_context.pipeline_name is None


def test_artifact_credentials_are_secret_strings() -> None:
    credentials = ArtifactCredentials.model_validate(
        {"accessKeyId": "AKIA", "secretAccessKey": SECRET_MARKER, "sessionToken": "tok"}
    )

    assert SECRET_MARKER not in credentials.model_dump_json()


def test_the_time_left_counts_down_to_zero() -> None:
    message = JobMessage(job_id=JOB, job_type="custom")

    assert Job(message, Loader()).remaining_time_s() is None
    left = Job(message, Loader(), deadline=time.monotonic() + 10).remaining_time_s()
    assert left is not None
    assert 9.0 < left <= 10.0
    assert Job(message, Loader(), deadline=time.monotonic() - 5).remaining_time_s() == 0.0
