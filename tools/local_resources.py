"""The template's work queue and job table, made on a local AWS (moto): for `make run`, `make invoke`, the tests
and the fault run. The template tests check that these definitions are the template's."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient

# JobTable's key schema and index in template.yaml.
JOB_TABLE_SCHEMA: dict[str, Any] = {
    "AttributeDefinitions": [
        {"AttributeName": "id", "AttributeType": "S"},
        {"AttributeName": "pending", "AttributeType": "S"},
        {"AttributeName": "lease", "AttributeType": "N"},
    ],
    "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
    "GlobalSecondaryIndexes": [
        {
            "IndexName": "pending",
            "KeySchema": [
                {"AttributeName": "pending", "KeyType": "HASH"},
                {"AttributeName": "lease", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }
    ],
    "BillingMode": "PAY_PER_REQUEST",
}
# WorkQueue's attributes in template.yaml that change how messages are delivered.
WORK_QUEUE_ATTRIBUTES = {
    "FifoQueue": "true",
    "ContentBasedDeduplication": "false",
    "DeduplicationScope": "messageGroup",
    "FifoThroughputLimit": "perMessageGroupId",
}
# The template's redrive: a message is set aside after 5 receives.
MAX_RECEIVE_COUNT = 5


def create_job_table(client: DynamoDBClient, name: str) -> str:
    client.create_table(TableName=name, **JOB_TABLE_SCHEMA)
    client.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"})
    return name


def create_work_queues(
    client: SQSClient, name: str, visibility_timeout_s: int = 30, max_receive_count: int = MAX_RECEIVE_COUNT
) -> tuple[str, str]:
    """The FIFO work queue and its FIFO dead-letter queue; returns their URLs."""
    dlq_url = client.create_queue(QueueName=f"{name}-dlq.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    dlq_arn = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)}
    attributes: dict[Any, str] = {
        **WORK_QUEUE_ATTRIBUTES,
        "VisibilityTimeout": str(visibility_timeout_s),
        "RedrivePolicy": json.dumps(redrive),
    }
    url = client.create_queue(QueueName=f"{name}.fifo", Attributes=attributes)["QueueUrl"]
    return url, dlq_url
