"""The hand-off message of a job known by its ids only (a direct job event), written without pydantic's models.

Its body is the one `JobMessage(job_id=..., job_type=..., client_id=...).to_body()` writes, byte for byte: the same
keys in the same order, through the same JSON writer (pydantic_core's, which `model_dump_json` uses); a test
compares them. A direct job's execution environment then never imports `messages`, whose models (the message, its
pipeline context and artifacts) cost its cold start about 8 ms to define and build. The work side parses the body
as any message.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Literal

from pydantic_core import to_json

if TYPE_CHECKING:
    from .models import JobType

MESSAGE_VERSION: Literal[1] = 1


def dedup_id(job_type: str, job_id: str) -> str:
    """A job's id on a FIFO work queue, as its deduplication id and its message group: the same for every message
    of this job, and within SQS's 128 characters and alphabet whatever the jobId holds."""
    return hashlib.sha256(f"{job_type}:{job_id}".encode()).hexdigest()


class IdsMessage:
    """The message of a job claimed from a direct event: its ids, as the validated event gave them (a custom job's
    jobId a UUID, a partner job's clientId a UUID); the work side reads the rest from the job's details."""

    __slots__ = ("client_id", "job_id", "job_type")
    has_context = False

    def __init__(self, job_id: str, job_type: JobType, client_id: str | None = None) -> None:
        if job_type != "custom" and client_id is None:
            raise ValueError("a partner job's message needs its clientId: the work side reads the token by it")
        self.job_id = job_id
        self.job_type = job_type
        self.client_id = client_id

    @property
    def dedup_id(self) -> str:
        return dedup_id(self.job_type, self.job_id)

    def to_body(self) -> str:
        body = {"version": MESSAGE_VERSION, "jobId": self.job_id, "jobType": self.job_type}
        if self.client_id is not None:
            body["clientId"] = self.client_id
        return to_json(body).decode()
