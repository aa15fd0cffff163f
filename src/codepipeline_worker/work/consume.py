"""Run the work function outside Lambda: in a container, or on a laptop against a local queue.

    JOB_QUEUE_URL=... JOB_TABLE_NAME=... WORK_FUNCTION=mypackage.mymodule:run python -m codepipeline_worker.work.consume

Each receive is handled exactly as Lambda's SQS event source would: the messages become one SQS event, the
worker's `process_batch` runs it, the records it did not report as failures are deleted, and the others come
back after the queue's visibility timeout (the jobs it had no time to start, at once).
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_sqs.type_defs import MessageTypeDef

    from ..shared.adapter import WorkQueue

RECEIVE_WAIT_S = 20
MAX_MESSAGES = 10
# How long one batch may run, as a Lambda function's timeout would bound it.
BATCH_TIME_S = 300.0


def as_sqs_event(messages: list[MessageTypeDef], queue_arn: str, region: str) -> dict[str, Any]:
    """Received messages in the shape of Lambda's SQS event."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


class LocalContext:
    """The parts of Lambda's context a handler reads, outside Lambda: a name and a time budget (by default
    BATCH_TIME_S, for the work function's batch)."""

    function_version = "$LATEST"
    memory_limit_in_mb = 0

    def __init__(self, function_name: str = "codepipeline-work-function", budget_s: float = BATCH_TIME_S) -> None:
        self.function_name = function_name
        self.invoked_function_arn = f"arn:aws:lambda:local:000000000000:function:{function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self._deadline = time.monotonic() + budget_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def settled(messages: list[MessageTypeDef], batch_item_failures: Any) -> list[str]:
    """The receipt handles Lambda's SQS event source deletes after an invocation: every message the answer's
    `batchItemFailures` does not name (an answer of another shape names none)."""
    items = batch_item_failures if isinstance(batch_item_failures, list) else []
    failed = {item.get("itemIdentifier") for item in items if isinstance(item, dict)}
    return [m["ReceiptHandle"] for m in messages if m["MessageId"] not in failed]


def consume_once(
    queue: WorkQueue,
    handler: Callable[[dict[str, Any], Any], dict[str, Any]],
    *,
    wait_s: int = RECEIVE_WAIT_S,
    queue_arn: str = "arn:aws:sqs:local:000000000000:work",
    region: str = "local",
) -> tuple[int, int]:
    """One receive; the messages run through `handler` (the worker's `lambda_handler`) as one SQS event; the
    ones it did not name in `batchItemFailures` are deleted. Returns (received, left for redelivery).
    A handler that raises (Powertools raises when every record of a batch failed) leaves the whole batch for
    redelivery, as Lambda's event source does after a failed invocation."""
    messages = queue.receive(MAX_MESSAGES, wait_s)
    if not messages:
        return 0, 0
    try:
        answer = handler(as_sqs_event(messages, queue_arn, region), LocalContext())
    except Exception as exc:  # noqa: BLE001 - the loop goes on; only the type is shown: a message may quote anything
        print(f"the batch failed ({type(exc).__name__}); its messages will be delivered again", file=sys.stderr)
        return len(messages), len(messages)
    done = settled(messages, answer.get("batchItemFailures"))
    not_deleted = queue.delete(done) if done else 0
    if not_deleted:
        print(f"{not_deleted} message(s) not deleted: they will be delivered again", file=sys.stderr)
    return len(messages), len(messages) - len(done) + not_deleted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m codepipeline_worker.work.consume", description=__doc__)
    parser.add_argument("--queue-url", help="the work queue (default: JOB_QUEUE_URL)")
    parser.add_argument("--once", action="store_true", help="one receive, then exit")
    args = parser.parse_args(argv)

    import os  # noqa: PLC0415 - the CLI's own needs

    from ..shared.adapter import AwsCallError, configured_region, open_work_queue  # noqa: PLC0415 - once args are read
    from ..shared.errors import ConfigurationError  # noqa: PLC0415

    queue_url = args.queue_url or os.environ.get("JOB_QUEUE_URL")
    if not queue_url:
        parser.error("--queue-url or JOB_QUEUE_URL is required")
    if configured_region() is None:
        parser.error("no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION), or a region in your AWS profile")
    try:
        from .config import get_worker_settings  # noqa: PLC0415
        from .handler import lambda_handler  # noqa: PLC0415 - its cold start: settings, your work function
    except ConfigurationError as exc:
        parser.exit(2, f"{parser.prog}: {exc}\n")
    queue = open_work_queue(queue_url, get_worker_settings(), long_poll_s=RECEIVE_WAIT_S)
    handler = functools.partial(lambda_handler, queue=queue)  # releases the jobs it has no time to start
    while True:
        try:
            received, failed = consume_once(queue, handler)
        except AwsCallError as exc:  # the queue itself: credentials, permissions, a queue that does not exist
            parser.exit(1, f"{parser.prog}: {exc}\n")
        if received:
            print(f"{received} job(s) run, {failed} left for redelivery", file=sys.stderr)
        if args.once:
            return 0


if __name__ == "__main__":
    sys.exit(main())
