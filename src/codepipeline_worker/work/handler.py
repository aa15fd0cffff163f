"""The work function's Lambda entry point: SQS batches from the work queue, with partial batch failures.

Each record is one claimed job (a `work.JobMessage`). Powertools' batch processor runs them one by one and
answers `batchItemFailures` with only the records to deliver again: a result that could not be reported, or a
message that is not a job message (after the queue's maxReceiveCount, it goes to the dead-letter queue). A job
whose work failed is not one of them: its failure was reported to CodePipeline.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..shared.startup import collector_paused

# The init, with the cyclic garbage collector paused (shared/startup.py).
with collector_paused():
    from aws_lambda_powertools.metrics import MetricUnit
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    from ..shared.deadline import Deadline
    from ..shared.messages import InvalidJobMessage, JobMessage
    from ..shared.observability import instrument, logger, metrics
    from .config import get_worker_settings
    from .runner import WorkRunner

    settings = get_worker_settings()
    default_runner = WorkRunner.from_settings(settings)
    processor = BatchProcessor(event_type=EventType.SQS)

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext


def process_batch(event: dict[str, Any], deadline: float | None, runner: WorkRunner | None = None) -> dict[str, Any]:
    """Run every job of an SQS event; answer the records to deliver again (`batchItemFailures`)."""
    active = runner or default_runner
    logger.debug("batch received", records=len(event.get("Records") or []))

    def record_handler(record: SQSRecord) -> dict[str, Any]:
        try:
            message = JobMessage.from_body(record.body)
        except InvalidJobMessage as exc:
            logger.error("not a job message", message_id=record.message_id, error=str(exc))
            metrics.add_metric(name="InvalidMessages", unit=MetricUnit.Count, value=1)
            raise
        return active.run(message, deadline).to_json()

    return dict(process_partial_response(event=event, record_handler=record_handler, processor=processor))


@instrument
def lambda_handler(event: dict[str, Any], context: LambdaContext, runner: WorkRunner | None = None) -> dict[str, Any]:
    return process_batch(event, Deadline.from_context(context).expires_at, runner)
