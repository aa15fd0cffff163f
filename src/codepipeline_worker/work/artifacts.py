"""A job's input and output artifacts, read and written in one call each.

    source = job.input().extract("/tmp/source")           # the only input artifact, unzipped
    job.output("BuildOutput").write_directory("/tmp/out")  # zipped, encrypted, uploaded

Every S3 request is signed with the job's artifact credentials (fetched again when they may expire), outputs are
encrypted with the job's KMS key (SSE-KMS) or, without one, with SSE-S3, and nothing is read whole into memory:
objects stream to disk in 1 MiB chunks, archives stream to S3 in 8 MiB parts. Any failure is an `ArtifactError`
whose message names the artifact and the reason (an S3 error code, the unsafe entry), never a credential; left
uncaught, it fails the job with that message.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import zipfile
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, BinaryIO, Literal

from ..shared.s3 import ArtifactStoreError, object_args
from . import zips

if TYPE_CHECKING:
    import os
    from collections.abc import Buffer, Callable, Iterator

    from ..shared.messages import Artifact
    from ..shared.s3 import ArtifactStore

PART_BYTES = 8 * 1024 * 1024
PARTS_IN_FLIGHT = 2
ZIP_CONTENT_TYPE = "application/zip"

ArtifactFailureType = Literal["JobFailed", "PermissionError", "RevisionUnavailable"]
# CodePipeline's failure type for the S3 errors a user can act on.
_FAILURE_TYPES: dict[str, ArtifactFailureType] = {
    "AccessDenied": "PermissionError",
    "AllAccessDisabled": "PermissionError",
    "InvalidAccessKeyId": "PermissionError",
    "SignatureDoesNotMatch": "PermissionError",
    "ExpiredToken": "PermissionError",
    "InvalidToken": "PermissionError",
    "KMS.DisabledException": "PermissionError",
    "KMS.NotFoundException": "PermissionError",
    "NoSuchKey": "RevisionUnavailable",
    "NoSuchBucket": "RevisionUnavailable",
    "PreconditionFailed": "RevisionUnavailable",
}


class ArtifactError(Exception):
    """An artifact could not be read or written. The message names the artifact and the reason only; `type` is
    the failure type the job is failed with when the work function lets this through."""

    def __init__(self, message: str, type: ArtifactFailureType = "JobFailed") -> None:
        super().__init__(message)
        self.type = type


class UnsafeArtifact(ArtifactError):
    """The input artifact's zip would write outside the destination, or exceeds the extraction limits."""


def _s3_failure(kind: str, name: str, error: ArtifactStoreError) -> ArtifactError:
    failure_type = _FAILURE_TYPES.get(error.code, "JobFailed")
    return ArtifactError(f"{kind} artifact {name!r}: {error.operation} failed ({error.code})", failure_type)


class _Located:
    def __init__(self, kind: str, artifact: Artifact, store: ArtifactStore) -> None:
        location = artifact.location.s3_location if artifact.location else None
        self.name = artifact.name or ""
        if location is None:
            raise ArtifactError(f"{kind} artifact {self.name!r} has no S3 location")
        self.revision = artifact.revision
        self.bucket = location.bucket_name
        self.key = location.object_key
        self._kind = kind
        self._store = store

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, bucket={self.bucket!r}, key={self.key!r})"

    def _failed(self, error: ArtifactStoreError) -> ArtifactError:
        return _s3_failure(self._kind, self.name, error)


class InputArtifact(_Located):
    """An input artifact: the revision an earlier action produced, in the pipeline's artifact bucket."""

    def __init__(self, artifact: Artifact, store: ArtifactStore) -> None:
        super().__init__("input", artifact, store)

    def extract(
        self,
        directory: str | os.PathLike[str],
        *,
        max_bytes: int = zips.DEFAULT_MAX_BYTES,
        max_entries: int = zips.DEFAULT_MAX_ENTRIES,
    ) -> Path:
        """Unzip the artifact into `directory` (created if needed); return it. The object streams to a temporary
        file first (zip's index is at its end), then each entry is written, checked as `zips` describes: no
        path outside `directory`, at most `max_entries` entries and `max_bytes` bytes written."""
        destination = Path(directory)
        with tempfile.TemporaryFile() as spool:
            self._download(spool)
            spool.seek(0)
            if not zipfile.is_zipfile(spool):
                raise ArtifactError(f"input artifact {self.name!r} is not a zip: read it with download() or open()")
            spool.seek(0)
            try:
                zips.extract(spool, destination, max_bytes=max_bytes, max_entries=max_entries)
            except zips.UnsafeZip as exc:
                error: ArtifactError = UnsafeArtifact(f"input artifact {self.name!r}: {exc}")
            except zips.ZipError as exc:
                error = ArtifactError(f"input artifact {self.name!r}: {exc}")
            else:
                return destination
        raise error

    def download(self, path: str | os.PathLike[str]) -> Path:
        """Save the object as it is (a zip stays a zip) at `path`; return it."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as sink:
            self._download(sink)
        return target

    @contextmanager
    def open(self) -> Iterator[BinaryIO]:
        """The object's bytes as a stream, read as they arrive: `with job.input().open() as stream: ...`."""
        try:
            body, _ = self._store.open(self.bucket, self.key)
        except ArtifactStoreError as exc:
            error = self._failed(exc)
        else:
            with body:
                yield body
            return
        raise error

    def _download(self, sink: BinaryIO) -> None:
        try:
            self._store.download(self.bucket, self.key, sink)
        except ArtifactStoreError as exc:
            error = self._failed(exc)
        else:
            return
        raise error


class OutputArtifact(_Located):
    """An output artifact: where this action's result goes, for the pipeline's next actions to read. Written
    with SSE-KMS and the job's key when the pipeline has one, with SSE-S3 otherwise."""

    def __init__(self, artifact: Artifact, store: ArtifactStore, kms_key_id: Callable[[], str | None]) -> None:
        super().__init__("output", artifact, store)
        self._kms_key_id = kms_key_id

    def write_directory(self, directory: str | os.PathLike[str]) -> None:
        """Zip `directory`'s tree (file modes and symlinks kept) and upload it: the format CodeBuild,
        CodeDeploy and most actions expect from an artifact. The zip streams to S3 as it is made."""
        source = Path(directory)
        if not source.is_dir():
            raise ArtifactError(f"output artifact {self.name!r}: {source.name!r} is not a directory")
        self._upload(lambda sink: zips.write(source, sink), ZIP_CONTENT_TYPE)

    def write_file(self, path: str | os.PathLike[str]) -> None:
        """Upload the file as it is: a zip you made, or the one object an action downstream expects."""
        source = Path(path)
        with source.open("rb") as stream:
            self._upload(lambda sink: _copy(stream, sink), None)

    def write_bytes(self, data: bytes) -> None:
        """Upload `data` as the artifact's object."""
        self._upload(lambda sink: _copy(io.BytesIO(data), sink), None)

    def _upload(self, produce: Callable[[_Upload], object], content_type: str | None) -> None:
        upload = _Upload(self._store, self.bucket, self.key, object_args(self._kms_key_id(), content_type))
        try:
            produce(upload)
            upload.finish()
        except ArtifactStoreError as exc:
            upload.abort()
            error = self._failed(exc)
        except BaseException:
            upload.abort()
            raise
        else:
            return
        raise error


def _copy(source: IO[bytes], sink: _Upload) -> None:
    while chunk := source.read(PART_BYTES):
        sink.write(chunk)


class _Upload(io.RawIOBase):
    """A write-only stream into one S3 object: a single PutObject if it ends within one part, otherwise a
    multipart upload whose parts go out while the next fills (at most PARTS_IN_FLIGHT at a time). Nothing
    appears in the bucket until `finish`; `abort` leaves nothing behind."""

    def __init__(self, store: ArtifactStore, bucket: str, key: str, args: dict[str, str]) -> None:
        super().__init__()
        self._store = store
        self._bucket = bucket
        self._key = key
        self._args = args
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[Future[str]] = []
        self._pending: deque[Future[str]] = deque()
        self._pool: ThreadPoolExecutor | None = None

    def writable(self) -> bool:
        return True

    def write(self, data: Buffer) -> int:
        view = memoryview(data)
        self._buffer += view
        while len(self._buffer) >= PART_BYTES:
            with memoryview(self._buffer) as buffered, buffered[:PART_BYTES] as head:
                part = bytes(head)  # one copy: the part leaves with it while the buffer refills
            del self._buffer[:PART_BYTES]
            self._send(part)
        return view.nbytes

    def _send(self, part: bytes) -> None:
        if self._pool is None:
            self._upload_id = self._store.start_upload(self._bucket, self._key, self._args)
            self._pool = ThreadPoolExecutor(max_workers=PARTS_IN_FLIGHT, thread_name_prefix="artifact-upload")
        # A part that failed stops the upload at once; memory stays bounded: wait for the oldest beyond the limit.
        while self._pending and (self._pending[0].done() or len(self._pending) >= PARTS_IN_FLIGHT):
            self._pending.popleft().result()
        number = len(self._parts) + 1
        assert self._upload_id is not None  # noqa: S101 - set with the pool
        sent = self._pool.submit(self._store.upload_part, self._bucket, self._key, self._upload_id, number, part)
        self._parts.append(sent)
        self._pending.append(sent)

    def finish(self) -> None:
        if self._upload_id is None:
            self._store.put(self._bucket, self._key, bytes(self._buffer), self._args)
            return
        if self._buffer or not self._parts:
            self._send(bytes(self._buffer))
        etags = [part.result() for part in self._parts]
        self._store.complete_upload(self._bucket, self._key, self._upload_id, etags)
        self._shutdown()

    def abort(self) -> None:
        if self._upload_id is None:
            return
        for part in self._parts:
            part.cancel()
        self._shutdown()
        # If this fails too, the bucket's lifecycle rule for incomplete uploads collects what is left.
        with contextlib.suppress(ArtifactStoreError):
            self._store.abort_upload(self._bucket, self._key, self._upload_id)

    def _shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
