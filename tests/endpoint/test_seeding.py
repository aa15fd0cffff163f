"""Seeding jobs: checked against botocore's model before they exist, realistic by default, every field settable
from Python, the control API and the command line."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError

from codepipeline_local import ControlClient, ControlError
from tests.endpoint.conftest import CLIENT_ID, CLIENT_TOKEN, CUSTOM, PARTNER, client_for
from tests.endpoint.test_faults_and_control import run_cli

if TYPE_CHECKING:
    from mypy_boto3_codepipeline import CodePipelineClient

    from codepipeline_local import LocalCodePipeline

LOCATION = {"type": "S3", "s3Location": {"bucketName": "b", "objectKey": "k"}}
ARTIFACT = {"name": "Src", "location": LOCATION}
KEY = {"id": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab", "type": "KMS"}


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        (
            {"inputArtifacts": [{**ARTIFACT, "location": {**LOCATION, "type": "CodeCommit"}}]},
            "Member must satisfy enum value set: [S3]",
        ),
        ({"inputArtifacts": [{"name": "Src", "locaton": {}}]}, "Unknown member 'data.inputArtifacts.1.locaton'"),
        ({"outputArtifacts": [{"name": "has space"}]}, "at 'data.outputArtifacts.1.name'"),
        ({"accountId": "12"}, "at 'accountId'"),
        ({"configuration": {"ProjectName": "x" * 1001}}, "at 'data.actionConfiguration.configuration.ProjectName'"),
        ({"continuationToken": "t" * 2049}, "at 'data.continuationToken'"),
        ({"pipelineContext": {"pipelineArn": "arn:aws:s3:::bucket"}}, "at 'data.pipelineContext.pipelineArn'"),
        ({"encryptionKey": {"id": "k", "type": "AES"}}, "at 'data.encryptionKey.type'"),
        ({"jobId": "not-a-uuid"}, "at 'id'"),
        ({"nonce": "n" * 51}, "at 'nonce'"),
        ({"dispatchedNonce": ""}, "at 'dispatchedNonce'"),
        (
            {"artifactCredentials": {"accessKeyId": "a", "secretAccessKey": "s"}},
            "Value null at 'artifactCredentials.sessionToken'",
        ),
        ({"kind": "thirdParty"}, "Custom/Build/MyTool/1 has no thirdParty jobs"),
        ({"clientId": CLIENT_ID, "clientToken": "t"}, "a custom job has no clientId or clientToken"),
        ({"status": "InProgress"}, "seeded Created, Queued"),
        ({"timeoutSeconds": -1}, "timeoutSeconds must be positive"),
    ],
)
def test_a_job_the_model_cannot_carry_is_refused_before_it_exists(
    endpoint: LocalCodePipeline, fields: dict[str, Any], problem: str
) -> None:
    control = ControlClient(endpoint.url)

    with pytest.raises(ControlError) as refused:
        control.create_jobs("Custom/Build/MyTool/1", **fields)

    assert problem in str(refused.value)
    assert control.jobs() == []


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"clientId": "not-a-uuid", "clientToken": CLIENT_TOKEN}, "at 'clientId'"),
        ({"clientId": CLIENT_ID, "clientToken": "t" * 257}, "at 'clientToken'"),
        ({"clientId": CLIENT_ID}, "needs a clientId and clientToken pair"),
        ({"clientId": CLIENT_ID, "clientToken": CLIENT_TOKEN, "jobId": "j" * 513}, "at 'id'"),
    ],
)
def test_a_partner_job_the_model_cannot_carry_is_refused(
    endpoint: LocalCodePipeline, fields: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ControlError) as refused:
        ControlClient(endpoint.url).create_jobs("ThirdParty/Deploy/PartnerTool/2", **fields)
    assert problem in str(refused.value)
    assert endpoint.store.jobs() == []


def test_a_poll_whose_answer_would_not_fit_changes_nothing(endpoint: LocalCodePipeline) -> None:
    # Given a queued job whose data no longer fits the model (as a seed the control API let through would)
    job_id = endpoint.store.create_job("Custom/Build/MyTool/1")
    endpoint.store._jobs[job_id].input_artifacts[0]["location"]["type"] = "CodeCommit"

    # When a worker polls, its SDK retrying the failure
    with pytest.raises(ClientError) as caught:
        client_for(endpoint.url, attempts=2).poll_for_jobs(actionTypeId=CUSTOM)

    # Then every attempt is an InternalFailure (never an empty, successful answer), and the job was not dispatched
    assert caught.value.response["Error"]["Code"] == "InternalFailure"
    assert caught.value.response["ResponseMetadata"]["RetryAttempts"] == 1
    summary = endpoint.store.job(job_id)
    assert (summary["status"], summary["dispatches"]) == ("Queued", 0)
    assert endpoint.store.issued_secrets() == []


def test_a_job_has_a_real_jobs_data_by_default(endpoint: LocalCodePipeline, client: CodePipelineClient) -> None:
    endpoint.store.create_job("Custom/Build/MyTool/1", configuration={"ProjectName": "web"})

    [job] = client.poll_for_jobs(actionTypeId=CUSTOM)["jobs"]

    data = job["data"]
    context = data["pipelineContext"]
    assert context["pipelineArn"] == "arn:aws:codepipeline:us-east-1:123456789012:local-pipeline"
    assert len(context["pipelineExecutionId"]) == 36
    assert context["stage"] == {"name": "Build"}
    assert set(context["action"]) == {"name", "actionExecutionId"}
    assert job["accountId"] == "123456789012"
    [source] = data["inputArtifacts"]
    [output] = data["outputArtifacts"]
    assert (source["name"], output["name"]) == ("SourceArtifact", "BuildArtifact")
    for artifact in (source, output):
        assert artifact["location"]["type"] == "S3"
        assert artifact["location"]["s3Location"]["bucketName"] == "codepipeline-us-east-1-123456789012"
        assert artifact["location"]["s3Location"]["objectKey"].startswith(f"local-pipeline/{artifact['name'][:10]}/")
    assert set(data["artifactCredentials"]) == {"accessKeyId", "secretAccessKey", "sessionToken"}
    assert "encryptionKey" not in data


def test_a_partner_job_has_the_same_context(endpoint: LocalCodePipeline, client: CodePipelineClient) -> None:
    job_id = endpoint.store.create_job(
        "ThirdParty/Deploy/PartnerTool/2", client_id=CLIENT_ID, client_token=CLIENT_TOKEN, dispatched_nonce="1"
    )
    data = client.get_third_party_job_details(jobId=job_id, clientToken=CLIENT_TOKEN)["jobDetails"]["data"]
    assert data["pipelineContext"]["pipelineArn"].startswith("arn:aws:codepipeline:")
    assert (len(data["inputArtifacts"]), len(data["outputArtifacts"])) == (1, 1)
    assert client.poll_for_third_party_jobs(actionTypeId=PARTNER)["jobs"] == []


def test_every_field_is_settable_through_the_control_api(
    endpoint: LocalCodePipeline, client: CodePipelineClient
) -> None:
    context = {"pipelineName": "web", "stage": {"name": "Test"}, "action": {"name": "Check"}}
    credentials = {"accessKeyId": "AKIAEXAMPLE", "secretAccessKey": "secret", "sessionToken": "token"}
    [job_id] = ControlClient(endpoint.url).create_jobs(
        "Custom/Build/MyTool/1",
        accountId="210987654321",
        pipelineContext=context,
        inputArtifacts=[{**ARTIFACT, "revision": "abc123"}],
        outputArtifacts=[],
        encryptionKey=KEY,
        artifactCredentials=credentials,
        continuationToken="step-2",
        nonce="42",
        timeoutSeconds=120,
    )

    [job] = client.poll_for_jobs(actionTypeId=CUSTOM)["jobs"]

    assert (job["id"], job["nonce"], job["accountId"]) == (job_id, "42", "210987654321")
    data = job["data"]
    assert data["pipelineContext"] == context
    assert data["inputArtifacts"] == [{**ARTIFACT, "revision": "abc123"}]
    assert data["outputArtifacts"] == []
    assert data["encryptionKey"] == KEY
    assert data["artifactCredentials"] == credentials
    assert data["continuationToken"] == "step-2"
    assert endpoint.store.job(job_id)["timeoutSeconds"] == 120


def test_a_job_without_artifacts_gets_no_credentials(endpoint: LocalCodePipeline, client: CodePipelineClient) -> None:
    job_id = endpoint.store.create_job("Custom/Build/MyTool/1", input_artifacts=[], output_artifacts=[])
    [job] = client.poll_for_jobs(actionTypeId=CUSTOM)["jobs"]
    client.acknowledge_job(jobId=job_id, nonce=job["nonce"])

    assert "artifactCredentials" not in job["data"]
    assert "artifactCredentials" not in client.get_job_details(jobId=job_id)["jobDetails"]["data"]


def test_each_details_call_issues_fresh_credentials_with_an_expiry(
    endpoint: LocalCodePipeline, client: CodePipelineClient
) -> None:
    # Given a claimed job
    job_id = endpoint.store.create_job("Custom/Build/MyTool/1")
    [job] = client.poll_for_jobs(actionTypeId=CUSTOM)["jobs"]
    client.acknowledge_job(jobId=job_id, nonce=job["nonce"])

    # When the worker asks for its details twice
    first = client.get_job_details(jobId=job_id)["jobDetails"]["data"]["artifactCredentials"]
    second = client.get_job_details(jobId=job_id)["jobDetails"]["data"]["artifactCredentials"]

    # Then each answer holds new credentials, and the endpoint shows when each expires (never their values)
    keys = {job["data"]["artifactCredentials"]["accessKeyId"], first["accessKeyId"], second["accessKeyId"]}
    assert len(keys) == 3
    shown = endpoint.store.job(job_id)["credentials"]
    assert [set(c) for c in shown] == [{"issuedAt", "expiresAt", "expired"}] * 3
    assert not any(c["expired"] for c in shown)
    assert not any(key in json.dumps(endpoint.store.jobs()) for key in keys)


def test_the_command_line_sets_every_field(endpoint: LocalCodePipeline) -> None:
    url = ["--url", endpoint.url]
    created = run_cli(
        "create-job",
        *url,
        "--action-type",
        "Custom/Build/MyTool/1",
        "--account-id",
        "210987654321",
        "--pipeline-name",
        "web",
        "--stage",
        "Checks",
        "--action-name",
        "Lint",
        "--output-artifact",
        "Report",
        "--encryption-key",
        KEY["id"],
        "--continuation-token",
        "step-2",
        "--nonce",
        "7",
        "--timeout",
        "90",
        "--json",
        json.dumps({"inputArtifacts": [ARTIFACT]}),
    )
    assert created.returncode == 0, created.stderr
    [job_id] = json.loads(created.stdout)["jobIds"]

    job = endpoint.store.job(job_id)
    assert job["accountId"] == "210987654321"
    assert job["pipelineContext"]["pipelineArn"] == "arn:aws:codepipeline:us-east-1:210987654321:web"
    assert (job["pipelineContext"]["stage"], job["pipelineContext"]["action"]["name"]) == ({"name": "Checks"}, "Lint")
    assert [a["name"] for a in job["outputArtifacts"]] == ["Report"]
    assert job["inputArtifacts"] == [ARTIFACT]
    assert job["encryptionKey"] == KEY
    assert (job["continuationToken"], job["timeoutSeconds"]) == ("step-2", 90)
    [polled] = client_for(endpoint.url).poll_for_jobs(actionTypeId=CUSTOM)["jobs"]
    assert polled["nonce"] == "7"


def test_the_command_line_seeds_a_job_without_artifacts_and_held(endpoint: LocalCodePipeline) -> None:
    created = run_cli(
        "create-job", "--url", endpoint.url, "--action-type", "Custom/Build/MyTool/1", "--no-artifacts", "--created"
    )
    assert created.returncode == 0, created.stderr
    [job] = endpoint.store.jobs()
    assert (job["status"], job["inputArtifacts"], job["outputArtifacts"]) == ("Created", [], [])


def test_the_command_line_reports_a_refused_seed(endpoint: LocalCodePipeline) -> None:
    refused = run_cli(
        "create-job", "--url", endpoint.url, "--action-type", "Custom/Build/MyTool/1", "--account-id", "1"
    )
    assert refused.returncode == 1
    assert "at 'accountId'" in refused.stderr
