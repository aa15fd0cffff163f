"""What a work function is given and what it returns.

A work function is one callable, `def run(job: Job) -> Success | Failure | StillRunning`. It is handed a
claimed job; it returns what happened; the library reports it to CodePipeline (PutJobSuccessResult,
PutJobFailureResult, or the third-party variants). See `codepipeline_worker.examples.url_gate` for one.

The job's details (configuration, artifact credentials) are fetched when the work function first asks for them
(GetJobDetails or GetThirdPartyJobDetails); the queue message holds none of them.

Artifacts, one call each (see `artifacts`):

    source = job.input().extract("/tmp/source")            # the only input artifact, unzipped
    job.output("Report").write_directory("/tmp/report")     # zipped, encrypted with the job's key, uploaded
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic.alias_generators import to_camel

from ..shared.messages import Artifact, JobMessage, PipelineContext, Wire
from ..shared.models import ActionTypeId, JobType  # noqa: TC001 - pydantic resolves field types at run time
from ..shared.s3 import ArtifactStore, JobCredentials, SessionCredentials, create_s3_client
from .artifacts import ArtifactError, InputArtifact, OutputArtifact

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# CodePipeline's quota: "Maximum size of all output variables combined for a particular action", in bytes.
MAX_OUTPUT_VARIABLES_BYTES = 122_880
OUTPUT_VARIABLE_KEY = r"^[A-Za-z0-9@_-]+$"

FailureType = Literal[
    "JobFailed",
    "ConfigurationError",
    "PermissionError",
    "RevisionOutOfSync",
    "RevisionUnavailable",
    "SystemUnavailable",
]


# -- what the work function returns ------------------------------------------------------------------------


class _Outcome(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True)


class CurrentRevision(_Outcome):
    """The revision the job worked on (CodePipeline's CurrentRevision)."""

    revision: Annotated[str, Field(min_length=1, max_length=1500)]
    change_identifier: Annotated[str, Field(min_length=1, max_length=100)]
    revision_summary: Annotated[str, Field(min_length=1, max_length=2048)] | None = None


class Success(_Outcome):
    """The job succeeded. Output variables are for custom actions only (PutThirdPartyJobSuccessResult has none)."""

    summary: Annotated[str, Field(min_length=1, max_length=2048)] | None = None
    external_execution_id: Annotated[str, Field(min_length=1, max_length=1500)] | None = None
    output_variables: dict[Annotated[str, Field(pattern=OUTPUT_VARIABLE_KEY)], str] | None = None
    current_revision: CurrentRevision | None = None

    @field_validator("output_variables")
    @classmethod
    def _within_quota(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is None:
            return None
        size = sum(len(k.encode()) + len(v.encode()) for k, v in value.items())
        if size > MAX_OUTPUT_VARIABLES_BYTES:
            raise ValueError(
                f"output variables total {size} bytes; CodePipeline allows {MAX_OUTPUT_VARIABLES_BYTES} per action"
            )
        return value


class Failure(_Outcome):
    """The job failed; the message is shown in the pipeline's console. Longer than 5,000 characters, it is cut."""

    message: Annotated[str, Field(min_length=1, max_length=5000)]
    type: FailureType = "JobFailed"
    external_execution_id: Annotated[str, Field(min_length=1, max_length=1500)] | None = None

    @field_validator("message", mode="before")
    @classmethod
    def _cut(cls, value: Any) -> Any:
        if isinstance(value, str) and len(value) > 5000:
            return value[:4999] + "…"
        return value


class StillRunning(_Outcome):
    """The work goes on: CodePipeline completes this job and creates a follow-up job that carries the token;
    the acknowledger claims it and the work function gets it back as `job.continuation_token`."""

    continuation_token: Annotated[str, Field(min_length=1, max_length=2048)]
    percent_complete: Annotated[int, Field(ge=0, le=100)] | None = None
    summary: Annotated[str, Field(min_length=1, max_length=2048)] | None = None
    external_execution_id: Annotated[str, Field(min_length=1, max_length=1500)] | None = None


Outcome = Success | Failure | StillRunning


# -- what the work function is given -------------------------------------------------------------------------


class ArtifactCredentials(BaseModel):
    """Temporary credentials for the job's artifact bucket. Every part is a SecretStr: no repr shows it."""

    model_config = ConfigDict(frozen=True, alias_generator=to_camel, populate_by_name=True)

    access_key_id: SecretStr
    secret_access_key: SecretStr
    session_token: SecretStr

    def secrets(self) -> list[str]:
        return [s.get_secret_value() for s in (self.access_key_id, self.secret_access_key, self.session_token)]


class EncryptionKey(Wire):
    """The key the pipeline's artifact store is encrypted with: outputs are written with SSE-KMS and this key."""

    id: Annotated[str, Field(min_length=1, max_length=400)]
    type: Annotated[str, Field(min_length=1, max_length=20)] = "KMS"


class JobDetails(Wire):
    """What GetJobDetails / GetThirdPartyJobDetails answer. `configuration` is the action's configuration,
    secret properties included: it is left out of the repr, and this library never logs it."""

    action_type: ActionTypeId | None = Field(None, alias="actionTypeId")
    configuration: dict[str, str] = Field(default_factory=dict, repr=False)
    pipeline_context: PipelineContext = Field(default_factory=PipelineContext)
    input_artifacts: list[Artifact] = Field(default_factory=list)
    output_artifacts: list[Artifact] = Field(default_factory=list)
    artifact_credentials: ArtifactCredentials | None = Field(None, repr=False)
    encryption_key: EncryptionKey | None = None
    continuation_token: str | None = None

    @classmethod
    def from_job_data(cls, data: Any) -> JobDetails:
        source = dict(data) if isinstance(data, dict) else {}
        source["configuration"] = (source.get("actionConfiguration") or {}).get("configuration") or {}
        return cls.model_validate(source)


class Job:
    """A claimed job, as the work function sees it. Ids and context come from the queue message; the details
    (configuration, artifact credentials) are fetched from CodePipeline on first use, and again only when the
    artifact credentials need renewing. `s3_client_factory` and `clock` are for tests.

    The work has a time limit (`time_limit_s`): `remaining_time_s()` says how much of it is left. Work that
    can stop and go on later records where it is with `checkpoint(...)`: if the limit ends it, the job is
    reported as still running from the last checkpoint, rather than failed."""

    def __init__(
        self,
        message: JobMessage,
        load_details: Callable[[JobMessage], JobDetails],
        deadline: float | None = None,
        *,
        time_limit_s: float | None = None,
        on_checkpoint: Callable[[StillRunning], None] | None = None,
        s3_client_factory: Callable[[SessionCredentials], S3Client] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.message = message
        self._load_details = load_details
        self._details: JobDetails | None = None
        self._details_at = 0.0
        self._deadline = deadline
        self._time_limit_s = time_limit_s
        self._on_checkpoint = on_checkpoint
        self.last_checkpoint: StillRunning | None = None
        self._clock = clock
        self._s3_client_factory = s3_client_factory
        self._store: ArtifactStore | None = None

    def __repr__(self) -> str:
        return f"Job(id={self.id!r}, type={self.type!r})"

    @property
    def id(self) -> str:
        return self.message.job_id

    @property
    def type(self) -> JobType:
        return self.message.job_type

    @property
    def client_id(self) -> str | None:
        return self.message.client_id

    def details(self) -> JobDetails:
        if self._details is None:
            self._details = self._load_details(self.message)
            self._details_at = self._clock()
        return self._details

    @property
    def action_type(self) -> ActionTypeId | None:
        return self.message.action_type if self.message.has_context else self.details().action_type

    @property
    def pipeline_context(self) -> PipelineContext:
        if self.message.pipeline_context is not None:
            return self.message.pipeline_context
        return self.details().pipeline_context

    @property
    def input_artifacts(self) -> list[Artifact]:
        if self.message.has_context:
            return list(self.message.input_artifacts or [])
        return self.details().input_artifacts

    @property
    def output_artifacts(self) -> list[Artifact]:
        if self.message.has_context:
            return list(self.message.output_artifacts or [])
        return self.details().output_artifacts

    @property
    def continuation_token(self) -> str | None:
        """None on a job's first round; the token the last round returned in StillRunning after that."""
        if self.message.has_context:
            return self.message.continuation_token
        return self.details().continuation_token

    @property
    def configuration(self) -> dict[str, str]:
        """The action's configuration (fetched): treat every value as possibly secret."""
        return self.details().configuration

    @property
    def artifact_credentials(self) -> ArtifactCredentials | None:
        return self.details().artifact_credentials

    @property
    def encryption_key(self) -> EncryptionKey | None:
        """The pipeline's KMS key (fetched); output artifacts are written with it."""
        return self.details().encryption_key

    @property
    def time_limit_s(self) -> float | None:
        """How long this job's work may run, in seconds (JOB_TIME_LIMIT_S, or its default); None: no limit."""
        return self._time_limit_s

    def remaining_time_s(self) -> float | None:
        """Seconds left of the job's time limit, or None without one. At zero the work is ended."""
        return None if self._deadline is None else max(0.0, self._deadline - time.monotonic())

    def checkpoint(
        self, continuation_token: str, *, percent_complete: int | None = None, summary: str | None = None
    ) -> None:
        """Record where the work is, so that it can go on from there. If the time limit ends the work, the job
        is reported as `StillRunning(continuation_token, ...)` with the last checkpoint: CodePipeline creates a
        follow-up job that carries the token (`job.continuation_token`), and the work resumes from it. The
        values are checked as StillRunning's (a bad one raises ValidationError here, in your code)."""
        point = StillRunning(continuation_token=continuation_token, percent_complete=percent_complete, summary=summary)
        self.last_checkpoint = point
        if self._on_checkpoint is not None:
            self._on_checkpoint(point)

    # -- artifacts ---------------------------------------------------------------------------------------

    def input(self, name: str | None = None) -> InputArtifact:
        """The input artifact called `name`, or without a name the only one. Then `.extract(directory)`,
        `.download(path)` or `.open()`."""
        return InputArtifact(_named("input", self.input_artifacts, name), self._artifact_store())

    def output(self, name: str | None = None) -> OutputArtifact:
        """The output artifact called `name`, or without a name the only one. Then `.write_directory(directory)`,
        `.write_file(path)` or `.write_bytes(data)`."""
        return OutputArtifact(_named("output", self.output_artifacts, name), self._artifact_store(), self._kms_key_id)

    def _artifact_store(self) -> ArtifactStore:
        if self._store is None:
            factory = self._s3_client_factory or create_s3_client
            self._store = ArtifactStore(JobCredentials(self._credentials, self._clock), factory)
        return self._store

    def _credentials(self, fresh: bool) -> tuple[ArtifactCredentials, float]:
        """The job's artifact credentials and when they were fetched; `fresh`: fetched again now."""
        if fresh:  # replaced, never emptied: another thread reading the details meanwhile still has them
            self._details = self._load_details(self.message)
            self._details_at = self._clock()
        credentials = self.details().artifact_credentials
        if credentials is None:
            raise ArtifactError("the job's details hold no artifact credentials", "PermissionError")
        return credentials, self._details_at

    def _kms_key_id(self) -> str | None:
        key = self.encryption_key
        return key.id if key is not None and key.type == "KMS" else None


def _named(kind: str, artifacts: list[Artifact], name: str | None) -> Artifact:
    """The artifact called `name`, or without a name the only one; ArtifactError naming those there are."""
    listed = ", ".join(repr(artifact.name) for artifact in artifacts) or "none"
    if name is None:
        if len(artifacts) == 1:
            return artifacts[0]
        problem = f"no {kind} artifact" if not artifacts else f"{len(artifacts)} {kind} artifacts ({listed}): name one"
        raise ArtifactError(f"the job has {problem}")
    for artifact in artifacts:
        if artifact.name == name:
            return artifact
    raise ArtifactError(f"the job has no {kind} artifact {name!r} (it has {listed})")


type WorkFunction = Callable[[Job], Outcome]
"""The one function a user writes: takes a claimed job, returns Success, Failure or StillRunning."""
