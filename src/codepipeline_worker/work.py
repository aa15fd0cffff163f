"""The work side: the message the acknowledger puts on the work queue, and what a work function sees and returns.

A work function is one callable, `def run(job: Job) -> Success | Failure | StillRunning`. It is handed a
claimed job; it returns what happened; the library reports it to CodePipeline (PutJobSuccessResult,
PutJobFailureResult, or the third-party variants). See `example.check_url` for one.

The queue message carries ids and context only: never the nonce, the client token, artifact credentials or
the action's configuration (the action type may mark some of it secret). The job's details, credentials among
them, are fetched when the work function first asks for them (GetJobDetails or GetThirdPartyJobDetails).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from .models import UUID_PATTERN, ActionTypeId, ClientId, JobType

# CodePipeline's quota: "Maximum size of all output variables combined for a particular action", in bytes.
MAX_OUTPUT_VARIABLES_BYTES = 122_880
OUTPUT_VARIABLE_KEY = r"^[A-Za-z0-9@_-]+$"
MESSAGE_VERSION: Literal[1] = 1

FailureType = Literal[
    "JobFailed",
    "ConfigurationError",
    "PermissionError",
    "RevisionOutOfSync",
    "RevisionUnavailable",
    "SystemUnavailable",
]


class InvalidJobMessage(ValueError):
    """A work-queue message that is not a job this library put there; its values are never echoed."""


class _Wire(BaseModel):
    """Part of CodePipeline's job data. AWS may add fields: unknown ones are dropped, never passed on."""

    model_config = ConfigDict(extra="ignore", frozen=True, alias_generator=to_camel, populate_by_name=True)


class S3Location(_Wire):
    bucket_name: Annotated[str, Field(min_length=1, max_length=1024)]
    object_key: Annotated[str, Field(min_length=1, max_length=1024)]


class ArtifactLocation(_Wire):
    type: Literal["S3"] = "S3"
    s3_location: S3Location | None = None


class Artifact(_Wire):
    """An input or output artifact: its name, revision and S3 location. Reading it needs the job's
    artifact credentials (`job.artifact_credentials`)."""

    name: Annotated[str, Field(pattern=r"^[a-zA-Z0-9_-]{1,100}$")] | None = None
    revision: Annotated[str, Field(min_length=1, max_length=1500)] | None = None
    location: ArtifactLocation | None = None


class StageContext(_Wire):
    name: Annotated[str, Field(min_length=1, max_length=100)] | None = None


class ActionContext(_Wire):
    name: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    action_execution_id: Annotated[str, Field(min_length=1, max_length=200)] | None = None


class PipelineContext(_Wire):
    pipeline_name: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    stage: StageContext | None = None
    action: ActionContext | None = None
    pipeline_arn: Annotated[str, Field(min_length=1, max_length=2048)] | None = None
    pipeline_execution_id: Annotated[str, Field(pattern=UUID_PATTERN)] | None = None


class JobMessage(BaseModel):
    """One claimed job on the work queue. `pipelineContext` and what follows it are there when the acknowledger
    saw them (a poll's answer); a job claimed from a direct event carries its ids only, and the work side reads
    the rest from the job's details."""

    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True)

    version: Literal[1] = MESSAGE_VERSION
    job_id: Annotated[str, Field(min_length=1, max_length=512)]
    job_type: JobType
    client_id: ClientId | None = None
    account_id: Annotated[str, Field(pattern=r"^[0-9]{12}$")] | None = None
    action_type: ActionTypeId | None = None
    pipeline_context: PipelineContext | None = None
    input_artifacts: list[Artifact] | None = None
    output_artifacts: list[Artifact] | None = None
    continuation_token: Annotated[str, Field(min_length=1, max_length=2048)] | None = None

    @model_validator(mode="after")
    def _ids(self) -> JobMessage:
        if self.job_type == "custom":
            if not _is_uuid(self.job_id):
                raise ValueError("a custom job's jobId is a UUID")
        elif self.client_id is None:
            raise ValueError("a partner job's message needs its clientId: the work side reads the token by it")
        return self

    @classmethod
    def from_job_data(
        cls,
        job_id: str,
        job_type: JobType,
        data: Any,
        *,
        client_id: str | None = None,
        account_id: str | None = None,
    ) -> JobMessage:
        """The message for a job whose JobData (or ThirdPartyJobData) the acknowledger holds. Only the fields
        named here are read: artifactCredentials, actionConfiguration and encryptionKey are never copied."""
        source = data if isinstance(data, dict) else {}
        try:
            return cls._from_source(job_id, job_type, source, client_id, account_id)
        except ValidationError:
            pass
        # Context that does not fit the API's shapes must not stop the job: the work side reads the details.
        return cls(job_id=job_id, job_type=job_type, client_id=client_id)

    @classmethod
    def _from_source(
        cls, job_id: str, job_type: JobType, source: dict[str, Any], client_id: str | None, account_id: str | None
    ) -> JobMessage:
        return cls.model_validate(
            {
                "jobId": job_id,
                "jobType": job_type,
                "clientId": client_id,
                "accountId": account_id,
                "actionType": source.get("actionTypeId"),
                "pipelineContext": source.get("pipelineContext") or {},
                "inputArtifacts": source.get("inputArtifacts") or [],
                "outputArtifacts": source.get("outputArtifacts") or [],
                "continuationToken": source.get("continuationToken"),
            }
        )

    @property
    def has_context(self) -> bool:
        return self.pipeline_context is not None

    def to_body(self) -> str:
        return self.model_dump_json(by_alias=True, exclude_none=True)

    @classmethod
    def from_body(cls, body: str) -> JobMessage:
        """Parse a queue message, or raise InvalidJobMessage naming the bad fields (never their values)."""
        try:
            return cls.model_validate_json(body)
        except ValidationError as exc:
            # A field's name, or for a rule about the whole message, the rule's own text (ours: no value in it).
            fields = sorted(
                {
                    ".".join(str(p) for p in e["loc"]) or e["msg"].removeprefix("Value error, ")
                    for e in exc.errors(include_input=False)
                }
            )
            error = InvalidJobMessage(f"not a job message: {', '.join(fields[:10])}")
        raise error


def _is_uuid(value: str) -> bool:
    return re.match(UUID_PATTERN, value) is not None


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


class JobDetails(_Wire):
    """What GetJobDetails / GetThirdPartyJobDetails answer. `configuration` is the action's configuration,
    secret properties included: it is left out of the repr, and this library never logs it."""

    action_type: ActionTypeId | None = Field(None, alias="actionTypeId")
    configuration: dict[str, str] = Field(default_factory=dict, repr=False)
    pipeline_context: PipelineContext = Field(default_factory=PipelineContext)
    input_artifacts: list[Artifact] = Field(default_factory=list)
    output_artifacts: list[Artifact] = Field(default_factory=list)
    artifact_credentials: ArtifactCredentials | None = Field(None, repr=False)
    continuation_token: str | None = None

    @classmethod
    def from_job_data(cls, data: Any) -> JobDetails:
        source = dict(data) if isinstance(data, dict) else {}
        source["configuration"] = (source.get("actionConfiguration") or {}).get("configuration") or {}
        return cls.model_validate(source)


class Job:
    """A claimed job, as the work function sees it. Ids and context come from the queue message; the details
    (configuration, artifact credentials) are fetched from CodePipeline on first use, once."""

    def __init__(
        self, message: JobMessage, load_details: Callable[[JobMessage], JobDetails], deadline: float | None = None
    ) -> None:
        self.message = message
        self._load_details = load_details
        self._details: JobDetails | None = None
        self._deadline = deadline

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

    def remaining_time_s(self) -> float | None:
        """Seconds left before the work must return (Lambda's deadline less a margin), or None without one."""
        return None if self._deadline is None else max(0.0, self._deadline - time.monotonic())


type WorkFunction = Callable[[Job], Outcome]
"""The one function a user writes: takes a claimed job, returns Success, Failure or StillRunning."""
