"""Jobs for your action's tests, without AWS or a queue: `run(local_job({"Target": "staging"}))` is your work
function on a first round; `local_job(..., continuation_token="deployment-42")` on a later one."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING

from ..shared.messages import JobMessage
from .job import Job, JobDetails

if TYPE_CHECKING:
    from ..shared.models import JobType

LOCAL_CLIENT_ID = "00000000-0000-4000-8000-000000000000"


def local_job(
    configuration: dict[str, str] | None = None,
    *,
    job_type: JobType = "custom",
    continuation_token: str | None = None,
    remaining_time_s: float | None = None,
) -> Job:
    """A claimed job as your work function gets it: the action's configuration, the token the last round
    returned (None on the first round), and a time budget (`job.remaining_time_s()`; None: unbounded)."""
    message = JobMessage(
        job_id=str(uuid.uuid4()),
        job_type=job_type,
        client_id=LOCAL_CLIENT_ID if job_type == "thirdParty" else None,
    )
    details = JobDetails(configuration=dict(configuration or {}), continuation_token=continuation_token)
    deadline = None if remaining_time_s is None else time.monotonic() + remaining_time_s
    return Job(message, lambda _message: details, deadline)
