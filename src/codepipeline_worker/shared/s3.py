"""The SDK adapter for job artifacts: S3, signed with the job's own artifact credentials, never the function's role.

CodePipeline's artifact bucket trusts the temporary credentials each job carries (`artifactCredentials`), not the
worker's role. Each job gets its own botocore S3 client built from them, on the process's botocore session (its
loader and service models are read once per process, so a client costs a few milliseconds).

Those credentials carry no expiry. AWS's own job worker (the CodePipeline plugin for Jenkins) treats them as valid
for 15 minutes from the moment they are fetched; this adapter does the same, and fetches them again (GetJobDetails
or GetThirdPartyJobDetails) before a request once less than `REFRESH_MARGIN_S` of that is left. Should S3 still
answer that they expired, they are fetched again and the request is made once more.

As in `adapter`, every failure leaves this module as an `ArtifactStoreError` carrying only the operation and the
error code, never an SDK exception as cause or context: S3 error bodies quote the access key id
(InvalidAccessKeyId, SignatureDoesNotMatch) and the session token (ExpiredToken's `Token-0`, the canonical request).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, cast

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from .adapter import sdk_session

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from mypy_boto3_s3 import S3Client
    from pydantic import SecretStr

# How long CodePipeline's artifact credentials are taken to last from when they were fetched, and how much of that
# must be left for a request to go out with them.
ASSUMED_LIFETIME_S = 15 * 60
REFRESH_MARGIN_S = 5 * 60
# S3's answers to a request signed with credentials that are no longer good: fetching them again may help.
EXPIRED_CODES = frozenset({"ExpiredToken", "ExpiredTokenException", "TokenRefreshRequired", "InvalidToken"})
# A dropped download resumes from the last byte received, this many times at most.
DOWNLOAD_RESUMES = 3
CHUNK_BYTES = 1024 * 1024

# SigV4 always: S3 refuses any other signature for objects encrypted with KMS. Standard retries; a read timeout
# long enough for a large part on a slow link.
_CONFIG = Config(
    signature_version="s3v4",
    retries={"mode": "standard", "total_max_attempts": 3},
    connect_timeout=5,
    read_timeout=60,
    max_pool_connections=4,
)


class SessionCredentials(Protocol):
    """Temporary credentials, each part a SecretStr (the job's `ArtifactCredentials`)."""

    @property
    def access_key_id(self) -> SecretStr: ...
    @property
    def secret_access_key(self) -> SecretStr: ...
    @property
    def session_token(self) -> SecretStr: ...


class ArtifactStoreError(Exception):
    """An S3 call for an artifact failed. `code` is S3's error code, or the botocore exception's class name."""

    def __init__(self, operation: str, code: str) -> None:
        super().__init__(f"{operation} failed: {code}")
        self.operation = operation
        self.code = code


def create_s3_client(credentials: SessionCredentials) -> S3Client:
    """An S3 client signed with these credentials. Region and endpoint come from the SDK's own settings
    (AWS_REGION, AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL), as for every other client of this package. It is made
    from the execution environment's one SDK session, so that the service data its loader has read already
    (endpoints, partitions, S3's model after the first job) serves every job's client."""
    client = sdk_session().create_client(
        "s3",
        aws_access_key_id=credentials.access_key_id.get_secret_value(),
        aws_secret_access_key=credentials.secret_access_key.get_secret_value(),
        aws_session_token=credentials.session_token.get_secret_value(),
        config=_CONFIG,
    )
    return cast("S3Client", client)


class JobCredentials:
    """A job's artifact credentials, fetched again when they may be about to expire or S3 said they had.

    `fetch(fresh)` answers the credentials and when (on `clock`) they were fetched: with `fresh`, from a new call
    to CodePipeline; without, those of the details the job already holds. `generation` counts the credentials
    used, so that threads that saw the same expired ones fetch new ones once, not once each."""

    def __init__(
        self,
        fetch: Callable[[bool], tuple[SessionCredentials, float]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._credentials: SessionCredentials | None = None
        self._fetched_at = 0.0
        self.generation = 0

    def current(self) -> tuple[SessionCredentials, int]:
        with self._lock:
            if self._credentials is None:
                self._use(*self._fetch(False))
            if self._clock() - self._fetched_at > ASSUMED_LIFETIME_S - REFRESH_MARGIN_S:
                self._use(*self._fetch(True))
            assert self._credentials is not None  # noqa: S101 - set above
            return self._credentials, self.generation

    def expired(self, generation: int) -> None:
        """S3 refused the credentials of `generation`: fetch new ones, unless another thread already did."""
        with self._lock:
            if generation == self.generation:
                self._use(*self._fetch(True))

    def _use(self, credentials: SessionCredentials, fetched_at: float) -> None:
        self._credentials = credentials
        self._fetched_at = fetched_at
        self.generation += 1


class ArtifactStore:
    """The S3 operations one job's artifacts need, each signed with the job's current credentials."""

    def __init__(
        self,
        credentials: JobCredentials,
        client_factory: Callable[[SessionCredentials], S3Client] = create_s3_client,
    ) -> None:
        self._credentials = credentials
        self._client_factory = client_factory
        self._lock = threading.Lock()
        self._client: S3Client | None = None
        self._client_generation = -1

    def _current_client(self) -> tuple[S3Client, int]:
        credentials, generation = self._credentials.current()
        with self._lock:
            if self._client is None or generation != self._client_generation:
                self._client = self._client_factory(credentials)
                self._client_generation = generation
            return self._client, generation

    def _call[R](self, operation: str, call: Callable[[S3Client], R]) -> R:
        """One S3 call; once more with fresh credentials if S3 says the job's have expired."""
        code = "UnknownError"
        for attempt in range(2):
            client, generation = self._current_client()
            try:
                return call(client)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code") or "UnknownError"
            except BotoCoreError as exc:
                code = type(exc).__name__
                break
            if code not in EXPIRED_CODES or attempt == 1:
                break
            self._credentials.expired(generation)
        raise ArtifactStoreError(operation, code)

    # -- reading -------------------------------------------------------------------------------------------

    def open(self, bucket: str, key: str, start: int = 0, etag: str | None = None) -> tuple[BinaryIO, str]:
        """A streaming GetObject (from byte `start`, of the version whose ETag is `etag`): the body and the ETag."""
        request: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if start:
            request["Range"] = f"bytes={start}-"
        if etag:
            request["IfMatch"] = etag
        response = self._call("GetObject", lambda client: client.get_object(**request))
        return cast("BinaryIO", response["Body"]), response.get("ETag", "")

    def download(self, bucket: str, key: str, sink: BinaryIO) -> int:
        """Copy the object into `sink` in 1 MiB chunks, resuming from the last byte received if the stream
        drops; the number of bytes written."""
        written = 0
        etag: str | None = None
        for resume in range(DOWNLOAD_RESUMES + 1):
            body, etag = self.open(bucket, key, written, etag)
            try:
                for chunk in _chunks(body):
                    sink.write(chunk)
                    written += len(chunk)
            except BotoCoreError as exc:
                failure = type(exc).__name__
            else:
                return written
            finally:
                body.close()
            if resume == DOWNLOAD_RESUMES:
                break
        raise ArtifactStoreError("GetObject", failure)

    # -- writing -------------------------------------------------------------------------------------------

    def put(self, bucket: str, key: str, body: bytes, args: dict[str, str]) -> None:
        """PutObject; `args` are its encryption and content-type parameters (see `object_args`)."""
        self._call(
            "PutObject",
            lambda client: client.put_object(Bucket=bucket, Key=key, Body=body, **args),  # type: ignore[arg-type]
        )

    def start_upload(self, bucket: str, key: str, args: dict[str, str]) -> str:
        response = self._call(
            "CreateMultipartUpload",
            lambda client: client.create_multipart_upload(Bucket=bucket, Key=key, **args),  # type: ignore[arg-type]
        )
        return response["UploadId"]

    def upload_part(self, bucket: str, key: str, upload_id: str, number: int, body: bytes) -> str:
        response = self._call(
            "UploadPart",
            lambda client: client.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body),
        )
        return response["ETag"]

    def complete_upload(self, bucket: str, key: str, upload_id: str, etags: list[str]) -> None:
        parts = [{"PartNumber": number, "ETag": etag} for number, etag in enumerate(etags, start=1)]
        self._call(
            "CompleteMultipartUpload",
            lambda client: client.complete_multipart_upload(
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},  # type: ignore[typeddict-item]
            ),
        )

    def abort_upload(self, bucket: str, key: str, upload_id: str) -> None:
        self._call(
            "AbortMultipartUpload",
            lambda client: client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id),
        )


def object_args(kms_key_id: str | None, content_type: str | None = None) -> dict[str, str]:
    """A new object's parameters: SSE-KMS with the job's key when it has one (CodePipeline's encryptionKey),
    SSE-S3 otherwise; its content type when known."""
    args = {"ServerSideEncryption": "AES256"}
    if kms_key_id:
        args = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_id}
    if content_type:
        args["ContentType"] = content_type
    return args


def _chunks(body: BinaryIO) -> Iterator[bytes]:
    while chunk := body.read(CHUNK_BYTES):
        yield chunk
