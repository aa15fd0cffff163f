"""What the acknowledger returns for a batch or a poll: each job's result with their counts, each action type's
polls and the reconciler's work; and for an event it ignores. None of them ever carries a nonce or a token.

Imported at the first such event: a direct job's execution environment never defines these models.
"""

from __future__ import annotations

from typing import Literal

from ..shared.models import ResultModel
from .results import Handoff, JobResult, Outcome


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


class IgnoredResult(ResultModel):
    ignored: Literal[True] = True
    reason: str
