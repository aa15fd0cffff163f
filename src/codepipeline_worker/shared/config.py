"""Configuration both functions read, and how any function's environment is validated: once, at cold start.

A bad value fails the cold start with a ConfigurationError that names the variable and what is wrong, rather
than failing jobs one by one later.
"""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Mapping

DEFAULT_SERVICE_NAME = "codepipeline-job-worker"
DEFAULT_METRICS_NAMESPACE = "CodePipelineJobWorker"
# An SQS queue's URL. Unbounded in the pattern, bounded by max_length: a repetition count such as {1,2040}
# makes the regex engine build a large automaton, which costs the cold start.
QueueUrl = Annotated[str, Field(pattern=r"^https?://\S+$", max_length=2048)]
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


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
    # Each AWS call's attempt: connecting, then waiting for the answer. These calls are small; a short read
    # timeout bounds how long a claim can take (see acknowledger.budget), and botocore retries what times out.
    connect_timeout_s: float = Field(1.0, alias="CONNECT_TIMEOUT_S", gt=0, le=60)
    read_timeout_s: float = Field(2.0, alias="READ_TIMEOUT_S", gt=0, le=60)
    # The DynamoDB table both functions keep their durable records in: the acknowledger its hand-offs not yet
    # certainly on the work queue, the work function each job's once-only record (work.once).
    job_table_name: str | None = Field(
        None, alias="JOB_TABLE_NAME", pattern=r"^[a-zA-Z0-9_.-]{3,255}$|^arn:aws[a-z-]*:dynamodb:\S+$"
    )

    # check_fields=False: JOB_QUEUE_URL is the acknowledger's own field (Settings), blank there means unset too.
    @field_validator("client_token_secret_id", "job_queue_url", "job_table_name", mode="before", check_fields=False)
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
def get_common_settings() -> CommonSettings:
    """What both functions read (logging, metrics, tracing), from os.environ at cold start."""
    return load_config(CommonSettings)


def observability_settings() -> CommonSettings:
    """What Logger, Metrics and Tracer are built from: the common settings, or their defaults when the environment
    is invalid. The function's own settings, validated next at cold start, then name every bad variable at once
    (a bad POWERTOOLS_LOG_LEVEL and a bad MAX_BATCH_SIZE in one error), rather than the common ones alone."""
    try:
        return get_common_settings()
    except ConfigurationError:
        return CommonSettings.model_construct()
