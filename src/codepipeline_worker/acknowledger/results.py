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


class Counts(ResultModel):
    total: int
    acknowledged: int
    not_claimed: int
    conflict: int
    failed: int
    duplicate: int | None = None
    # Set when jobs were handed to a work queue: those it took, those left to the reconciler, and those failed
    # back or lost.
    queued: int | None = None
    handoff_pending: int | None = None
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
            duplicate=outcomes.count(Outcome.DUPLICATE) or None,
            queued=handoffs.count(Handoff.QUEUED) if handoffs else None,
            handoff_pending=handoffs.count(Handoff.PENDING) if handoffs else None,
            handoff_failed=handoffs.count(Handoff.FAILED_BACK) + handoffs.count(Handoff.LOST) if handoffs else None,
        )


class PollSummary(ResultModel):
    """One configured action type's polling in this invocation."""

    action_type: str
    polls: int
    jobs_found: int
    error: str | None = None


class ReconcileSummary(ResultModel):
    """What the reconciler did with the hand-off records that earlier invocations left: each one it found is
    queued, dropped (the job was not, or is no longer, this worker's), left pending (to try again: never failed
    back, reconcile.py says why), or skipped (no time, or another invocation took it)."""

    found: int = 0
    queued: int = 0
    dropped: int = 0
    pending: int = 0
    skipped: int = 0
    error: str | None = None  # the records could not be read


class BatchResult(ResultModel):
    results: list[JobResult]
    counts: Counts


class PollResult(ResultModel):
    trigger: Literal["scheduled", "actionStarted"]
    polls: list[PollSummary]
    results: list[JobResult]
    counts: Counts
    reconciled: ReconcileSummary | None = None


class RejectedResult(ResultModel):
    """An event that no retry can make valid. Returned, not raised: a failed invocation's event goes to the
    failure destination, which would keep whatever nonce or client token the event holds."""

    error: Literal["InvalidJobEvent"] = "InvalidJobEvent"
    message: str


class IgnoredResult(ResultModel):
    ignored: Literal[True] = True
    reason: str
