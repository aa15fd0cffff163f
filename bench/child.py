"""One measurement, in a fresh process: bench/run.py runs it with the package under test first on PYTHONPATH and
the function's environment as template.yaml gives it. It reports one `RESULT {json}` line on stderr.

child.py cold MODULE EVENT_JSON     import the handler and handle one event: init and first invocation
child.py warm N ROUND               N single-job events through the acknowledger, interleaved with the raw calls
                                    (acknowledge_job, and send_message when JOB_QUEUE_URL is set)
child.py work N ROUND               N one-message SQS events through the work function, interleaved with the raw
                                    calls (the once-only record's put_item, get_job_details, update_item,
                                    put_job_success_result)
child.py batch project|reference|floor JOBS   one scheduled poll of JOBS jobs, after an untimed poll of one

The warm modes empty the local endpoint every ROUND events (untimed), so that no call's cost grows with the jobs
it holds.
"""

import importlib.util
import json
import os
import resource
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_codepipeline import CodePipelineClient
    from mypy_boto3_codepipeline.type_defs import ActionTypeIdTypeDef

START = time.perf_counter()
NONCE = "1"
WARM_UP_EVENTS = 10


class Context:
    """Lambda's context object: the template's timeout, counting down from the invocation's start."""

    function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "bench")
    function_version = "$LATEST"
    memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
    invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
    aws_request_id = "00000000-0000-0000-0000-000000000000"

    def __init__(self) -> None:
        self._deadline = time.monotonic() + int(os.environ["AWS_LAMBDA_FUNCTION_TIMEOUT"])

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


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


def handler(module: str) -> Callable[..., Any]:
    function: Callable[..., Any] = __import__(module, fromlist=["lambda_handler"]).lambda_handler
    return function


def main() -> None:
    mode = sys.argv[1]
    if mode == "cold":
        handler(sys.argv[2])(json.loads(sys.argv[3]), Context())
        report(seconds=time.perf_counter() - START, cpu_seconds=time.process_time())
    elif mode == "warm":
        warm(int(sys.argv[2]), int(sys.argv[3]))
    elif mode == "work":
        work(int(sys.argv[2]), int(sys.argv[3]))
    else:
        batch(sys.argv[2], int(sys.argv[3]))


def fresh_rounds(count: int, size: int, jobs_per_event: int) -> Iterator[list[str]]:
    """Rounds of up to `size` events: before each, the endpoint is emptied and the round's jobs created,
    dispatched with a known nonce. Yields the round's job ids, `jobs_per_event` per event."""
    control = control_client()
    action = os.environ["BENCH_ACTION_TYPE"]
    for start in range(0, count, size):
        control.reset()
        ids = [job_id(n) for n in range(jobs_per_event * min(size, count - start))]
        for one in ids:
            control.create_jobs(action, jobId=one, dispatchedNonce=NONCE)
        yield ids


def raw_claim(pool: int = 10) -> tuple["CodePipelineClient", Callable[..., None]]:
    """What a bare handler does for one job: acknowledge it, and put it on the work queue when there is one; with
    boto3's clients, their connection pools of `pool`."""
    import boto3
    from botocore.config import Config

    config = Config(max_pool_connections=pool)
    client = boto3.client("codepipeline", config=config)
    queue = os.environ.get("JOB_QUEUE_URL")
    sqs = boto3.client("sqs", config=config) if queue else None

    def claim(job: str, nonce: str = NONCE) -> None:
        client.acknowledge_job(jobId=job, nonce=nonce)
        if sqs is not None and queue is not None:
            sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"jobId": job}))

    return client, claim


def raw_sqs(pool: int) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client("sqs", config=Config(max_pool_connections=pool))


class RawRecords:
    """The job table's calls of the worker's hand-off, made by hand: BatchWriteItem of a poll's records (the same
    attributes), BatchWriteItem of their deletions, and the Query for stale records."""

    def __init__(self, pool: int) -> None:
        import boto3
        from botocore.config import Config

        self._client = boto3.client("dynamodb", config=Config(max_pool_connections=pool))
        self._table = os.environ["JOB_TABLE_NAME"]

    def write(self, jobs: list[Any]) -> None:
        lease = str(int(time.time() * 1000) + 60_000)
        expiration = str(int(time.time()) + 86_400)
        items = [
            {
                "id": {"S": f"handoff#custom#{job['id']}#{uuid.uuid4().hex}"},  # the product's key: one per record
                "pending": {"S": "handoff#pending"},
                "lease": {"N": lease},
                "state": {"S": "claiming"},
                "jobId": {"S": job["id"]},
                "jobType": {"S": "custom"},
                "message": {"S": json.dumps({"version": 1, "jobId": job["id"], "jobType": "custom"})},
                "expiration": {"N": expiration},
                "nonce": {"S": job["nonce"]},
            }
            for job in jobs
        ]
        if items:
            self._client.batch_write_item(RequestItems={self._table: [{"PutRequest": {"Item": i}} for i in items]})

    def delete(self, keys: list[str]) -> None:
        requests = [{"DeleteRequest": {"Key": {"id": {"S": key}}}} for key in keys]
        self._client.batch_write_item(RequestItems={self._table: requests})  # type: ignore[dict-item]

    def stale(self) -> None:
        self._client.query(
            TableName=self._table,
            IndexName="pending",
            KeyConditionExpression="#pending = :pending AND #lease < :now",
            ExpressionAttributeNames={"#pending": "pending", "#lease": "lease"},
            ExpressionAttributeValues={
                ":pending": {"S": "handoff#pending"},
                ":now": {"N": str(int(time.time() * 1000))},
            },
            Limit=25,
        )


def alternate(
    count: int,
    size: int,
    handled: Callable[[str], None],
    by_hand: Callable[[str], None],
    prepare: Callable[[list[str]], None] | None = None,
) -> None:
    """`count` jobs through the handler, each followed by another job through the same calls made by hand; the
    first WARM_UP_EVENTS of each are not timed (a process's first calls open connections and build caches).

    Wall and CPU time (this process's, and so the calls' own threads') of each side, summed per round of `size`
    events; the ratio reported is the median of the rounds' ratios, so that a burst of load on the shared machine
    moves a round or two, not the figure."""
    handler_s = raw_s = 0.0
    rounds: list[tuple[float, float, float, float]] = []
    done = 0
    clock, cpu_clock = time.perf_counter, time.process_time
    for ids in fresh_rounds(WARM_UP_EVENTS + count, size, 2):
        if prepare is not None:
            prepare(ids)
        wall = [0.0, 0.0]
        cpu = [0.0, 0.0]
        for i in range(0, len(ids), 2):
            started, cpu_started = clock(), cpu_clock()
            handled(ids[i])
            between, cpu_between = clock(), cpu_clock()
            by_hand(ids[i + 1])
            ended, cpu_ended = clock(), cpu_clock()
            if done >= WARM_UP_EVENTS:
                wall[0] += between - started
                wall[1] += ended - between
                cpu[0] += cpu_between - cpu_started
                cpu[1] += cpu_ended - cpu_between
            done += 1
        if wall[1] > 0:
            rounds.append((wall[0], wall[1], cpu[0], cpu[1]))
        handler_s += wall[0]
        raw_s += wall[1]
    report(
        handler_per_event=handler_s / count,
        raw_per_call=raw_s / count,
        ratio=statistics.median(r[0] / r[1] for r in rounds),
        cpu_ratio=statistics.median(r[2] / r[3] for r in rounds if r[3] > 0),
        rounds=len(rounds),
    )


def warm(count: int, size: int) -> None:
    """The acknowledger's Lambda entry on single-job events, against the same calls made by hand. The raw
    clients are made before the worker is imported: importing Powertools registers its User-Agent hook on every
    botocore session made after, which a bare handler's clients would not have."""
    raw = raw_claim()[1]
    lambda_handler = handler("codepipeline_worker.acknowledger.handler")
    expected = {"outcome": "acknowledged", "handoff": "queued" if os.environ.get("JOB_QUEUE_URL") else None}

    def handled(job: str) -> None:
        result = lambda_handler({"jobId": job, "nonce": NONCE}, Context())
        assert {key: result.get(key) for key in expected} == expected, result

    alternate(count, size, handled, raw)


def work(count: int, size: int) -> None:
    """One job through the work function's Lambda entry (its once-only record written, details fetched, result
    reported, record completed), against the same four calls made by hand, as a bare handler that runs each job
    once would make them (Powertools Idempotency's conditional PutItem, then UpdateItem). The jobs are claimed
    first, untimed."""
    import boto3

    client = boto3.client("codepipeline")  # before the worker's import: see `warm`
    table = boto3.client("dynamodb")
    lambda_handler = handler("codepipeline_worker.work.handler")

    from codepipeline_worker.shared.messages import JobMessage

    table_name = os.environ["JOB_TABLE_NAME"]

    def claim_all(ids: list[str]) -> None:
        for one in ids:
            client.acknowledge_job(jobId=one, nonce=NONCE)

    def handled(job: str) -> None:
        body = JobMessage(job_id=job, job_type="custom").to_body()
        record = {"messageId": job, "receiptHandle": "r", "body": body, "eventSource": "aws:sqs"}
        answer = lambda_handler({"Records": [{**record, "attributes": {}, "messageAttributes": {}}]}, Context())
        assert answer == {"batchItemFailures": []}, answer

    def by_hand(job: str) -> None:
        key = {"id": {"S": f"work#{job}"}}
        table.put_item(
            TableName=table_name,
            Item={**key, "status": {"S": "INPROGRESS"}, "expiration": {"N": str(int(time.time()) + 3600)}},
            ConditionExpression="attribute_not_exists(#id) OR #expiry < :now",
            ExpressionAttributeNames={"#id": "id", "#expiry": "expiration"},
            ExpressionAttributeValues={":now": {"N": str(int(time.time()))}},
        )
        client.get_job_details(jobId=job)
        table.update_item(
            TableName=table_name,
            Key=key,
            UpdateExpression="SET #data = :data, #status = :status",
            ExpressionAttributeNames={"#data": "data", "#status": "status"},
            ExpressionAttributeValues={":data": {"S": "{}"}, ":status": {"S": "COMPLETED"}},
        )
        client.put_job_success_result(jobId=job, executionDetails={"summary": f"job {job} done"})

    alternate(count, size, handled, by_hand, claim_all)


class RawBatches:
    """A poll's claimed jobs gathered into SendMessageBatch calls of 10, as the worker sends them: the thread whose
    claim fills a batch, or ends the poll's last claim, sends it."""

    def __init__(self, sqs: Any, queue: str, claims: int) -> None:
        self._sqs, self._queue, self._open = sqs, queue, claims
        self._ready: list[str] = []
        self._lock = threading.Lock()

    def claimed(self, job: str) -> None:
        due = []
        with self._lock:
            self._open -= 1
            self._ready.append(job)
            if len(self._ready) == 10 or self._open == 0:
                due, self._ready = self._ready, []
        if due:
            entries = [{"Id": str(n), "MessageBody": json.dumps({"jobId": one})} for n, one in enumerate(due)]
            self._sqs.send_message_batch(QueueUrl=self._queue, Entries=entries)


def batch(kind: str, expected: int) -> None:
    """One scheduled poll of `expected` jobs, timed, in a warm process: each side has first handled one poll of
    one job, untimed, as an execution environment that has run before has (its clients made, its connections
    open, what its poll path imports or builds on first use done). The side: this worker's handler; the
    reference's serial loop; or the floor (`floor_poll`)."""
    if kind == "floor":
        one_poll = floor_poll()
    else:
        lambda_handler = handler("codepipeline_worker.acknowledger.handler" if kind == "project" else "handler")
        event = {"source": "aws.events", "detail-type": "Scheduled Event"}

        def one_poll() -> int:
            result = lambda_handler(event, Context())
            return int(result["counts"]["acknowledged"] if kind == "project" else result["acknowledged"])

    control, action = control_client(), os.environ["BENCH_ACTION_TYPE"]
    control.create_jobs(action, 1)
    assert one_poll() == 1
    control.create_jobs(action, expected)
    cpu, started = time.process_time(), time.perf_counter()
    acked = one_poll()
    report(seconds=time.perf_counter() - started, cpu_seconds=time.process_time() - cpu, acknowledged=acked)


def floor_poll() -> Callable[[], int]:
    """The floor: the raw SDK with the worker's settings and nothing else (polls of MAX_BATCH_SIZE, the next as
    soon as one comes back full; each job's calls submitted at once to ACK_CONCURRENCY threads), so that the
    ratio is the worker's own cost. With a work queue, it makes the calls the worker's exactly-once hand-off
    makes: the look for stale records beside the polls, each poll's records written before its jobs' claims, the
    claimed jobs' messages sent in SendMessageBatch calls of 10, and the records deleted after. Returns one
    scheduled poll, which returns the jobs it acknowledged."""
    from concurrent.futures import Future, ThreadPoolExecutor

    size, workers = int(os.environ["MAX_BATCH_SIZE"]), int(os.environ["ACK_CONCURRENCY"])
    client, claim = raw_claim(workers)
    records = RawRecords(workers) if os.environ.get("JOB_QUEUE_URL") else None
    sqs = raw_sqs(workers) if records else None
    owner, category, provider, version = os.environ["BENCH_ACTION_TYPE"].split("/")
    action: ActionTypeIdTypeDef = {
        "owner": owner,  # type: ignore[typeddict-item]
        "category": category,  # type: ignore[typeddict-item]
        "provider": provider,
        "version": version,
    }

    def one_poll() -> int:
        with ThreadPoolExecutor(workers) as pool:
            claims: list[Future[None]] = []
            recording: list[Future[list[Future[None]]]] = []
            looked = pool.submit(records.stale) if records else None

            def claim_into(batches: RawBatches, job: dict[str, str]) -> None:
                client.acknowledge_job(jobId=job["id"], nonce=job["nonce"])
                batches.claimed(job["id"])

            def record_then_claim(jobs: list[Any]) -> list[Future[None]]:
                assert records is not None
                records.write(jobs)
                batches = RawBatches(sqs, os.environ["JOB_QUEUE_URL"], len(jobs))
                return [pool.submit(claim_into, batches, job) for job in jobs]

            while True:
                jobs = client.poll_for_jobs(actionTypeId=action, maxBatchSize=size)["jobs"]
                if records:
                    recording.append(pool.submit(record_then_claim, jobs))
                else:
                    claims += [pool.submit(claim, job["id"], job["nonce"]) for job in jobs]
                if len(jobs) < size:
                    break
            for written in recording:
                claims += written.result()
            for done in claims:
                done.result()
            if records:
                assert looked is not None
                looked.result()
                ids = [f"handoff#custom#{n}#{uuid.uuid4().hex}" for n in range(len(claims))]
                for deleted in [pool.submit(records.delete, ids[i : i + 25]) for i in range(0, len(ids), 25)]:
                    deleted.result()
        return len(claims)

    return one_poll


def control_client() -> Any:
    """The local endpoint's control client (tools/codepipeline_local/control.py, loaded by path: the built
    package under test is this process's path, not the tools)."""
    spec = importlib.util.spec_from_file_location("control", os.environ["BENCH_CONTROL_MODULE"])
    assert spec is not None
    assert spec.loader is not None
    control_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(control_module)
    return control_module.ControlClient(os.environ["AWS_ENDPOINT_URL_CODEPIPELINE"])


if __name__ == "__main__":
    main()
