"""Running the work function outside Lambda: one receive becomes one SQS event, and only the records the handler
did not name in `batchItemFailures` are deleted."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from codepipeline_worker.shared import adapter
from codepipeline_worker.shared.adapter import AwsCallError, CodePipelineAdapter, WorkQueue
from codepipeline_worker.shared.messages import JobMessage
from codepipeline_worker.work import Success, consume
from codepipeline_worker.work import handler as worker_handler
from codepipeline_worker.work.consume import BATCH_TIME_S, LocalContext, as_sqs_event, consume_once, settled
from codepipeline_worker.work.runner import WorkRunner
from tests.unit.conftest import QUEUE_URL

if TYPE_CHECKING:
    from tests.unit.conftest import Stubbed, StubbedQueue

pytestmark = pytest.mark.usefixtures("clean_metrics")

JOB = "11111111-abcd-1111-abcd-111111abcdef"
ARN = "arn:aws:sqs:local:000000000000:work"
RECEIVE = {
    "QueueUrl": QUEUE_URL,
    "MaxNumberOfMessages": 10,
    "WaitTimeSeconds": 0,
    "MessageSystemAttributeNames": ["All"],
}


def message(n: int, body: str = "{}") -> dict[str, Any]:
    return {
        "MessageId": f"m-{n}",
        "ReceiptHandle": f"h-{n}",
        "MD5OfBody": f"{n:032d}",
        "Body": body,
        "Attributes": {"ApproximateReceiveCount": "1"},
    }


class FakeHandler:
    """Stands in for the worker's lambda_handler: keeps what it was given, answers the failures it is told to."""

    def __init__(self, *failures: str) -> None:
        self.failures = failures
        self.calls: list[tuple[dict[str, Any], Any]] = []
        self.queues: list[Any] = []

    def __call__(self, event: dict[str, Any], context: Any, queue: Any = None) -> dict[str, Any]:
        self.calls.append((event, context))
        self.queues.append(queue)
        return {"batchItemFailures": [{"itemIdentifier": f} for f in self.failures]}


def test_only_the_records_not_named_as_failures_are_deleted(sqs: StubbedQueue) -> None:
    client, stubber = sqs
    stubber.add_response("receive_message", {"Messages": [message(1), message(2), message(3)]}, RECEIVE)
    stubber.add_response(
        "delete_message_batch",
        {"Successful": [{"Id": "0"}, {"Id": "1"}], "Failed": []},
        {"QueueUrl": QUEUE_URL, "Entries": [{"Id": "0", "ReceiptHandle": "h-1"}, {"Id": "1", "ReceiptHandle": "h-3"}]},
    )
    handler = FakeHandler("m-2")

    counts = consume_once(WorkQueue(client, QUEUE_URL), handler, wait_s=0)

    assert counts == (3, 1)
    [(event, context)] = handler.calls
    assert event == {
        "Records": [
            {
                "messageId": f"m-{n}",
                "receiptHandle": f"h-{n}",
                "body": "{}",
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": f"{n:032d}",
                "eventSource": "aws:sqs",
                "eventSourceARN": ARN,
                "awsRegion": "local",
            }
            for n in (1, 2, 3)
        ]
    }
    assert isinstance(context, LocalContext)


def test_a_message_sqs_did_not_delete_is_counted_for_redelivery(
    sqs: StubbedQueue, capsys: pytest.CaptureFixture[str]
) -> None:
    client, stubber = sqs
    stubber.add_response("receive_message", {"Messages": [message(1), message(2)]}, RECEIVE)
    stubber.add_response(
        "delete_message_batch",
        {"Successful": [{"Id": "0"}], "Failed": [{"Id": "1", "SenderFault": False, "Code": "InternalError"}]},
        {"QueueUrl": QUEUE_URL, "Entries": [{"Id": "0", "ReceiptHandle": "h-1"}, {"Id": "1", "ReceiptHandle": "h-2"}]},
    )

    counts = consume_once(WorkQueue(client, QUEUE_URL), FakeHandler(), wait_s=0)

    assert counts == (2, 1)
    assert "1 message(s) not deleted" in capsys.readouterr().err
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize(
    ("answer", "deleted"),
    [
        ([{"itemIdentifier": "m-2"}], ["h-1", "h-3"]),
        ([], ["h-1", "h-2", "h-3"]),
        (None, ["h-1", "h-2", "h-3"]),
        ("m-2", ["h-1", "h-2", "h-3"]),  # not a list: names nothing
        ([{"itemIdentifier": "m-2"}, "m-3", None], ["h-1", "h-3"]),  # items that are not objects name nothing
    ],
)
def test_what_the_event_source_deletes_is_every_message_the_answer_does_not_name(
    answer: Any, deleted: list[str]
) -> None:
    assert settled([message(1), message(2), message(3)], answer) == deleted  # type: ignore[list-item]


def test_an_empty_receive_calls_nothing_else(sqs: StubbedQueue) -> None:
    client, stubber = sqs
    stubber.add_response("receive_message", {}, RECEIVE)
    handler = FakeHandler()

    assert consume_once(WorkQueue(client, QUEUE_URL), handler, wait_s=0) == (0, 0)
    assert handler.calls == []


def test_when_every_record_failed_nothing_is_deleted(sqs: StubbedQueue) -> None:
    client, stubber = sqs
    stubber.add_response("receive_message", {"Messages": [message(1), message(2)]})
    calls: list[str] = []
    client.meta.events.register("provide-client-params.sqs", lambda model, **_: calls.append(model.name))

    counts = consume_once(WorkQueue(client, QUEUE_URL), FakeHandler("m-1", "m-2"), wait_s=0)

    assert counts == (2, 2)
    assert calls == ["ReceiveMessage"]


def test_a_receive_runs_through_the_worker_handler(codepipeline: Stubbed, sqs: StubbedQueue) -> None:
    client, stubber = codepipeline
    sqs_client, sqs_stubber = sqs
    good = JobMessage(job_id=JOB, job_type="custom").to_body()
    sqs_stubber.add_response("receive_message", {"Messages": [message(1, good), message(2, '{"nonce": "n"}')]})
    stubber.add_response("get_job_details", {"jobDetails": {"id": JOB, "data": {}}}, {"jobId": JOB})
    stubber.add_response("put_job_success_result", {}, {"jobId": JOB})
    sqs_stubber.add_response(
        "delete_message_batch",
        {"Successful": [{"Id": "0"}], "Failed": []},
        {"QueueUrl": QUEUE_URL, "Entries": [{"Id": "0", "ReceiptHandle": "h-1"}]},
    )
    runner = WorkRunner(CodePipelineAdapter(client), None, lambda _job: Success())
    handler = functools.partial(worker_handler.lambda_handler, runner=runner)

    assert consume_once(WorkQueue(sqs_client, QUEUE_URL), handler, wait_s=0) == (2, 1)


def test_a_batch_that_fails_whole_is_left_for_redelivery(
    codepipeline: Stubbed, sqs: StubbedQueue, capsys: pytest.CaptureFixture[str]
) -> None:
    # Every record fails: the handler raises, as Lambda's would, and the messages come back; the loop goes on
    client, _ = codepipeline
    sqs_client, sqs_stubber = sqs
    sqs_stubber.add_response("receive_message", {"Messages": [message(1, "not a job")]})
    runner = WorkRunner(CodePipelineAdapter(client), None, lambda _job: Success())
    handler = functools.partial(worker_handler.lambda_handler, runner=runner)

    assert consume_once(WorkQueue(sqs_client, QUEUE_URL), handler, wait_s=0) == (1, 1)
    assert "the batch failed (BatchProcessingError); its messages will be delivered again" in capsys.readouterr().err


def test_more_than_ten_deletes_go_in_batches_of_ten(sqs: StubbedQueue) -> None:
    client, stubber = sqs
    handles = [f"h-{n}" for n in range(12)]
    entries = [{"Id": str(n), "ReceiptHandle": h} for n, h in enumerate(handles)]
    stubber.add_response(
        "delete_message_batch",
        {"Successful": [{"Id": e["Id"]} for e in entries[:10]], "Failed": []},
        {"QueueUrl": QUEUE_URL, "Entries": entries[:10]},
    )
    stubber.add_response(
        "delete_message_batch",
        {"Successful": [{"Id": e["Id"]} for e in entries[10:]], "Failed": []},
        {"QueueUrl": QUEUE_URL, "Entries": entries[10:]},
    )

    WorkQueue(client, QUEUE_URL).delete(handles)


def test_queue_errors_are_aws_call_errors(sqs: StubbedQueue) -> None:
    client, stubber = sqs
    stubber.add_client_error("receive_message", "QueueDoesNotExist", "no queue named ...")
    stubber.add_client_error("send_message", "InvalidMessageContents", "the body ... was refused")

    queue = WorkQueue(client, QUEUE_URL)
    with pytest.raises(AwsCallError) as received:
        queue.receive(10, 0)
    with pytest.raises(AwsCallError) as sent:
        queue.send("{}", "dedup")

    assert (received.value.operation, received.value.code) == ("ReceiveMessage", "QueueDoesNotExist")
    assert (sent.value.operation, sent.value.code, sent.value.certain) == (
        "SendMessage",
        "InvalidMessageContents",
        True,
    )
    assert sent.value.__context__ is None


def test_send_returns_the_message_id_and_names_the_job_on_a_fifo_queue(sqs: StubbedQueue) -> None:
    client, stubber = sqs
    stubber.add_response(
        "send_message",
        {"MessageId": "m-9"},
        {"QueueUrl": QUEUE_URL, "MessageBody": "{}", "MessageGroupId": "d", "MessageDeduplicationId": "d"},
    )
    standard = QUEUE_URL.removesuffix(".fifo")
    stubber.add_response("send_message", {"MessageId": "m-10"}, {"QueueUrl": standard, "MessageBody": "{}"})

    assert WorkQueue(client, QUEUE_URL).send("{}", "d") == "m-9"
    assert WorkQueue(client, standard).send("{}", "d") == "m-10"  # a standard queue has neither


def test_the_local_context_gives_a_batch_its_time() -> None:
    context = LocalContext()

    assert (BATCH_TIME_S - 1) * 1000 < context.get_remaining_time_in_millis() <= BATCH_TIME_S * 1000
    assert uuid.UUID(context.aws_request_id)
    assert context.function_name == "codepipeline-work-function"


def test_the_event_carries_the_queue_and_region_given() -> None:
    event = as_sqs_event([message(1)], "arn:aws:sqs:eu-west-1:123456789012:q", "eu-west-1")  # type: ignore[list-item]

    assert (event["Records"][0]["eventSourceARN"], event["Records"][0]["awsRegion"]) == (
        "arn:aws:sqs:eu-west-1:123456789012:q",
        "eu-west-1",
    )


def test_the_command_line_runs_one_receive(
    sqs: StubbedQueue, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    client, stubber = sqs
    stubber.add_response("receive_message", {"Messages": [message(1)]}, {**RECEIVE, "WaitTimeSeconds": 20})
    stubber.add_response(
        "delete_message_batch",
        {"Successful": [{"Id": "0"}], "Failed": []},
        {"QueueUrl": QUEUE_URL, "Entries": [{"Id": "0", "ReceiptHandle": "h-1"}]},
    )
    opened: list[str] = []

    def open_queue(url: str, settings: Any, pool: int = 10, long_poll_s: int = 0) -> WorkQueue:
        opened.append(f"{url} (long polls {long_poll_s} s)")
        return WorkQueue(client, url)

    handler = FakeHandler()
    monkeypatch.setattr(adapter, "open_work_queue", open_queue)
    monkeypatch.setattr(worker_handler, "lambda_handler", handler)
    monkeypatch.setenv("JOB_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/from-the-environment")

    assert consume.main(["--queue-url", QUEUE_URL, "--once"]) == 0
    assert opened == [f"{QUEUE_URL} (long polls 20 s)"]  # its answers wait that much longer
    assert "1 job(s) run, 0 left for redelivery" in capsys.readouterr().err
    # The handler releases the jobs it has no time to start to the queue the command line reads
    [queue] = handler.queues
    assert queue.url == QUEUE_URL


def test_the_command_line_reads_the_queue_from_the_environment(
    sqs: StubbedQueue, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    client, stubber = sqs
    stubber.add_response("receive_message", {})
    monkeypatch.setattr(
        adapter, "open_work_queue", lambda url, settings, pool=10, long_poll_s=0: WorkQueue(client, url)
    )
    monkeypatch.setattr(worker_handler, "lambda_handler", FakeHandler())
    monkeypatch.setenv("JOB_QUEUE_URL", QUEUE_URL)

    assert consume.main(["--once"]) == 0
    assert capsys.readouterr().err == ""


def test_without_once_the_command_line_keeps_receiving(
    sqs: StubbedQueue, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    client, _ = sqs
    rounds: list[int] = []

    class Stop(Exception):
        pass

    def receive_once(queue: WorkQueue, handler: Any) -> tuple[int, int]:
        rounds.append(len(rounds))
        if len(rounds) == 3:
            raise Stop
        return (0, 0) if len(rounds) == 1 else (4, 1)

    monkeypatch.setattr(
        adapter, "open_work_queue", lambda url, settings, pool=10, long_poll_s=0: WorkQueue(client, url)
    )
    monkeypatch.setattr(consume, "consume_once", receive_once)

    with pytest.raises(Stop):
        consume.main(["--queue-url", QUEUE_URL])

    assert rounds == [0, 1, 2]
    assert capsys.readouterr().err == "4 job(s) run, 1 left for redelivery\n"


def test_the_command_line_needs_a_queue(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("JOB_QUEUE_URL", raising=False)

    with pytest.raises(SystemExit) as caught:
        consume.main(["--once"])

    assert caught.value.code == 2
    assert "--queue-url or JOB_QUEUE_URL is required" in capsys.readouterr().err


def test_the_module_runs_as_a_program() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "codepipeline_worker.work.consume", "--help"],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).parent,
    )

    assert done.returncode == 0, done.stderr
    assert "--queue-url" in done.stdout
    assert json.dumps(done.stdout)  # plain text, no traceback
    assert "Traceback" not in done.stderr
