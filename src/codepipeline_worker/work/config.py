"""The work function's configuration: environment variables, validated once at cold start."""

from __future__ import annotations

from functools import cache

from pydantic import Field, model_validator

from ..shared.config import CommonSettings, load_config

DEFAULT_WORK_FUNCTION = "codepipeline_worker.examples.url_gate:check_url"


class WorkerSettings(CommonSettings):
    """The work function's configuration: which function runs the jobs taken from the work queue."""

    work_function: str = Field(
        DEFAULT_WORK_FUNCTION,
        alias="WORK_FUNCTION",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$",
    )

    @model_validator(mode="after")
    def _table(self) -> WorkerSettings:
        if self.job_table_name is None:
            raise ValueError("JOB_TABLE_NAME is required: each job's once-only record is kept in that table")
        return self


@cache
def get_worker_settings() -> WorkerSettings:
    """The work function's settings, from os.environ at cold start."""
    return load_config(WorkerSettings)
