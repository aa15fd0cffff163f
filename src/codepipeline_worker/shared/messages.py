"""The hand-off contract: the message the acknowledger puts on the work queue for each claimed job.

It carries ids and context only: never the nonce, the client token, artifact credentials or the action's
configuration (the action type may mark some of it secret). The work side fetches the job's details itself.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from .ids_message import MESSAGE_VERSION, dedup_id
from .models import UUID_PATTERN, ActionTypeId, ClientId, JobType


class InvalidJobMessage(ValueError):
    """A work-queue message that is not a job this library put there; its values are never echoed."""


class Wire(BaseModel):
    """Part of CodePipeline's job data. AWS may add fields: unknown ones are dropped, never passed on."""

    model_config = ConfigDict(extra="ignore", frozen=True, alias_generator=to_camel, populate_by_name=True)


class S3Location(Wire):
    bucket_name: Annotated[str, Field(min_length=1, max_length=1024)]
    object_key: Annotated[str, Field(min_length=1, max_length=1024)]


class ArtifactLocation(Wire):
    type: Literal["S3"] = "S3"
    s3_location: S3Location | None = None


class Artifact(Wire):
    """An input or output artifact: its name, revision and S3 location. Reading it needs the job's
    artifact credentials (`job.artifact_credentials`)."""

    name: Annotated[str, Field(pattern=r"^[a-zA-Z0-9_-]{1,100}$")] | None = None
    revision: Annotated[str, Field(min_length=1, max_length=1500)] | None = None
    location: ArtifactLocation | None = None


class StageContext(Wire):
    name: Annotated[str, Field(min_length=1, max_length=100)] | None = None


class ActionContext(Wire):
    name: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    action_execution_id: Annotated[str, Field(min_length=1, max_length=200)] | None = None


class PipelineContext(Wire):
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
    def dedup_id(self) -> str:
        return dedup_id(self.job_type, self.job_id)

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
