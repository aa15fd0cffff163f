"""The work function's Lambda entry point: SQS batches from the work queue, with partial batch failures.

Each record is one claimed job (a `work.JobMessage`). Powertools' batch processor runs them one by one and
answers `batchItemFailures` with only the records to deliver again: a job there was no time left to start, a
result that could not be reported, or a message that is not a job message (after the queue's maxReceiveCount,
it goes to the dead-letter queue, whose handler fails the job back). A job whose work failed is not one of
them: its failure was reported to CodePipeline.

The jobs not started are made visible again at once (ChangeMessageVisibility to 0), so that another invocation
takes them now rather than after the queue's visibility timeout (six times the function's).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..shared.startup import collector_paused

# The init, with the cyclic garbage collector paused (shared/startup.py).
with collector_paused():
    from aws_lambda_powertools.metrics import MetricUnit
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    from ..shared.adapter import AwsCallError, WorkQueue, open_work_queue, worst_case_call_s
    from ..shared.deadline import Deadline
    from ..shared.observability import debug_on, instrument, logger, metrics
    from ..shared.records import job_message
    from .config import get_worker_settings
    from .runner import JobNotStarted, WorkRunner

    # Releasing the jobs not started is one call, made once; without it they come back later anyway.
    RELEASE_ATTEMPTS = 1

    settings = get_worker_settings()
    default_runner = WorkRunner.from_settings(settings)
    default_queue = (
        open_work_queue(settings.job_queue_url, settings, max_attempts=RELEASE_ATTEMPTS)
        if settings.job_queue_url
        else None
    )
    RELEASE_CALL_S = worst_case_call_s(RELEASE_ATTEMPTS, settings.connect_timeout_s, settings.read_timeout_s)
    processor = BatchProcessor(event_type=EventType.SQS)

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext


def process_batch(
    event: dict[str, Any], deadline: Deadline | None, runner: WorkRunner | None = None, queue: WorkQueue | None = None
) -> dict[str, Any]:
    """Run every job of an SQS event that there is time for; answer the records to deliver again."""
    active = runner or default_runner
    time_limit = active.time_limit_for(deadline)
    not_started: list[SQSRecord] = []
    jobs_seen = 0
    if debug_on():
        logger.debug("batch received", records=len(event.get("Records") or []))

    def record_handler(record: SQSRecord) -> dict[str, Any]:
        nonlocal jobs_seen
        message = job_message(record, "InvalidMessages")
        jobs_seen += 1
        try:
            return active.run(message, deadline, time_limit).to_json()
        except JobNotStarted as exc:
            _not_started(exc, first=jobs_seen == 1, limit=time_limit)
            not_started.append(record)
            raise

    try:
        return dict(process_partial_response(event=event, record_handler=record_handler, processor=processor))
    finally:
        if not_started:
            _release(queue or default_queue, [record.receipt_handle for record in not_started], deadline)


def _not_started(exc: JobNotStarted, *, first: bool, limit: float | None) -> None:
    metrics.add_metric(name="JobsNotStarted", unit=MetricUnit.Count, value=1)
    fields: dict[str, Any] = {
        "job_id": exc.job_id,
        "needed_s": round(exc.needed_s, 1),
        "remaining_s": round(exc.remaining_s, 1),
    }
    if first:
        # Not even the batch's first job fits in the whole invocation: no job ever will, until the settings change.
        logger.error(
            "the function's time cannot hold one job: its time limit plus the time to read its details and "
            "report it. Raise the function's timeout, or lower JOB_TIME_LIMIT_S, WORK_BATCH_SIZE or AWS_MAX_ATTEMPTS",
            extra={**fields, "time_limit_s": limit},
        )
    else:
        logger.info("no time left to start the job: it goes back to the queue", extra=fields)


def _release(queue: WorkQueue | None, receipt_handles: list[str], deadline: Deadline | None) -> None:
    """Make the jobs not started visible again now, if the call fits before the deadline."""
    if queue is None or (deadline is not None and deadline.remaining() < RELEASE_CALL_S):
        return
    try:
        kept = queue.release(receipt_handles)
    except AwsCallError as exc:
        logger.warning(
            "jobs not started were not released: they come back after the visibility timeout", error=exc.code
        )
        return
    if kept:
        logger.warning(
            "some jobs not started were not released: they come back after the visibility timeout", count=kept
        )


@instrument
def lambda_handler(
    event: dict[str, Any], context: LambdaContext, runner: WorkRunner | None = None, queue: WorkQueue | None = None
) -> dict[str, Any]:
    return process_batch(event, Deadline.from_context(context), runner, queue)
