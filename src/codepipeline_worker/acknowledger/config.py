"""The acknowledger's configuration: environment variables, validated once at cold start."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from pydantic import Field, field_validator, model_validator

from ..shared.config import CommonSettings, load_config
from ..shared.models import ActionTypeId, PollableOwner, QueryParam

if TYPE_CHECKING:
    from collections.abc import Mapping


class PollTarget(ActionTypeId):
    """An action type this worker polls. AWS-owned actions are run by AWS and cannot be polled."""

    owner: PollableOwner


class Settings(CommonSettings):
    """The acknowledger's configuration."""

    # Never empty: the validator below splits the text into one item at least (an empty one is refused as such).
    action_types: tuple[PollTarget, ...] = Field(alias="ACTION_TYPES")
    # 25 measured fastest for bursts with ACK_CONCURRENCY 32 (make bench, docs/benchmarks.md): a poll's records are one
    # BatchWriteItem, and a burst of 100 jobs needs 5 polls one after another instead of 11.
    max_batch_size: int = Field(25, alias="MAX_BATCH_SIZE", ge=1, le=100)
    poll_query_param: QueryParam | None = Field(None, alias="POLL_QUERY_PARAM")
    # 32 measured fastest for bursts (make bench, docs/benchmarks.md); threads start only as calls need them.
    ack_concurrency: int = Field(32, alias="ACK_CONCURRENCY", ge=1, le=100)
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

    @model_validator(mode="after")
    def _table_with_queue(self) -> Settings:
        if self.job_queue_url is not None and self.job_table_name is None:
            raise ValueError(
                "JOB_TABLE_NAME is required with JOB_QUEUE_URL: the table holds the hand-offs not certainly on the"
                " work queue"
            )
        return self

    def action_type_names(self) -> list[str]:
        return [str(t) for t in self.action_types]


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the acknowledger's configuration, or raise ConfigurationError naming every bad variable."""
    return load_config(Settings, environ)


@cache
def get_settings() -> Settings:
    """The acknowledger's settings, read from os.environ on first use (the cold start) and kept."""
    return load_settings()
