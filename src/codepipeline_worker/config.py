"""Configuration: environment variables, validated once at cold start.

A bad value fails the cold start with a ConfigurationError that names the variable and what is wrong, rather
than failing jobs one by one later.
"""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import ConfigurationError
from .models import ActionTypeId, PollableOwner

if TYPE_CHECKING:
    from collections.abc import Mapping

DEFAULT_SERVICE_NAME = "codepipeline-job-worker"
DEFAULT_METRICS_NAMESPACE = "CodePipelineJobWorker"
DEFAULT_WORK_FUNCTION = "codepipeline_worker.example:check_url"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class PollTarget(ActionTypeId):
    """An action type this worker polls. AWS-owned actions are run by AWS and cannot be polled."""

    owner: PollableOwner


class QueryParam(BaseModel):
    """PollForJobs' queryParam: one queryable action-configuration property and the value to match."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: Annotated[str, Field(min_length=1, max_length=50)]
    value: Annotated[str, Field(pattern=r"^[a-zA-Z0-9_-]{1,50}$")]


class CommonSettings(BaseModel):
    """The variables both functions read: the acknowledger and the work function. Field aliases are the
    variable names, so errors name them; the values are environment strings, which `before` validators parse."""

    # Built when first validated: each function validates two of the three settings classes, never the third.
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)

    client_token_secret_id: str | None = Field(None, alias="CLIENT_TOKEN_SECRET_ID", min_length=1, max_length=2048)
    max_attempts: int = Field(3, alias="AWS_MAX_ATTEMPTS", ge=1, le=10)
    service_name: str = Field(DEFAULT_SERVICE_NAME, alias="POWERTOOLS_SERVICE_NAME", min_length=1)
    metrics_namespace: str = Field(
        DEFAULT_METRICS_NAMESPACE, alias="POWERTOOLS_METRICS_NAMESPACE", min_length=1, max_length=255
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field("INFO", alias="POWERTOOLS_LOG_LEVEL")
    log_event: bool = Field(False, alias="POWERTOOLS_LOGGER_LOG_EVENT")
    tracing_disabled: bool = Field(False, alias="POWERTOOLS_TRACE_DISABLED")

    # check_fields=False: JOB_QUEUE_URL is the acknowledger's own field (Settings), blank there means unset too.
    @field_validator("client_token_secret_id", "job_queue_url", mode="before", check_fields=False)
    @classmethod
    def _blank_is_unset(cls, value: str) -> str | None:
        return value if value.strip() else None

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.strip().upper()

    @field_validator("log_event", "tracing_disabled", mode="before")
    @classmethod
    def _flag(cls, value: str) -> bool:
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError("must be true or false")


class Settings(CommonSettings):
    """The acknowledger's configuration."""

    action_types: tuple[PollTarget, ...] = Field(alias="ACTION_TYPES", min_length=1)
    max_batch_size: int = Field(10, alias="MAX_BATCH_SIZE", ge=1, le=100)
    poll_query_param: QueryParam | None = Field(None, alias="POLL_QUERY_PARAM")
    ack_concurrency: int = Field(16, alias="ACK_CONCURRENCY", ge=1, le=100)
    # Unbounded in the pattern, bounded by max_length: a repetition count such as {1,2040} makes the regex
    # engine build a large automaton, which cost the cold start 12 ms.
    job_queue_url: str | None = Field(None, alias="JOB_QUEUE_URL", pattern=r"^https?://\S+$", max_length=2048)

    @field_validator("action_types", mode="before")
    @classmethod
    def _split_action_types(cls, value: str) -> list[dict[str, str]]:
        targets = []
        for position, item in enumerate(value.split(","), start=1):
            parts = item.strip().split("/")
            if len(parts) != 4:
                raise ValueError(
                    f"item {position} is not Owner/Category/Provider/Version (for example Custom/Build/MyTool/1)"
                )
            targets.append(dict(zip(("owner", "category", "provider", "version"), parts, strict=True)))
        names = ["/".join(t.values()) for t in targets]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"listed more than once: {', '.join(duplicates)}")
        return targets

    @field_validator("poll_query_param", mode="before")
    @classmethod
    def _split_query_param(cls, value: str) -> dict[str, str] | None:
        if not value.strip():
            return None
        key, sep, param = value.strip().partition("=")
        if not sep:
            raise ValueError("must be key=value, for example ProjectName=my-project")
        return {"key": key, "value": param}

    def action_type_names(self) -> list[str]:
        return [str(t) for t in self.action_types]


class WorkerSettings(CommonSettings):
    """The work function's configuration: which function runs the jobs taken from the work queue."""

    work_function: str = Field(
        DEFAULT_WORK_FUNCTION,
        alias="WORK_FUNCTION",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$",
    )


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the acknowledger's configuration, or raise ConfigurationError naming every bad variable."""
    return load_config(Settings, environ)


def load_config[S: CommonSettings](model: type[S], environ: Mapping[str, str] | None = None) -> S:
    """Read and validate one function's configuration, or raise ConfigurationError naming every bad variable."""
    env = os.environ if environ is None else environ
    try:
        return model.model_validate(dict(env))
    except ValidationError as exc:
        problems = [
            _describe(err["loc"], err["msg"])
            for err in exc.errors(include_url=False, include_input=False, include_context=False)
        ]
    raise ConfigurationError("invalid configuration: " + "; ".join(problems))


def _describe(loc: tuple[int | str, ...], message: str) -> str:
    variable = str(loc[0]) if loc else "environment"
    rest = "".join(f"[{p + 1}]" if isinstance(p, int) else f".{p}" for p in loc[1:])
    if message.startswith("Value error, "):
        message = message.removeprefix("Value error, ")
    if message == "Field required":
        message = "is required"
    return f"{variable}{rest}: {message}"


@cache
def get_settings() -> Settings:
    """The acknowledger's settings, read from os.environ on first use (the cold start) and kept."""
    return load_settings()


@cache
def get_common_settings() -> CommonSettings:
    """What both functions read (logging, metrics, tracing), from os.environ at cold start."""
    return load_config(CommonSettings)


@cache
def get_worker_settings() -> WorkerSettings:
    """The work function's settings, from os.environ at cold start."""
    return load_config(WorkerSettings)
