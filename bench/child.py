"""One measurement, in a fresh process (run by bench/run.py with the package under test on PYTHONPATH).

child.py cold MODULE EVENT_JSON          import the handler and handle one event
child.py warm MODULE N FIRST_ID          N single-job events through the handler, and N raw SDK calls
child.py batch project|reference|floor JOBS   one scheduled poll of the JOBS queued
child.py handoff N FIRST    N single-job events with JOB_QUEUE_URL set, and N raw acknowledge + send pairs
child.py work N FIRST       N one-message SQS events through the work function, and N raw details + result pairs
"""

import json
import resource
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_codepipeline.type_defs import ActionTypeIdTypeDef

START = time.perf_counter()


class Context:
    function_name = "bench"
    function_version = "$LATEST"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    aws_request_id = "00000000-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


def job_id(n: int) -> str:
    return f"{n:08x}-0000-4000-8000-000000000000"


def peak_rss_mb() -> float:
    """This process's own peak resident memory. ru_maxrss is not it on Linux: it keeps the parent's high-water
    mark across fork and exec, so a large bench parent would show in every child."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def report(**figures: float) -> None:
    figures["max_rss_mb"] = peak_rss_mb()
    sys.stderr.write("RESULT " + json.dumps(figures) + "\n")


def main() -> None:
    mode = sys.argv[1]
    if mode == "cold":
        module = __import__(sys.argv[2], fromlist=["lambda_handler"])
        module.lambda_handler(json.loads(sys.argv[3]), Context())
        report(seconds=time.perf_counter() - START)
    elif mode == "warm":
        import boto3

        module = __import__(sys.argv[2], fromlist=["lambda_handler"])
        count, first = int(sys.argv[3]), int(sys.argv[4])
        client = boto3.client("codepipeline")
        handler_s = raw_s = 0.0
        for i in range(count):  # interleaved, so that drift on a noisy machine hits both alike
            started = time.perf_counter()
            module.lambda_handler({"jobId": job_id(first + 2 * i), "nonce": "1"}, Context())
            handler_s += time.perf_counter() - started
            started = time.perf_counter()
            client.acknowledge_job(jobId=job_id(first + 2 * i + 1), nonce="1")
            raw_s += time.perf_counter() - started
        report(handler_per_event=handler_s / count, raw_per_call=raw_s / count)
    elif mode == "handoff":
        handoff(int(sys.argv[2]), int(sys.argv[3]))
    elif mode == "work":
        work(int(sys.argv[2]), int(sys.argv[3]))
    else:
        batch(sys.argv[2], int(sys.argv[3]))


def handoff(count: int, first: int) -> None:
    """Claim and hand off, against what the same two calls cost made by hand."""
    import os

    import boto3

    from codepipeline_worker.acknowledger import handler

    client, sqs = boto3.client("codepipeline"), boto3.client("sqs")
    queue = os.environ["JOB_QUEUE_URL"]
    handler_s = raw_s = 0.0
    for i in range(count):
        started = time.perf_counter()
        result = handler.lambda_handler({"jobId": job_id(first + 2 * i), "nonce": "1"}, Context())
        handler_s += time.perf_counter() - started
        assert result["handoff"] == "queued", result
        started = time.perf_counter()
        client.acknowledge_job(jobId=job_id(first + 2 * i + 1), nonce="1")
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"jobId": job_id(first + 2 * i + 1)}))
        raw_s += time.perf_counter() - started
    report(handler_per_event=handler_s / count, raw_per_call=raw_s / count)


def work(count: int, first: int) -> None:
    """One job through the work function's Lambda entry (details fetched, result reported), against the same
    two calls made by hand. The jobs are claimed first, untimed."""
    import boto3

    from codepipeline_worker.shared.messages import JobMessage
    from codepipeline_worker.work import handler as worker_handler

    client = boto3.client("codepipeline")
    for n in range(first, first + 2 * count):
        client.acknowledge_job(jobId=job_id(n), nonce="1")
    handler_s = raw_s = 0.0
    for i in range(count):
        body = JobMessage(job_id=job_id(first + 2 * i), job_type="custom").to_body()
        record = {"messageId": str(i), "receiptHandle": "r", "body": body, "attributes": {}, "messageAttributes": {}}
        started = time.perf_counter()
        answer = worker_handler.lambda_handler({"Records": [{**record, "eventSource": "aws:sqs"}]}, Context())
        handler_s += time.perf_counter() - started
        assert answer == {"batchItemFailures": []}, answer
        other = job_id(first + 2 * i + 1)
        started = time.perf_counter()
        client.get_job_details(jobId=other)
        client.put_job_success_result(jobId=other, executionDetails={"summary": f"job {other} done"})
        raw_s += time.perf_counter() - started
    report(handler_per_event=handler_s / count, raw_per_call=raw_s / count)


def batch(kind: str, expected: int) -> None:
    from concurrent.futures import ThreadPoolExecutor

    import boto3
    from botocore.config import Config

    event = {"source": "aws.events", "detail-type": "Scheduled Event"}
    cpu = time.process_time()
    started = time.perf_counter()
    if kind == "floor":  # one raw poll (per 100 jobs), then every acknowledgement in flight at once
        client = boto3.client("codepipeline", config=Config(max_pool_connections=1000))
        action: ActionTypeIdTypeDef = {"owner": "Custom", "category": "Build", "provider": "MyTool", "version": "1"}
        acked = 0
        while acked < expected:
            jobs = client.poll_for_jobs(actionTypeId=action, maxBatchSize=100)["jobs"]
            with ThreadPoolExecutor(len(jobs)) as pool:
                list(pool.map(lambda j: client.acknowledge_job(jobId=j["id"], nonce=j["nonce"]), jobs))
            acked += len(jobs)
    else:
        module = __import__(
            "codepipeline_worker.acknowledger.handler" if kind == "project" else "handler", fromlist=["x"]
        )
        started = time.perf_counter()
        cpu = time.process_time()
        result = module.lambda_handler(event, Context())
        acked = result["counts"]["acknowledged"] if kind == "project" else result["acknowledged"]
    report(seconds=time.perf_counter() - started, cpu_seconds=time.process_time() - cpu, acknowledged=acked)


main()
