"""Jobs' artifacts in a local S3 and KMS (moto's server), as CodePipeline's artifact store keeps them.

The endpoint writes input artifacts (zips, as CodePipeline's source actions write them, SSE-KMS with the job's key
when it has one), makes KMS keys for `encryptionKey`, and reads back what a worker wrote as output artifacts. It
reaches moto with its own throwaway credentials; workers reach S3 through the artifact front (`s3front`), with the
job's artifact credentials only.
"""

from __future__ import annotations

import io
import secrets
import string
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_s3 import S3Client

# What a seeded input artifact holds when the seed names no files: a source revision, as a source action leaves.
DEFAULT_INPUT_FILES = {"README.md": "A source revision the local CodePipeline endpoint put here.\n"}


@dataclass(frozen=True)
class Location:
    bucket: str
    key: str

    @classmethod
    def of(cls, artifact: dict[str, Any]) -> Location:
        s3 = artifact["location"]["s3Location"]
        return cls(s3["bucketName"], s3["objectKey"])


def artifact_bucket(region: str, account_id: str) -> str:
    """The artifact store's bucket, named as the console names it: codepipeline-<region>-<digits>."""
    return f"codepipeline-{region}-{account_id}"


def artifact_key(pipeline_name: str, artifact_name: str) -> str:
    """An object key as CodePipeline makes them: <pipeline, 20 chars>/<artifact, 10 chars>/<7 random chars>."""
    suffix = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(7))
    return f"{pipeline_name[:20]}/{artifact_name[:10]}/{suffix}"


def zip_of(source: dict[str, Any]) -> bytes:
    """The zip an input artifact entry asks for: `files` (member name -> text), or `path` (a directory, zipped;
    a .zip file, as it is; any other file, zipped alone)."""
    if "path" in source:
        path = Path(source["path"])
        if path.is_file() and path.suffix == ".zip":
            return path.read_bytes()
        if path.is_file():
            return _zip({path.name: path.read_bytes()})
        if path.is_dir():
            return _zip({str(f.relative_to(path)): f.read_bytes() for f in sorted(path.rglob("*")) if f.is_file()})
        raise ValueError(f"input artifact path {path} is neither a file nor a directory")
    files = source.get("files", DEFAULT_INPUT_FILES)
    if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        raise ValueError("an input artifact's files map member names to text")
    return _zip({name: text.encode() for name, text in files.items()})


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


class ArtifactStore:
    """The local S3 and KMS one endpoint keeps its jobs' artifacts in, with the endpoint's own client."""

    def __init__(self, aws_url: str, region: str = "us-east-1") -> None:
        self.aws_url = aws_url
        self.region = region
        session = boto3.session.Session(
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - moto's throwaway credentials
            region_name=region,
        )
        self.s3: S3Client = session.client("s3", endpoint_url=aws_url)
        self.kms: KMSClient = session.client("kms", endpoint_url=aws_url)
        self._buckets: set[str] = set()
        self._lock = threading.Lock()

    def create_key(self) -> str:
        """A new symmetric KMS key, as a pipeline's artifact store key: its ARN."""
        return self.kms.create_key(Description="local CodePipeline artifact store key")["KeyMetadata"]["Arn"]

    def put(self, location: Location, body: bytes, kms_key_id: str | None) -> None:
        self._ensure_bucket(location.bucket)
        encryption: dict[str, Any] = (
            {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_id}
            if kms_key_id
            else {"ServerSideEncryption": "AES256"}
        )
        self.s3.put_object(Bucket=location.bucket, Key=location.key, Body=body, **encryption)

    def describe(self, location: Location) -> dict[str, Any]:
        """Whether the object exists, its size and how it is encrypted."""
        try:
            head = self.s3.head_object(Bucket=location.bucket, Key=location.key)
        except ClientError as error:
            if error.response["Error"]["Code"] in {"404", "NoSuchKey", "NoSuchBucket"}:
                return {"exists": False}
            raise
        described: dict[str, Any] = {"exists": True, "size": head["ContentLength"]}
        if "ServerSideEncryption" in head:
            described["encryption"] = head["ServerSideEncryption"]
        if "SSEKMSKeyId" in head:
            described["kmsKeyId"] = head["SSEKMSKeyId"]
        return described

    def read(self, location: Location) -> bytes:
        return self.s3.get_object(Bucket=location.bucket, Key=location.key)["Body"].read()

    def _ensure_bucket(self, bucket: str) -> None:
        with self._lock:
            if bucket in self._buckets:
                return
            try:
                self.s3.create_bucket(Bucket=bucket)
            except ClientError as error:
                if error.response["Error"]["Code"] not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                    raise
            self._buckets.add(bucket)
