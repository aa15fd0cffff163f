"""What the acknowledger returns for one job: its JobResult, or the rejection of an invalid event. None of them
ever carries a nonce or a token. A batch's and a poll's results, with their counts, are in `batch_and_poll_results`:
a direct job's execution environment never defines them."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from ..shared.models import JobStatus, JobType, ResultModel


class Outcome(StrEnum):
    ACKNOWLEDGED = "acknowledged"
    NOT_CLAIMED = "notClaimed"
    CONFLICT = "conflict"
    FAILED = "failed"
    DUPLICATE = "duplicate"  # a batch named the job again: claimed once, as its first entry


class Handoff(StrEnum):
    """What became of a claimed job (or of a claim whose answer was lost) when a work queue is configured."""

    QUEUED = "queued"  # on the work queue
    FAILED_BACK = "failedBack"  # the queue certainly refused it; reported failed to CodePipeline
    # Not certainly on the queue (the send's answer was lost, or the queue refused it and the failure report
    # failed too), or not certainly claimed: recorded in the job table, where the next poll's reconciler
    # finishes it. A second copy on the queue, if the first did land, is dropped by the work side.
    PENDING = "pending"
    LOST = "lost"  # as pending, but the record could not be written either: CodePipeline times the job out


class JobResult(ResultModel):
    """What happened to one job. Never carries a nonce or a token."""

    job_id: str
    job_type: JobType
    outcome: Outcome
    status: JobStatus | None = None
    error: str | None = None
    action_type: str | None = None
    handoff: Handoff | None = None
    handoff_error: str | None = None
    reason: str | None = None  # what `error` means, for a person reading the result


class RejectedResult(ResultModel):
    """An event that no retry can make valid. Returned, not raised: a failed invocation's event goes to the
    failure destination, which would keep whatever nonce or client token the event holds."""

    error: Literal["InvalidJobEvent"] = "InvalidJobEvent"
    message: str
