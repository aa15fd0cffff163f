"""What the acknowledger returns: one JobResult per job, their counts, and each action type's polls.
None of them ever carries a nonce or a token."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from ..shared.models import JobStatus, JobType, ResultModel


class Outcome(StrEnum):
    ACKNOWLEDGED = "acknowledged"
    NOT_CLAIMED = "notClaimed"
    CONFLICT = "conflict"
    FAILED = "failed"


class Handoff(StrEnum):
    """What became of a claimed job when a work queue is configured."""

    QUEUED = "queued"  # on the work queue
    FAILED_BACK = "failedBack"  # the queue refused it; reported failed to CodePipeline (PutJob*FailureResult)
    LOST = "lost"  # the queue refused it and the failure report failed too: CodePipeline times the job out


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


class Counts(ResultModel):
    total: int
    acknowledged: int
    not_claimed: int
    conflict: int
    failed: int
    # Set when jobs were handed to a work queue: those it took, and those it refused.
    queued: int | None = None
    handoff_failed: int | None = None

    @classmethod
    def of(cls, results: list[JobResult]) -> Counts:
        outcomes = [r.outcome for r in results]
        handoffs = [r.handoff for r in results if r.handoff is not None]
        return cls(
            total=len(results),
            acknowledged=outcomes.count(Outcome.ACKNOWLEDGED),
            not_claimed=outcomes.count(Outcome.NOT_CLAIMED),
            conflict=outcomes.count(Outcome.CONFLICT),
            failed=outcomes.count(Outcome.FAILED),
            queued=handoffs.count(Handoff.QUEUED) if handoffs else None,
            handoff_failed=len(handoffs) - handoffs.count(Handoff.QUEUED) if handoffs else None,
        )


class PollSummary(ResultModel):
    """One configured action type's polling in this invocation."""

    action_type: str
    polls: int
    jobs_found: int
    error: str | None = None


class BatchResult(ResultModel):
    results: list[JobResult]
    counts: Counts


class PollResult(ResultModel):
    trigger: Literal["scheduled", "actionStarted"]
    polls: list[PollSummary]
    results: list[JobResult]
    counts: Counts


class IgnoredResult(ResultModel):
    ignored: Literal[True] = True
    reason: str
