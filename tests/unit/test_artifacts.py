"""The artifact API's S3 requests, as botocore's Stubber checks them against S3's model: signed with the job's
credentials, SSE-KMS with the job's key or SSE-S3, multipart parts and their abort, credentials fetched again
when old or refused; and zips checked before anything lands outside the destination."""

from __future__ import annotations

import io
import json
import socket
import stat
import zipfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.stub import ANY, Stubber
from urllib3.response import HTTPResponse

from codepipeline_worker.shared.adapter import CodePipelineAdapter
from codepipeline_worker.shared.messages import JobMessage
from codepipeline_worker.shared.s3 import create_s3_client
from codepipeline_worker.work import ArtifactError, Failure, Job, JobDetails, zips
from codepipeline_worker.work import artifacts as artifacts_module
from codepipeline_worker.work import job as job_module
from codepipeline_worker.work.runner import WorkRunner
from tests.conftest import UNSAFE_ZIPS, zipped
from tests.unit.conftest import record_requests

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from mypy_boto3_s3 import S3Client

    from codepipeline_worker.shared.s3 import SessionCredentials
    from codepipeline_worker.work import Outcome
    from tests.unit.conftest import Stubbed

pytestmark = pytest.mark.usefixtures("clean_metrics")

JOB_ID = "33333333-abcd-3333-abcd-333333abcdef"
BUCKET = "codepipeline-us-east-1-123456789012"
KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ISSUED = [
    {
        "accessKeyId": f"ASIAJOBKEY{n}000000000",
        "secretAccessKey": f"job-secret-{n}-MARKER",
        "sessionToken": f"job-token-{n}",
    }
    for n in range(1, 4)
]


def location(name: str, key: str) -> dict[str, Any]:
    return {"name": name, "location": {"type": "S3", "s3Location": {"bucketName": BUCKET, "objectKey": key}}}


@dataclass
class Setup:
    """A job whose details hand out ISSUED[0], then ISSUED[1]... and whose S3 client is the stubbed one."""

    client: S3Client
    stubber: Stubber
    data: dict[str, Any]
    now: float = 0.0
    fetches: int = 0
    clients_for: list[str] = field(default_factory=list)

    def job(self) -> Job:
        def load(_: JobMessage) -> JobDetails:
            data = {**self.data, "artifactCredentials": ISSUED[self.fetches]}
            self.fetches += 1
            return JobDetails.from_job_data(data)

        def factory(credentials: SessionCredentials) -> S3Client:
            self.clients_for.append(credentials.access_key_id.get_secret_value())
            return self.client

        return Job(JobMessage(job_id=JOB_ID, job_type="custom"), load, s3_client_factory=factory, clock=self.clock)

    def clock(self) -> float:
        return self.now


@pytest.fixture
def s3() -> Iterator[tuple[S3Client, Stubber]]:
    client: S3Client = boto3.client("s3", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def setup(s3: tuple[S3Client, Stubber]) -> Setup:
    data = {
        "inputArtifacts": [location("Source", "pipe/Source/abc")],
        "outputArtifacts": [location("Report", "pipe/Report/def")],
        "encryptionKey": {"id": KMS_KEY, "type": "KMS"},
    }
    return Setup(*s3, data)


def get_response(body: bytes) -> dict[str, Any]:
    from botocore.response import StreamingBody

    return {"Body": StreamingBody(io.BytesIO(body), len(body)), "ETag": '"abc"', "ContentLength": len(body)}


# -- request shapes ------------------------------------------------------------------------------------------


def test_an_output_is_put_with_sse_kms_and_the_jobs_key(setup: Setup) -> None:
    setup.stubber.add_response(
        "put_object",
        {},
        {
            "Bucket": BUCKET,
            "Key": "pipe/Report/def",
            "Body": b"report",
            "ServerSideEncryption": "aws:kms",
            "SSEKMSKeyId": KMS_KEY,
        },
    )

    setup.job().output().write_bytes(b"report")

    assert setup.clients_for == [ISSUED[0]["accessKeyId"]]


def test_without_a_key_an_output_is_put_with_sse_s3_and_a_directory_as_a_zip(setup: Setup, tmp_path: Path) -> None:
    del setup.data["encryptionKey"]
    (tmp_path / "report.json").write_text("{}")
    setup.stubber.add_response(
        "put_object",
        {},
        {
            "Bucket": BUCKET,
            "Key": "pipe/Report/def",
            "Body": ANY,
            "ServerSideEncryption": "AES256",
            "ContentType": "application/zip",
        },
    )

    setup.job().output("Report").write_directory(tmp_path)


def test_a_large_output_goes_in_parts_with_the_encryption_on_the_upload(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(artifacts_module, "PART_BYTES", 4)
    monkeypatch.setattr(artifacts_module, "PARTS_IN_FLIGHT", 1)  # one at a time: the stubbed answers in order
    where = {"Bucket": BUCKET, "Key": "pipe/Report/def"}
    setup.stubber.add_response(
        "create_multipart_upload",
        {"UploadId": "up-1"},
        {**where, "ServerSideEncryption": "aws:kms", "SSEKMSKeyId": KMS_KEY},
    )
    for number, body in enumerate([b"0123", b"4567", b"89"], start=1):
        setup.stubber.add_response(
            "upload_part", {"ETag": f'"e{number}"'}, {**where, "UploadId": "up-1", "PartNumber": number, "Body": body}
        )
    parts = [{"PartNumber": n, "ETag": f'"e{n}"'} for n in (1, 2, 3)]
    setup.stubber.add_response(
        "complete_multipart_upload", {}, {**where, "UploadId": "up-1", "MultipartUpload": {"Parts": parts}}
    )

    setup.job().output().write_bytes(b"0123456789")


def test_a_part_that_fails_aborts_the_upload_and_nothing_is_completed(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(artifacts_module, "PART_BYTES", 4)
    monkeypatch.setattr(artifacts_module, "PARTS_IN_FLIGHT", 1)
    where = {"Bucket": BUCKET, "Key": "pipe/Report/def"}
    setup.stubber.add_response("create_multipart_upload", {"UploadId": "up-1"})
    setup.stubber.add_client_error("upload_part", "InternalError", "We encountered an internal error.")
    setup.stubber.add_response("abort_multipart_upload", {}, {**where, "UploadId": "up-1"})

    with pytest.raises(ArtifactError) as raised:
        setup.job().output().write_bytes(b"0123456789")

    assert str(raised.value) == "output artifact 'Report': UploadPart failed (InternalError)"


def test_the_client_signs_with_the_jobs_credentials_and_sigv4_never_the_functions() -> None:
    # Given the function's own credentials in the environment (tests/conftest: "testing"), and a job's
    credentials = JobDetails.from_job_data({"artifactCredentials": ISSUED[0]}).artifact_credentials
    assert credentials is not None
    client = create_s3_client(credentials)
    sent: list[dict[str, str]] = []

    def capture(request: Any, **_: Any) -> AWSResponse:
        sent.append({k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()})
        raw = HTTPResponse(body=io.BytesIO(b""), preload_content=False)
        return AWSResponse(request.url, 200, HTTPHeaders(), raw)  # answered here: nothing leaves the process

    client.meta.events.register("before-send.s3", capture)  # type: ignore[arg-type]

    client.head_bucket(Bucket=BUCKET)

    [headers] = sent
    authorization = headers["Authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=ASIAJOBKEY1000000000/")
    assert headers["X-Amz-Security-Token"] == ISSUED[0]["sessionToken"]
    assert "testing" not in authorization


# -- credentials ---------------------------------------------------------------------------------------------


def test_credentials_s3_refuses_are_fetched_again_and_the_call_made_once_more(setup: Setup, tmp_path: Path) -> None:
    setup.stubber.add_client_error("get_object", "ExpiredToken", "The provided token has expired.", 400)
    setup.stubber.add_response("get_object", get_response(b"plain"), {"Bucket": BUCKET, "Key": "pipe/Source/abc"})

    path = setup.job().input().download(tmp_path / "source")

    assert path.read_bytes() == b"plain"
    assert setup.fetches == 2
    assert setup.clients_for == [ISSUED[0]["accessKeyId"], ISSUED[1]["accessKeyId"]]


def test_credentials_are_fetched_again_once_ten_of_their_fifteen_minutes_have_passed(
    setup: Setup, tmp_path: Path
) -> None:
    for _ in range(3):
        setup.stubber.add_response("get_object", get_response(b"x"))
    job = setup.job()

    job.input().download(tmp_path / "a")
    setup.now += 600  # 10 minutes: still used
    job.input().download(tmp_path / "b")
    setup.now += 1  # past them: fetched again before the request
    job.input().download(tmp_path / "c")

    assert setup.fetches == 2
    assert setup.clients_for == [ISSUED[0]["accessKeyId"], ISSUED[1]["accessKeyId"]]


def test_credentials_given_up_on_after_one_renewal(setup: Setup, tmp_path: Path) -> None:
    for _ in range(2):
        setup.stubber.add_client_error("get_object", "ExpiredToken", "The provided token has expired.", 400)

    with pytest.raises(ArtifactError, match=r"GetObject failed \(ExpiredToken\)"):
        setup.job().input().download(tmp_path / "a")

    assert setup.fetches == 2


# -- choosing an artifact, and failures ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("inputs", "name", "problem"),
    [
        ([], None, "the job has no input artifact"),
        ([location("A", "a"), location("B", "b")], None, "the job has 2 input artifacts ('A', 'B'): name one"),
        ([location("A", "a")], "B", "the job has no input artifact 'B' (it has 'A')"),
        ([{"name": "A"}], None, "input artifact 'A' has no S3 location"),
    ],
)
def test_an_artifact_that_is_not_there_is_named(
    setup: Setup, inputs: list[dict[str, Any]], name: str | None, problem: str
) -> None:
    setup.data["inputArtifacts"] = inputs

    with pytest.raises(ArtifactError) as raised:
        setup.job().input(name)

    assert str(raised.value) == problem


def test_an_artifact_error_fails_the_job_with_its_message_and_type(
    codepipeline: Stubbed, setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the runner's own job, whose S3 client is the stubbed one, and S3 refusing the read
    client, stubber = codepipeline
    monkeypatch.setattr(job_module, "create_s3_client", lambda _: setup.client)
    data = {**setup.data, "artifactCredentials": ISSUED[0]}
    stubber.add_response("get_job_details", {"jobDetails": {"id": JOB_ID, "data": data}})
    setup.stubber.add_client_error("get_object", "AccessDenied", "Access Denied", 403)
    stubber.add_response(
        "put_job_failure_result",
        {},
        {
            "jobId": JOB_ID,
            "failureDetails": {
                "type": "PermissionError",
                "message": "input artifact 'Source': GetObject failed (AccessDenied)",
            },
        },
    )

    def work(job: Job) -> Outcome:
        with job.input().open() as stream:
            stream.read()
        return Failure(message="unreachable")

    # In this process: the S3 client is stubbed here, and a Stubber's queue of answers is this process's own
    runner = WorkRunner(CodePipelineAdapter(client), None, work, isolate=False)
    result = runner.run(JobMessage(job_id=JOB_ID, job_type="custom"))

    assert (result.result, result.failure_type) == ("failed", "PermissionError")


def test_s3_messages_that_quote_credentials_go_nowhere(setup: Setup, tmp_path: Path) -> None:
    secret = ISSUED[0]["secretAccessKey"]
    echo = f"<AWSAccessKeyId>{ISSUED[0]['accessKeyId']}</AWSAccessKeyId><CanonicalRequest>{secret}</CanonicalRequest>"
    setup.stubber.add_client_error("get_object", "SignatureDoesNotMatch", echo, 403)

    with pytest.raises(ArtifactError) as raised:
        setup.job().input().extract(tmp_path)

    error = raised.value
    text = f"{error} {error!r} {error.args} {error.__cause__!r} {error.__context__!r}"
    assert error.__context__ is None
    assert error.__cause__ is None
    assert [value for value in ISSUED[0].values() if value in text] == []


# -- zips, without S3 --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("entries", "problem"), UNSAFE_ZIPS)
def test_an_unsafe_entry_is_refused_and_nothing_lands_outside(
    tmp_path: Path, entries: dict[str, bytes | tuple[bytes, int]], problem: str
) -> None:
    destination = tmp_path / "deep" / "dest"

    with pytest.raises(zips.UnsafeZip, match=problem):
        zips.extract(io.BytesIO(zipped(entries)), destination)

    assert [p for p in tmp_path.rglob("*") if not p.is_relative_to(destination.parent)] == []
    assert [p for p in destination.rglob("*") if p.is_symlink() and not p.resolve().is_relative_to(destination)] == []


def test_limits_count_entries_before_and_bytes_while_writing(tmp_path: Path) -> None:
    many = zipped({f"f{n}": b"" for n in range(11)})
    big = zipped({"zeros": b"\x00" * 5000, "more": b"\x00" * 5000})

    with pytest.raises(zips.UnsafeZip, match="the zip has 11 entries; the limit is 10"):
        zips.extract(io.BytesIO(many), tmp_path / "many", max_entries=10)
    with pytest.raises(zips.UnsafeZip, match="expands past the limit of 6000 bytes"):
        zips.extract(io.BytesIO(big), tmp_path / "big", max_bytes=6000)

    assert list((tmp_path / "many").iterdir()) == []
    assert sum(p.stat().st_size for p in (tmp_path / "big").iterdir()) <= 6000


def test_a_destination_symlink_leading_out_is_not_written_through(tmp_path: Path) -> None:
    destination = tmp_path / "dest"
    destination.mkdir()
    (tmp_path / "outside").mkdir()
    (destination / "sub").symlink_to(tmp_path / "outside")

    with pytest.raises(zips.UnsafeZip, match="'sub' leads outside the destination"):
        zips.extract(io.BytesIO(zipped({"sub/evil": b"x"})), destination)
    with pytest.raises(zips.UnsafeZip, match="cannot be written"):
        zips.extract(io.BytesIO(zipped({"sub": b"x"})), destination)

    assert list((tmp_path / "outside").iterdir()) == []


def test_a_name_that_is_both_a_file_and_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(zips.UnsafeZip, match="'a' is both a file and a directory"):
        zips.extract(io.BytesIO(zipped({"a": b"file", "a/b": b"inside"})), tmp_path)


def test_writing_keeps_modes_and_links_and_leaves_out_sockets(tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "bin").mkdir(parents=True)
    (source / "bin" / "tool").write_text("#!/bin/sh\n")
    (source / "bin" / "tool").chmod(0o700)
    (source / "link").symlink_to("bin/tool")
    (source / "dangling").symlink_to("missing")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(source / "agent.sock"))
        buffer = io.BytesIO()
        assert zips.write(source, buffer) == 1

    with zipfile.ZipFile(buffer) as zf:
        modes = {info.filename: info.external_attr >> 16 for info in zf.infolist()}
    assert modes == {
        "bin/": stat.S_IFDIR | 0o755,
        "bin/tool": stat.S_IFREG | 0o700,
        "dangling": stat.S_IFLNK | 0o777,
        "link": stat.S_IFLNK | 0o777,
    }
    zips.extract(io.BytesIO(buffer.getvalue()), tmp_path / "back")
    assert (tmp_path / "back" / "link").readlink().as_posix() == "bin/tool"
    assert stat.S_IMODE((tmp_path / "back" / "bin" / "tool").stat().st_mode) == 0o700


def test_setuid_bits_are_dropped_and_read_only_directories_stay_removable(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, mode in (("ro/", stat.S_IFDIR | 0o555), ("ro/suid", stat.S_IFREG | 0o4755)):
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = mode << 16
            zf.writestr(info, b"" if name.endswith("/") else b"x")

    zips.extract(io.BytesIO(buffer.getvalue()), tmp_path)

    assert stat.S_IMODE((tmp_path / "ro" / "suid").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "ro").stat().st_mode) == 0o755  # r-x for all, and the owner may write


def test_a_dropped_download_resumes_from_the_last_byte_of_the_same_object(setup: Setup, tmp_path: Path) -> None:
    from botocore.exceptions import ResponseStreamingError

    class Dropping(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            if self.tell() >= 4:
                raise ResponseStreamingError(error="connection reset")
            return super().read(4)

    first = get_response(b"")
    first["Body"] = Dropping(b"0123456789")
    setup.stubber.add_response("get_object", first, {"Bucket": BUCKET, "Key": "pipe/Source/abc"})
    setup.stubber.add_response(
        "get_object",
        get_response(b"456789"),
        {"Bucket": BUCKET, "Key": "pipe/Source/abc", "Range": "bytes=4-", "IfMatch": '"abc"'},
    )

    assert setup.job().input().download(tmp_path / "a").read_bytes() == b"0123456789"


def test_a_download_that_keeps_dropping_fails_naming_the_stream_error(setup: Setup, tmp_path: Path) -> None:
    from botocore.exceptions import ResponseStreamingError

    class Dead(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            raise ResponseStreamingError(error="connection reset")

    for _ in range(4):
        response = get_response(b"")
        response["Body"] = Dead()
        setup.stubber.add_response("get_object", response)

    with pytest.raises(ArtifactError, match=r"GetObject failed \(ResponseStreamingError\)"):
        setup.job().input().download(tmp_path / "a")


def test_what_is_not_a_directory_or_not_a_zip_is_named(setup: Setup, tmp_path: Path) -> None:
    setup.stubber.add_response("get_object", get_response(b"plain text"))
    damaged = bytearray(zipped({"a.txt": b"hello world" * 100}))
    damaged[40:60] = b"\xff" * 20  # inside the compressed data
    setup.stubber.add_response("get_object", get_response(bytes(damaged)))
    job = setup.job()

    with pytest.raises(ArtifactError, match="'missing' is not a directory"):
        job.output().write_directory(tmp_path / "missing")
    with pytest.raises(ArtifactError, match="is not a zip: read it with download"):
        job.input().extract(tmp_path / "a")
    with pytest.raises(ArtifactError, match=r"input artifact 'Source': the artifact is not a valid zip \("):
        job.input().extract(tmp_path / "b")


# -- the Build-style example -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("configuration", "files", "outcome"),
    [
        (
            {},
            {"app.py": b"print(1)\n", "README.md": b"# app\n"},
            {"summary": "2 files checked, 0 finding(s); the report is in the output artifact"},
        ),
        (
            {"FailOnFindings": "false", "MaxFileBytes": "10"},
            {"big.bin": b"x" * 11, "creds.txt": b"key=AKIAABCDEFGHIJKLMNOP\n"},
            {"summary": "2 files checked, 2 finding(s); the report is in the output artifact"},
        ),
        (
            {"MaxFileBytes": "ten"},
            {},
            {"type": "ConfigurationError", "message": "MaxFileBytes must be a whole number"},
        ),
    ],
)
def test_the_source_check_reports_its_findings_in_the_output_artifact(
    setup: Setup, configuration: dict[str, str], files: dict[str, bytes], outcome: dict[str, Any]
) -> None:
    from codepipeline_worker.examples.source_check import check_sources

    setup.data["actionConfiguration"] = {"configuration": configuration}
    if files:
        setup.stubber.add_response("get_object", get_response(zipped(files)))
        setup.stubber.add_response(
            "put_object",
            {},
            {"Bucket": BUCKET, "Key": "pipe/Report/def", "Body": ANY}
            | {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": KMS_KEY, "ContentType": "application/zip"},
        )
    requests = record_requests(setup.client)

    result = check_sources(setup.job()).model_dump(exclude_none=True)

    variables = result.pop("output_variables", None)
    assert result == outcome
    if "summary" in outcome:
        [(_, put)] = [r for r in requests if r[0] == "PutObject"]
        report = json.loads(zipfile.ZipFile(io.BytesIO(put["Body"])).read("report.json"))
        assert variables == {"FilesChecked": str(len(files)), "Findings": str(len(report["findings"]))}
        assert report["filesChecked"] == len(files)
