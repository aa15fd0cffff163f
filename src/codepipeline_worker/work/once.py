"""Each job's work runs once: a record per job in the job table (DynamoDB), written before the work runs.

The queue delivers at least once: a FIFO queue drops a second copy of a job's message sent within 5 minutes, but
a copy sent later (the reconciler re-sending a hand-off whose first send did land), a message whose visibility
timeout ended while its batch still ran, or a batch redelivered after a failure, all come back. Before the work
function runs, a record keyed by the job (`work#` and a hash of its type and id) is written INPROGRESS, with an
expiry at the invocation's deadline, on the condition that no live record holds the key; when the work returns,
the record becomes COMPLETED and holds the outcome (already cleared of every secret the runner knows). So a
delivery of the same job:

- after the work ran: gets the stored outcome back, without running anything, and reports it (CodePipeline
  refuses a second report of a job that has ended: nothing changes);
- while the work still runs elsewhere: `WorkInProgress`, and the message comes back later;
- after a run that was killed (the process ended at its timeout): the INPROGRESS record has expired with that
  invocation's deadline, so the work runs again. That is the only case in which a job's work runs twice.

A run that could not start the work (the job's details could not be read, or writing the record left no time for
it) raises: its record is deleted, and the next delivery runs it. Whatever the work function itself does (returns,
raises anything, dies, overruns its time limit) is an outcome, stored and reported: see runner.

This is Powertools Idempotency's protocol, and its record layout (adapter.RunRecords), on the work function's one
botocore session: Powertools' DynamoDB layer imports boto3 at module level, about 40 ms of every cold start
(docs/design.md).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from ..shared.adapter import AwsCallError, RunRecords
from ..shared.observability import logger

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_dynamodb import DynamoDBClient

    from ..shared.messages import JobMessage

KEY_PREFIX = "work"
# How long a job's record outlives its run. Longer than any copy of its message can live: the work queue keeps a
# message 4 days, and the reconciler re-sends a hand-off for at most a day (HANDOFF_RECORD_TTL_S).
RECORD_LIFETIME_S = 7 * 24 * 3600
# Without a deadline (a run outside Lambda that gives none), an INPROGRESS record expires after Lambda's longest
# timeout.
DEFAULT_RUN_TIME_S = 900.0


class WorkInProgress(Exception):
    """The job's work is running in another delivery: this message should come back later."""


class RecordUnavailable(Exception):
    """The job's once-only record could not be read or written; `code` says why (never a value)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class RunOnce:
    """The work side's once-only runs, on the job table."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._records = RunRecords(client, table_name)

    def run(self, message: JobMessage, work: Callable[[], dict[str, Any]], deadline: float | None) -> dict[str, Any]:
        """`work()`'s answer for this job: computed now, or the one stored by an earlier delivery. `deadline` is
        the invocation's (time.monotonic()); the record's in-progress expiry is set to it."""
        key = _key(message)
        remaining_s = DEFAULT_RUN_TIME_S if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            live = self._records.begin(key, RECORD_LIFETIME_S, int((time.time() + remaining_s) * 1000))
        except AwsCallError as exc:
            raise RecordUnavailable(exc.code) from None
        if live is not None and live.status == "COMPLETED":
            return _stored(live.data)
        if live is not None:
            raise WorkInProgress(message.job_id)
        try:
            answer = work()
        except Exception:
            try:
                self._records.forget(key)
            except AwsCallError as exc:  # the record expires with the deadline instead
                logger.warning("once-only record not deleted", job_id=message.job_id, error=exc.code)
            raise
        try:
            self._records.complete(key, json.dumps(answer), RECORD_LIFETIME_S)
        except AwsCallError as exc:
            # The work ran: its answer is reported. A copy delivered after the record's in-progress expiry finds
            # the job ended in CodePipeline (the runner reads its details first) and runs nothing.
            logger.warning("once-only record not completed", job_id=message.job_id, error=exc.code)
        return answer

    def record(self, message: JobMessage, answer: dict[str, Any]) -> None:
        """Store an answer for the job without running it (a job ended elsewhere: its dead letter failed back)."""
        try:
            self._records.complete(_key(message), json.dumps(answer), RECORD_LIFETIME_S)
        except AwsCallError as exc:
            raise RecordUnavailable(exc.code) from None


def _key(message: JobMessage) -> str:
    return f"{KEY_PREFIX}#{message.dedup_id}"


def _stored(data: str | None) -> dict[str, Any]:
    try:
        answer = json.loads(data or "")
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise RecordUnavailable("RecordWithoutAnswer")
    return answer
