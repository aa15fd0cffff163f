"""Artifacts over real HTTP on 127.0.0.1: moto's S3 and KMS behind the local endpoint's artifact front, which
accepts only requests signed with the job's live credentials, for the job's artifacts. A job is seeded as
CodePipeline would hand it over: input objects in the artifact bucket, output locations, a KMS key, and job details
whose every fetch (GetJobDetails) mints new credentials."""

from __future__ import annotations

import io
import json
import os
import stat
import uuid
import zipfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from codepipeline_local.artifacts import Location
from codepipeline_worker.shared.messages import JobMessage
from codepipeline_worker.work import ArtifactError, Job, JobDetails, UnsafeArtifact
from tests.conftest import UNSAFE_ZIPS, zipped
from tests.integration.grants import Grants

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from mypy_boto3_s3 import S3Client

    from tests.integration.conftest import S3FrontFactory

REGION = "us-east-1"


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Pipeline:
    """One pipeline's artifact store: its bucket and KMS key on moto, reached directly (not through the front),
    and the credentials CodePipeline hands out for its jobs (`expired`: each already expired when handed out)."""

    grants: Grants
    s3: S3Client
    bucket: str
    kms_key_arn: str
    issued: list[dict[str, str]] = field(default_factory=list)
    expired: bool = False

    def put(self, key: str, body: bytes, **extra: Any) -> str:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, **extra)
        return key

    def object(self, key: str) -> tuple[bytes, dict[str, Any]]:
        response = self.s3.get_object(Bucket=self.bucket, Key=key)
        return response["Body"].read(), dict(response)

    def credentials(self, job_id: str, inputs: dict[str, str], outputs: dict[str, str]) -> dict[str, str]:
        """New session credentials for a job's artifacts, live on the front from now on (as each GetJobDetails
        gives)."""
        readable = {Location(self.bucket, key) for key in inputs.values()}
        writable = {Location(self.bucket, key) for key in outputs.values()}
        issued = self.grants.issue(job_id, readable, writable, ttl_s=-1 if self.expired else 3600).shape()
        self.issued.append(issued)
        return issued

    def location(self, name: str, key: str) -> dict[str, Any]:
        return {
            "name": name,
            "revision": "rev-1",
            "location": {"type": "S3", "s3Location": {"bucketName": self.bucket, "objectKey": key}},
        }

    def job(
        self,
        inputs: dict[str, str] | None = None,
        outputs: dict[str, str] | None = None,
        *,
        encrypted: bool = True,
        clock: Callable[[], float] | None = None,
    ) -> tuple[Job, list[int]]:
        """A custom job with these input and output artifacts (name: key); the list counts GetJobDetails."""
        fetches: list[int] = []

        def load_details(message: JobMessage) -> JobDetails:
            fetches.append(1)
            data: dict[str, Any] = {
                "inputArtifacts": [self.location(n, k) for n, k in (inputs or {}).items()],
                "outputArtifacts": [self.location(n, k) for n, k in (outputs or {}).items()],
                "artifactCredentials": self.credentials(message.job_id, inputs or {}, outputs or {}),
            }
            if encrypted:
                data["encryptionKey"] = {"id": self.kms_key_arn, "type": "KMS"}
            return JobDetails.from_job_data(data)

        message = JobMessage(job_id=str(uuid.uuid4()), job_type="custom")
        return Job(message, load_details, clock=clock or Clock()), fetches


@pytest.fixture
def pipeline(secrets_url: str, make_s3_front: S3FrontFactory) -> Pipeline:
    aws = {"endpoint_url": secrets_url, "region_name": REGION}
    s3: S3Client = boto3.client("s3", **aws)  # type: ignore[call-overload]
    bucket = f"codepipeline-{REGION}-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    key = boto3.client("kms", **aws).create_key(Description="the pipeline's artifact key")  # type: ignore[call-overload]
    grants = Grants()
    make_s3_front(grants)
    return Pipeline(grants, s3, bucket, key["KeyMetadata"]["Arn"])


def tree(root: Path) -> dict[str, Any]:
    """Each path under root: a file's content and mode, a symlink's target."""
    found: dict[str, Any] = {}
    for path in sorted(root.rglob("*")):
        name = path.relative_to(root).as_posix()
        if path.is_symlink():
            found[name] = ("link", os.readlink(path))
        elif path.is_file():
            found[name] = (path.read_bytes(), stat.S_IMODE(path.stat().st_mode))
    return found


# -- reading -------------------------------------------------------------------------------------------------


def test_an_input_zip_is_extracted_with_its_modes_and_links_using_only_the_jobs_credentials(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    source = zipped(
        {
            "README.md": b"# demo\n",
            "bin/build.sh": (b"#!/bin/sh\necho built\n", stat.S_IFREG | 0o755),
            "src/app/main.py": b"print('hi')\n",
            "src/current": (b"app", stat.S_IFLNK | 0o777),
            "empty/": b"",
        }
    )
    key = pipeline.put("pipe/SourceArti/abc123", source)
    job, _ = pipeline.job({"SourceArtifact": key})

    extracted = job.input().extract(tmp_path / "source")

    assert extracted == tmp_path / "source"
    assert tree(extracted) == {
        "README.md": (b"# demo\n", 0o644),
        "bin/build.sh": (b"#!/bin/sh\necho built\n", 0o755),
        "src/app/main.py": (b"print('hi')\n", 0o644),
        "src/current": ("link", "app"),
    }
    assert (extracted / "empty").is_dir()
    # Every request was signed with the job's credentials, none with the function's own (AWS_ACCESS_KEY_ID)
    assert pipeline.grants.seen
    assert set(pipeline.grants.seen) == {pipeline.issued[0]["accessKeyId"]}
    assert pipeline.grants.refused == 0


def test_a_kms_encrypted_input_is_read_and_a_plain_object_is_downloaded_or_streamed(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    zip_key = pipeline.put("k/zip", zipped({"a.txt": b"A"}), ServerSideEncryption="aws:kms", SSEKMSKeyId="alias/x")
    plain_key = pipeline.put("k/plain", b"just bytes", ServerSideEncryption="aws:kms")
    job, _ = pipeline.job({"Zipped": zip_key, "Plain": plain_key})

    assert tree(job.input("Zipped").extract(tmp_path / "zipped")) == {"a.txt": (b"A", 0o644)}
    assert job.input("Plain").download(tmp_path / "plain.bin").read_bytes() == b"just bytes"
    with job.input("Plain").open() as stream:
        assert stream.read() == b"just bytes"
    with pytest.raises(ArtifactError, match="input artifact 'Plain' is not a zip: read it with download"):
        job.input("Plain").extract(tmp_path / "nope")


def test_a_missing_object_fails_with_the_s3_code_and_the_revision_failure_type(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    job, _ = pipeline.job({"Source": "not/there"})

    with pytest.raises(ArtifactError) as raised:
        job.input().extract(tmp_path)

    assert str(raised.value) == "input artifact 'Source': GetObject failed (NoSuchKey)"
    assert raised.value.type == "RevisionUnavailable"


# -- writing -------------------------------------------------------------------------------------------------


def test_a_directory_is_zipped_and_written_with_sse_kms_and_the_jobs_key(pipeline: Pipeline, tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "bin").mkdir(parents=True)
    (out / "report.json").write_text('{"ok": true}\n')
    (out / "bin" / "run").write_bytes(b"#!/bin/sh\n")
    (out / "bin" / "run").chmod(0o750)
    (out / "latest").symlink_to("report.json")
    job, _ = pipeline.job(outputs={"BuildOutput": "pipe/BuildOutpu/xyz"})

    job.output().write_directory(out)

    body, response = pipeline.object("pipe/BuildOutpu/xyz")
    assert response["ServerSideEncryption"] == "aws:kms"
    assert response["SSEKMSKeyId"] == pipeline.kms_key_arn
    assert response["ContentType"] == "application/zip"
    # And it reads back, through the same API, as the tree it was made from
    key = pipeline.put("pipe/roundtrip", body)
    reader, _ = pipeline.job({"Built": key})
    assert tree(reader.input().extract(tmp_path / "back")) == tree(out)
    assert set(pipeline.grants.seen) == {issued["accessKeyId"] for issued in pipeline.issued}


def test_without_a_key_outputs_are_written_with_sse_s3_as_they_are(pipeline: Pipeline, tmp_path: Path) -> None:
    report = tmp_path / "report.txt"
    report.write_text("all good\n")
    job, _ = pipeline.job(outputs={"Report": "k/report", "Raw": "k/raw"}, encrypted=False)

    job.output("Report").write_file(report)
    job.output("Raw").write_bytes(b"\x00\x01raw")

    assert pipeline.object("k/report")[0] == b"all good\n"
    assert pipeline.object("k/raw")[0] == b"\x00\x01raw"
    assert {pipeline.object(k)[1]["ServerSideEncryption"] for k in ("k/report", "k/raw")} == {"AES256"}


def test_a_large_output_streams_in_parts_and_reads_back_whole(pipeline: Pipeline, tmp_path: Path) -> None:
    data = os.urandom(20 * 1024 * 1024 + 123)  # three parts of 8 MiB, the last short
    job, _ = pipeline.job({"In": "k/big"}, {"Out": "k/big"})

    job.output().write_bytes(data)

    assert job.input().download(tmp_path / "big").read_bytes() == data
    _, response = pipeline.object("k/big")
    assert response["ETag"].endswith('-3"')  # a multipart upload's ETag counts its parts
    assert (response["ServerSideEncryption"], response["SSEKMSKeyId"]) == ("aws:kms", pipeline.kms_key_arn)


def test_a_failed_write_leaves_no_object(pipeline: Pipeline) -> None:
    job, _ = pipeline.job(outputs={"Out": "k/never"})

    def produce(sink: Any) -> None:
        sink.write(os.urandom(9 * 1024 * 1024))  # the first part goes out
        raise OSError("the disk went away")

    with pytest.raises(OSError, match="the disk went away"):
        job.output()._upload(produce, None)

    with pytest.raises(pipeline.s3.exceptions.NoSuchKey):
        pipeline.s3.get_object(Bucket=pipeline.bucket, Key="k/never")
    assert pipeline.s3.list_multipart_uploads(Bucket=pipeline.bucket).get("Uploads", []) == []


# -- unsafe zips -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("entries", "problem"), UNSAFE_ZIPS)
def test_an_entry_that_would_land_outside_the_destination_fails_the_extraction(
    pipeline: Pipeline, tmp_path: Path, entries: dict[str, bytes | tuple[bytes, int]], problem: str
) -> None:
    job, _ = pipeline.job({"Source": pipeline.put("k/evil", zipped(entries))})
    destination = tmp_path / "deep" / "dest"

    with pytest.raises(UnsafeArtifact, match=problem):
        job.input().extract(destination)

    # Nothing was written outside it, and no link out of it is left behind
    outside = [p for p in tmp_path.rglob("*") if not p.is_relative_to(destination) and p != destination.parent]
    assert outside == []
    assert [p for p in destination.rglob("*") if p.is_symlink() and not p.resolve().is_relative_to(destination)] == []


def test_a_zip_bomb_stops_at_the_byte_limit_however_small_its_headers_say_it_is(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros", b"\x00" * (64 * 1024 * 1024))  # 64 MiB deflates to ~64 KiB
    # Its headers lie: both say the entry is 1 KiB
    data = bytearray(bomb.getvalue())
    data[22:26] = (1024).to_bytes(4, "little")  # the local header's uncompressed size
    central = data.rfind(b"PK\x01\x02")
    data[central + 24 : central + 28] = (1024).to_bytes(4, "little")
    job, _ = pipeline.job(
        {"Source": pipeline.put("k/bomb", bytes(data)), "Honest": pipeline.put("k/b2", bomb.getvalue())}
    )

    with pytest.raises(UnsafeArtifact, match="expands past the limit of 8388608 bytes"):
        job.input("Honest").extract(tmp_path / "honest", max_bytes=8 * 1024 * 1024)
    written = sum(p.stat().st_size for p in (tmp_path / "honest").rglob("*") if p.is_file())
    assert written <= 8 * 1024 * 1024
    # The lying one: zipfile stops at the size its index states, then the checksum cannot match
    with pytest.raises(ArtifactError, match="not a valid zip"):
        job.input("Source").extract(tmp_path / "lying", max_bytes=8 * 1024 * 1024)
    assert sum(p.stat().st_size for p in (tmp_path / "lying").rglob("*") if p.is_file()) <= 1024


def test_a_zip_with_too_many_entries_is_refused_before_anything_is_written(pipeline: Pipeline, tmp_path: Path) -> None:
    job, _ = pipeline.job({"Source": pipeline.put("k/many", zipped({f"f{n}": b"" for n in range(101)}))})

    with pytest.raises(UnsafeArtifact, match="the zip has 101 entries; the limit is 100"):
        job.input().extract(tmp_path / "many", max_entries=100)
    assert list((tmp_path / "many").iterdir()) == []


# -- credentials ---------------------------------------------------------------------------------------------


def test_credentials_about_to_expire_are_fetched_again_before_the_next_request(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    clock = Clock()
    key = pipeline.put("k/src", zipped({"a": b"1"}))
    job, fetches = pipeline.job({"In": key}, {"Out": "k/out"}, clock=clock)
    job.input().extract(tmp_path / "first")
    first = pipeline.issued[0]["accessKeyId"]

    # When 11 minutes have passed (taken to last 15), the job's next request fetches the details again first
    clock.now += 11 * 60
    pipeline.grants.expire(first)  # the old credentials would be refused
    job.output().write_bytes(b"result")

    assert len(fetches) == 2
    assert pipeline.object("k/out")[0] == b"result"
    assert pipeline.grants.refused == 0
    assert pipeline.grants.seen[-1] == pipeline.issued[1]["accessKeyId"]


def test_credentials_s3_says_expired_are_fetched_again_and_the_request_made_once_more(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    key = pipeline.put("k/src", zipped({"a": b"1"}))
    job, fetches = pipeline.job({"In": key}, {"Out": "k/out"})
    job.input().extract(tmp_path / "first")

    pipeline.grants.expire(pipeline.issued[0]["accessKeyId"])
    job.output().write_directory(tmp_path / "first")

    assert (len(fetches), pipeline.grants.refused) == (2, 1)
    assert zipfile.ZipFile(io.BytesIO(pipeline.object("k/out")[0])).namelist() == ["a"]


def test_credentials_that_stay_refused_fail_the_call_and_are_quoted_nowhere(
    pipeline: Pipeline, tmp_path: Path, emitted: Callable[[], str]
) -> None:
    job, fetches = pipeline.job({"In": pipeline.put("k/src", zipped({"a": b"1"}))})
    pipeline.expired = True  # nothing the job is given will be accepted

    with pytest.raises(ArtifactError) as raised:
        job.input().extract(tmp_path / "x")

    assert str(raised.value) == "input artifact 'In': GetObject failed (ExpiredToken)"
    assert raised.value.type == "PermissionError"
    assert len(fetches) == 2  # fetched again once, then given up
    error = raised.value
    text = f"{error!r} {error.args!r} {error.__cause__!r} {error.__context__!r} {emitted()}"
    assert [value for issued in pipeline.issued for value in issued.values() if value in text] == []


def test_a_build_style_report_round_trip(pipeline: Pipeline, tmp_path: Path) -> None:
    from codepipeline_worker.examples.source_check import check_sources

    source = zipped({"app.py": b"print(1)\n", "deploy/key.pem": b"-----BEGIN RSA PRIVATE KEY-----\nMII\n"})
    job, _ = pipeline.job({"Source": pipeline.put("k/src", source)}, {"Report": "k/report"})

    outcome = check_sources(job)

    assert outcome.model_dump(exclude_none=True) == {
        "message": "1 finding(s) in 2 files; the first: private-key in deploy/key.pem:1",
        "type": "JobFailed",
    }
    report_zip, response = pipeline.object("k/report")
    assert response["SSEKMSKeyId"] == pipeline.kms_key_arn
    report = json.loads(zipfile.ZipFile(io.BytesIO(report_zip)).read("report.json"))
    assert report == {
        "revision": "rev-1",
        "filesChecked": 2,
        "findings": [{"file": "deploy/key.pem", "line": 1, "rule": "private-key"}],
    }
