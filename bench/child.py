"""One measurement, in a fresh process (run by bench/run.py with the package under test on PYTHONPATH).

child.py cold MODULE EVENT_JSON          import the handler and handle one event
child.py warm MODULE N FIRST_ID          N single-job events through the handler, and N raw SDK calls
child.py batch project|reference|floor JOBS   one scheduled poll of the JOBS queued
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


def report(**figures: float) -> None:
    figures["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
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
    else:
        batch(sys.argv[2], int(sys.argv[3]))


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
        module = __import__("codepipeline_worker.handler" if kind == "project" else "handler", fromlist=["x"])
        started = time.perf_counter()
        cpu = time.process_time()
        result = module.lambda_handler(event, Context())
        acked = result["counts"]["acknowledged"] if kind == "project" else result["acknowledged"]
    report(seconds=time.perf_counter() - started, cpu_seconds=time.process_time() - cpu, acknowledged=acked)


main()
