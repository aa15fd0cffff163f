"""Artifacts in moto's S3 and KMS: seeded input files, outputs looked for on success, and the artifact front that
lets a job's live credentials, and nothing else, reach them."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
import zipfile
from typing import TYPE_CHECKING, Any, TypedDict

import boto3
import pytest
from botocore.exceptions import ClientError

from codepipeline_local import ControlClient, ControlError
from tests.endpoint.conftest import CUSTOM, client_for, s3_with
from tests.endpoint.test_faults_and_control import run_cli

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from mypy_boto3_codepipeline.type_defs import JobTypeDef
    from mypy_boto3_s3 import S3Client

    from codepipeline_local import LocalCodePipeline


def claim(endpoint: LocalCodePipeline, **fields: Any) -> JobTypeDef:
    """Seed a custom job, poll and acknowledge it: the job as its worker got it."""
    job_id = endpoint.store.create_job("Custom/Build/MyTool/1", **fields)
    client = client_for(endpoint.url)
    [job] = client.poll_for_jobs(actionTypeId=CUSTOM)["jobs"]
    assert job["id"] == job_id
    client.acknowledge_job(jobId=job_id, nonce=job["nonce"])
    return job


class Where(TypedDict):
    Bucket: str
    Key: str


def where(artifact: Any) -> Where:
    location = artifact["location"]["s3Location"]
    return {"Bucket": location["bucketName"], "Key": location["objectKey"]}


def members(content: bytes) -> dict[str, str]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return {name: archive.read(name).decode() for name in archive.namelist()}


def error_code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


def test_input_files_are_uploaded_as_a_zip_the_job_can_read(artifact_endpoint: LocalCodePipeline) -> None:
    # Given a job seeded with input files and a new KMS key
    job = claim(
        artifact_endpoint,
        input_artifacts=[{"name": "Source", "files": {"app.py": "print('hi')\n", "docs/README.md": "# app\n"}}],
        encryption_key="new",
    )
    key_id = job["data"]["encryptionKey"]["id"]
    assert key_id.startswith("arn:aws:kms:us-east-1:")

    # When the worker reads the input artifact with the job's credentials, through the front
    [source] = job["data"]["inputArtifacts"]
    s3 = s3_with(artifact_endpoint, job["data"]["artifactCredentials"])
    head = s3.head_object(**where(source))
    content = s3.get_object(**where(source))["Body"].read()

    # Then it is a zip of the files, encrypted with the job's key
    assert members(content) == {"app.py": "print('hi')\n", "docs/README.md": "# app\n"}
    assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", key_id)


def test_a_default_job_has_a_source_revision_in_s3(artifact_endpoint: LocalCodePipeline) -> None:
    job = claim(artifact_endpoint)
    [source] = job["data"]["inputArtifacts"]
    content = s3_with(artifact_endpoint, job["data"]["artifactCredentials"]).get_object(**where(source))["Body"]
    assert list(members(content.read())) == ["README.md"]


def test_a_directory_or_a_zip_becomes_an_input_artifact(artifact_endpoint: LocalCodePipeline, tmp_path: Path) -> None:
    (tmp_path / "src" / "lib").mkdir(parents=True)
    (tmp_path / "src" / "lib" / "a.txt").write_text("a")
    (tmp_path / "one.txt").write_text("one")
    zipped = tmp_path / "given.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("z.txt", "z")
    job_id = artifact_endpoint.store.create_job(
        "Custom/Build/MyTool/1",
        input_artifacts=[
            {"name": "Dir", "path": str(tmp_path / "src")},
            {"name": "File", "path": str(tmp_path / "one.txt")},
            {"name": "Zip", "path": str(zipped)},
        ],
    )
    read = {name: members(artifact_endpoint.store.artifact(job_id, name)[1] or b"") for name in ("Dir", "File", "Zip")}
    assert read == {"Dir": {"lib/a.txt": "a"}, "File": {"one.txt": "one"}, "Zip": {"z.txt": "z"}}


def test_outputs_are_looked_for_on_success_and_shown(artifact_endpoint: LocalCodePipeline) -> None:
    # Given a job with two outputs, of which the worker writes one, with the job's key
    job = claim(artifact_endpoint, output_artifacts=[{"name": "Report"}, {"name": "Logs"}], encryption_key="new")
    report, _ = job["data"]["outputArtifacts"]
    s3 = s3_with(artifact_endpoint, job["data"]["artifactCredentials"])
    key_id = job["data"]["encryptionKey"]["id"]
    s3.put_object(**where(report), Body=b"all good", ServerSideEncryption="aws:kms", SSEKMSKeyId=key_id)

    # When it reports success
    client_for(artifact_endpoint.url).put_job_success_result(jobId=job["id"])

    # Then the endpoint's record shows what the next stage would find, and what it would miss
    record = artifact_endpoint.store.job(job["id"])
    last = record["history"][-1]
    assert (record["status"], last["missingOutputArtifacts"]) == ("Succeeded", ["Logs"])
    found = {o["name"]: o for o in last["outputArtifacts"]}
    assert found["Report"] == {
        "name": "Report",
        **report["location"]["s3Location"],
        "exists": True,
        "size": 8,
        "encryption": "aws:kms",
        "kmsKeyId": key_id,
        "encryptedWithJobKey": True,
    }
    assert found["Logs"]["exists"] is False
    assert record["outputs"] == last["outputArtifacts"]
    described, content = ControlClient(artifact_endpoint.url).artifact(job["id"], "Report")
    assert (described["exists"], content) == (True, b"all good")


def test_a_continued_job_is_not_checked_until_its_last_job(artifact_endpoint: LocalCodePipeline) -> None:
    job = claim(artifact_endpoint)
    client_for(artifact_endpoint.url).put_job_success_result(jobId=job["id"], continuationToken="more")
    assert "outputArtifacts" not in artifact_endpoint.store.job(job["id"])["history"][-1]


# -- the front's teeth ------------------------------------------------------------------------------------------


@pytest.fixture
def job(artifact_endpoint: LocalCodePipeline) -> JobTypeDef:
    return claim(artifact_endpoint)


@pytest.fixture
def s3(artifact_endpoint: LocalCodePipeline, job: JobTypeDef) -> S3Client:
    return s3_with(artifact_endpoint, job["data"]["artifactCredentials"])


def test_the_job_credentials_read_inputs_and_write_outputs_only(
    artifact_endpoint: LocalCodePipeline, job: JobTypeDef, s3: S3Client
) -> None:
    [source], [output] = job["data"]["inputArtifacts"], job["data"]["outputArtifacts"]
    other = claim(artifact_endpoint)["data"]["inputArtifacts"][0]

    s3.put_object(**where(output), Body=b"result")
    assert s3.get_object(**where(output))["Body"].read() == b"result"
    refused: list[Callable[[], object]] = [
        lambda: s3.put_object(**where(source), Body=b"overwrite the input"),
        lambda: s3.get_object(**where(other)),  # another job's artifact
        lambda: s3.put_object(Bucket=output["location"]["s3Location"]["bucketName"], Key="elsewhere", Body=b""),
        lambda: s3.list_objects_v2(Bucket=output["location"]["s3Location"]["bucketName"]),
        lambda: s3.delete_object(**where(source)),
    ]
    for refused_call in refused:
        with pytest.raises(ClientError) as caught:
            refused_call()
        assert error_code(caught) == "AccessDenied"
    assert artifact_endpoint.store.artifact(job["id"], "SourceArtifact")[0]["exists"]


def test_a_large_output_goes_up_in_parts_and_comes_back(
    artifact_endpoint: LocalCodePipeline, job: JobTypeDef, s3: S3Client, tmp_path: Path
) -> None:
    [output] = job["data"]["outputArtifacts"]
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * 40_000)  # about 10 MB: two parts of s3transfer's 8 MB
    s3.upload_file(str(big), **where(output))
    s3.download_file(**where(output), Filename=str(tmp_path / "back.bin"))
    assert (tmp_path / "back.bin").read_bytes() == big.read_bytes()


def test_credentials_the_endpoint_did_not_issue_are_refused(
    artifact_endpoint: LocalCodePipeline, job: JobTypeDef
) -> None:
    # A worker using its own (the function role's) credentials, as moto alone would accept
    own = boto3.client(
        "s3",
        endpoint_url=artifact_endpoint.artifact_url,
        region_name="us-east-1",
        aws_access_key_id="AKIAFUNCTIONROLE",
        aws_secret_access_key="secret",
    )
    with pytest.raises(ClientError) as caught:
        own.get_object(**where(job["data"]["inputArtifacts"][0]))
    assert error_code(caught) == "InvalidAccessKeyId"


@pytest.mark.parametrize(
    ("change", "code"),
    [("secretAccessKey", "SignatureDoesNotMatch"), ("sessionToken", "InvalidToken")],
)
def test_a_request_not_signed_with_the_whole_credential_is_refused(
    artifact_endpoint: LocalCodePipeline, job: JobTypeDef, change: str, code: str
) -> None:
    credentials: Any = {**job["data"]["artifactCredentials"], change: "forged"}
    with pytest.raises(ClientError) as caught:
        s3_with(artifact_endpoint, credentials).get_object(**where(job["data"]["inputArtifacts"][0]))
    assert error_code(caught) == code


def test_expired_credentials_are_refused_and_fresh_ones_from_job_details_work(
    artifact_endpoint: LocalCodePipeline, job: JobTypeDef, s3: S3Client
) -> None:
    # Given the job's credentials expired
    ControlClient(artifact_endpoint.url).expire_credentials(job["id"])
    source = where(job["data"]["inputArtifacts"][0])

    # When the worker uses them, then S3 says so as AWS does, quoting the token (which a worker must not pass on)
    with pytest.raises(ClientError) as caught:
        s3.get_object(**source)
    assert error_code(caught) == "ExpiredToken"
    error: dict[str, Any] = dict(caught.value.response["Error"])
    assert error["Token-0"] == job["data"]["artifactCredentials"]["sessionToken"]

    # And once it refreshes them from GetJobDetails, it reads again
    fresh = client_for(artifact_endpoint.url).get_job_details(jobId=job["id"])["jobDetails"]["data"]
    assert s3_with(artifact_endpoint, fresh["artifactCredentials"]).get_object(**source)["Body"].read()


def test_credentials_last_as_long_as_the_setting_says(artifact_endpoint: LocalCodePipeline) -> None:
    ControlClient(artifact_endpoint.url).settings(credentialsTtlSeconds=0)
    job = claim(artifact_endpoint)
    with pytest.raises(ClientError) as caught:
        s3_with(artifact_endpoint, job["data"]["artifactCredentials"]).get_object(
            **where(job["data"]["inputArtifacts"][0])
        )
    assert error_code(caught) == "ExpiredToken"
    assert artifact_endpoint.store.job(job["id"])["credentials"][0]["expired"] is True


def test_a_presigned_url_is_refused(artifact_endpoint: LocalCodePipeline, job: JobTypeDef, s3: S3Client) -> None:
    url = s3.generate_presigned_url("get_object", Params=where(job["data"]["inputArtifacts"][0]))

    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(url, timeout=5)  # noqa: S310 - the front, on loopback
    caught.value.close()
    assert caught.value.code == 403


# -- without a local S3, and from the command line -----------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [{"inputArtifacts": [{"name": "Src", "files": {"a": "b"}}]}, {"encryptionKey": "new"}],
)
def test_content_and_keys_need_a_local_s3(endpoint: LocalCodePipeline, fields: dict[str, Any]) -> None:
    with pytest.raises(ControlError, match="needs a local S3"):
        ControlClient(endpoint.url).create_jobs("Custom/Build/MyTool/1", **fields)
    assert endpoint.artifact_url is None


def test_an_output_artifact_takes_no_content(artifact_endpoint: LocalCodePipeline) -> None:
    with pytest.raises(ValueError, match="the worker writes it"):
        artifact_endpoint.store.create_job("Custom/Build/MyTool/1", output_artifacts=[{"name": "Out", "files": {}}])


def test_the_command_line_seeds_input_files_and_reads_outputs(
    artifact_endpoint: LocalCodePipeline, tmp_path: Path
) -> None:
    url = ["--url", artifact_endpoint.url]
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "main.py").write_text("print(1)\n")
    created = run_cli(
        "create-job",
        *url,
        "--action-type",
        "Custom/Build/MyTool/1",
        "--input-artifact",
        f"Source={tmp_path / 'src'}",
        "--output-artifact",
        "Report",
        "--encryption-key",
        "new",
    )
    assert created.returncode == 0, created.stderr
    [job_id] = json.loads(created.stdout)["jobIds"]

    listed = run_cli("artifact", *url, job_id, "Source")
    extracted = run_cli("artifact", *url, job_id, "Source", "--extract", str(tmp_path / "out"))
    assert extracted.returncode == 0, extracted.stderr
    missing = run_cli("artifact", *url, job_id, "Report")

    assert json.loads(listed.stdout)["members"] == ["main.py"]
    assert json.loads(listed.stdout)["encryption"] == "aws:kms"
    assert (tmp_path / "out" / "main.py").read_text() == "print(1)\n"
    assert json.loads(missing.stdout) == {"name": "Report", "exists": False}
    assert run_cli("artifact", *url, job_id, "Nope").returncode == 1
