"""The work function's configuration: environment variables, validated once at cold start."""

from __future__ import annotations

from functools import cache
from typing import Literal

from pydantic import Field, model_validator

from ..shared.config import CommonSettings, QueueUrl, load_config
from ..shared.isolation import fork_available

DEFAULT_WORK_FUNCTION = "codepipeline_worker.examples.url_gate:check_url"
WORK_FUNCTION_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"


class WorkerSettings(CommonSettings):
    """The work function's configuration: which function runs the jobs taken from the work queue, for how long
    each may run, and how."""

    work_function: str = Field(DEFAULT_WORK_FUNCTION, alias="WORK_FUNCTION", pattern=WORK_FUNCTION_PATTERN)
    # Seconds one job's work may run; 0: the function's time, less what a job's calls may take, shared by a
    # full batch (WORK_BATCH_SIZE jobs), so that every job of one can start. At most Lambda's 900 s.
    job_time_limit_s: float = Field(0.0, alias="JOB_TIME_LIMIT_S", ge=0, le=900)
    # The SQS event source's batch size: how many jobs share the function's time by default.
    work_batch_size: int = Field(10, alias="WORK_BATCH_SIZE", ge=1, le=10)
    # process: each job's work runs in a child process, killed at its time limit. none: in the function's own
    # process (a debugger sees it; no os.fork needed), where the time limit is only what remaining_time_s() says.
    job_isolation: Literal["process", "none"] = Field("process", alias="JOB_ISOLATION")
    # The work queue: jobs an invocation had no time to start are made visible again at once. Unset: they come
    # back after the queue's visibility timeout.
    job_queue_url: QueueUrl | None = Field(None, alias="JOB_QUEUE_URL")

    @model_validator(mode="after")
    def _fork_for_process_isolation(self) -> WorkerSettings:
        if self.job_isolation == "process" and not fork_available():
            raise ValueError("JOB_ISOLATION=process needs os.fork, which this platform lacks: set JOB_ISOLATION=none")
        return self

    @model_validator(mode="after")
    def _table(self) -> WorkerSettings:
        if self.job_table_name is None:
            raise ValueError("JOB_TABLE_NAME is required: each job's once-only record is kept in that table")
        return self


@cache
def get_worker_settings() -> WorkerSettings:
    """The work function's settings, from os.environ at cold start."""
    return load_config(WorkerSettings, None)
