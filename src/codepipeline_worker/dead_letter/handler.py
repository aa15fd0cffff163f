"""The dead-letter handler's Lambda entry point: SQS batches from the work queue's dead-letter queue, with
partial batch failures.

Each record is a job message the work queue set aside. Its job is failed back to CodePipeline once (see
`service`); only the records whose failure could not be reported now are answered in `batchItemFailures`, to
be tried again after the dead-letter queue's visibility timeout. A body that is not a job message is logged,
counted (`InvalidDeadLetters`) and dropped: there is no job to fail back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

from ..shared.deadline import Deadline
from ..shared.messages import InvalidJobMessage
from ..shared.observability import instrument
from ..shared.records import job_message
from .config import get_dead_letter_settings
from .service import DeadLetterService

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

settings = get_dead_letter_settings()
default_service = DeadLetterService.from_settings(settings)
processor = BatchProcessor(event_type=EventType.SQS)


def process_batch(
    event: dict[str, Any], deadline: Deadline | None, service: DeadLetterService | None = None
) -> dict[str, Any]:
    """Fail back the job of every dead letter; answer the records to deliver again."""
    active = service or default_service

    def record_handler(record: SQSRecord) -> dict[str, Any] | None:
        try:
            message = job_message(record, "InvalidDeadLetters")
        except InvalidJobMessage:
            return None  # dropped: logged and counted, nothing to fail back
        receives = record.attributes.approximate_receive_count
        return active.fail_back(message, int(receives) if receives else None, deadline).to_json()

    return dict(process_partial_response(event=event, record_handler=record_handler, processor=processor))


@instrument
def lambda_handler(
    event: dict[str, Any], context: LambdaContext, service: DeadLetterService | None = None
) -> dict[str, Any]:
    return process_batch(event, Deadline.from_context(context), service)
