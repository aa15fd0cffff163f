"""Each job's work runs once: Powertools Idempotency, on the job table (DynamoDB), keyed by the job.

The queue delivers at least once: a FIFO queue drops a second copy of a job's message sent within 5 minutes, but
a copy sent later (the reconciler re-sending a hand-off whose first send did land), a message whose visibility
timeout ended while its batch still ran, or a batch redelivered after a failure, all come back. Before the work
function runs, a record keyed by the job (`work#` and a hash of its type and id) is written INPROGRESS, with an
expiry at the invocation's deadline; when the work returns, the record becomes COMPLETED and holds the outcome
(already cleared of every secret the runner knows). So a delivery of the same job:

- after the work ran: gets the stored outcome back, without running anything, and reports it (CodePipeline
  refuses a second report of a job that has ended: nothing changes);
- while the work still runs elsewhere: `WorkInProgress`, and the message comes back later;
- after a run that was killed (the process ended at its timeout): the INPROGRESS record has expired with that
  invocation's deadline, so the work runs again. That is the only case in which a job's work runs twice.

A work function that raises has not finished: Powertools deletes the record, and the next delivery runs it again
(work functions' own failures are outcomes, not exceptions: see runner).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyInconsistentStateError,
    IdempotencyPersistenceLayerError,
)

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


class _Remaining:
    """What Powertools reads of a Lambda context: the time left, here until the run's deadline."""

    def __init__(self, deadline: float | None) -> None:
        self._deadline = time.monotonic() + DEFAULT_RUN_TIME_S if deadline is None else deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _run(*, job: dict[str, str], work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    return work()


class RunOnce:
    """The work side's once-only runs, on the job table."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._config = IdempotencyConfig(expires_after_seconds=RECORD_LIFETIME_S, raise_on_no_idempotency_key=True)
        self._store = DynamoDBPersistenceLayer(table_name=table_name, boto3_client=client)
        self._store.configure(self._config, key_prefix=KEY_PREFIX)
        self._once: Callable[..., dict[str, Any]] = idempotent_function(
            _run, data_keyword_argument="job", persistence_store=self._store, config=self._config, key_prefix=KEY_PREFIX
        )

    def run(self, message: JobMessage, work: Callable[[], dict[str, Any]], deadline: float | None) -> dict[str, Any]:
        """`work()`'s answer for this job: computed now, or the one stored by an earlier delivery."""
        self._config.register_lambda_context(_Remaining(deadline))  # type: ignore[arg-type]
        try:
            return self._once(job=_key(message), work=work)
        except IdempotencyAlreadyInProgressError:
            error: Exception = WorkInProgress(message.job_id)
        except IdempotencyInconsistentStateError:
            error = RecordUnavailable("IdempotencyInconsistentState")
        except IdempotencyPersistenceLayerError as exc:
            error = RecordUnavailable(_code(exc))
        raise error  # outside the except block: Powertools' exceptions quote the SDK's

    def record(self, message: JobMessage, answer: dict[str, Any]) -> None:
        """Store an answer for the job without running it (a job ended elsewhere: its dead letter failed back)."""
        try:
            self._store.save_success(data=_key(message), result=answer)
        except Exception as exc:  # noqa: BLE001 - any SDK failure: reported by its type only
            error = RecordUnavailable(type(exc).__name__)
        else:
            return
        raise error


def _key(message: JobMessage) -> dict[str, str]:
    return {"jobType": message.job_type, "jobId": message.job_id}


def _code(exc: IdempotencyPersistenceLayerError) -> str:
    """The SDK error behind a persistence failure: its code or its type, never its message."""
    cause = exc.__cause__
    response = getattr(cause, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code") or "UnknownError")
    return type(cause).__name__ if cause is not None else "IdempotencyPersistenceLayerError"
