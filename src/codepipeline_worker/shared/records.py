"""The job message an SQS record carries, for the functions that read the work queue and its dead letters."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_lambda_powertools.metrics import MetricUnit

from .messages import InvalidJobMessage, JobMessage
from .observability import logger, metrics

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord


def job_message(record: SQSRecord, metric: str) -> JobMessage:
    """The record's job message; a body that is not one is logged (the rule it breaks, never its values),
    counted in `metric`, and raised as InvalidJobMessage."""
    try:
        return JobMessage.from_body(record.body)
    except InvalidJobMessage as exc:
        logger.error("not a job message", message_id=record.message_id, error=str(exc))
        metrics.add_metric(name=metric, unit=MetricUnit.Count, value=1)
        raise
