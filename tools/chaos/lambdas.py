"""Lambda around the two functions' execution environments: asynchronous invocation for the acknowledger (an
event queue, retries of a failed or killed invocation after a delay, then the failure destination) and the SQS
event source for the work function (receive a batch, invoke, delete what the answer does not name in
`batchItemFailures`; what is not deleted comes back after the visibility timeout, and to the dead-letter queue
after `max_receive_count` receives)."""

from __future__ import annotations

import contextlib
import heapq
import itertools
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from codepipeline_worker.work.consume import as_sqs_event, settled

from .cluster import REGION
from .environment import Environment, Reply

if TYPE_CHECKING:
    from pathlib import Path

    from .cluster import Cluster
    from .config import ChaosConfig


@dataclass
class Invocation:
    """One invocation of one function: what it was given, and how it ended."""

    id: str
    function: str  # acknowledger | work | dead_letter
    kind: str  # direct | batch | scheduled | started | sqs
    event: Any
    jobs: list[str]
    attempt: int = 1
    kill_after_s: float | None = None
    reply: Reply | None = None
    started_at: float = 0.0
    ended_at: float = 0.0


# A plug-in point: decides whether an invocation is killed, and how long into it. Each rule gets a random source
# of its own for the invocation (seeded by the run's seed and the invocation's id) and the invocation.
KillRule = Callable[[random.Random, Invocation], "float | None"]


@dataclass
class RandomKills:
    """Kill a share of one function's invocations at a random point of their usual length."""

    function: str
    share: float
    usual_s: dict[str, float] = field(
        default_factory=lambda: {"direct": 0.06, "batch": 0.25, "scheduled": 0.4, "started": 0.4, "sqs": 0.3}
    )

    def __call__(self, rng: random.Random, invocation: Invocation) -> float | None:
        if invocation.function != self.function or rng.random() >= self.share:
            return None
        return rng.uniform(0.0, self.usual_s.get(invocation.kind, 0.3))


@dataclass
class Record:
    """Everything the run saw, for the verdict. Appended to from many threads (list.append is atomic)."""

    invocations: list[Invocation] = field(default_factory=list)
    failure_destination: list[dict[str, Any]] = field(default_factory=list)
    deliveries: Counter[str] = field(default_factory=Counter)  # SQS messages handed to each function


class Invoker:
    """Invokes environments of one function, each invocation's kill decided by the rules."""

    def __init__(self, config: ChaosConfig, record: Record, rules: list[KillRule]) -> None:
        self._config = config
        self._record = record
        self._rules = rules
        self._ids = itertools.count(1)

    def invoke(self, environment: Environment, invocation: Invocation, remaining_ms: int) -> Reply:
        rng = random.Random(f"{self._config.seed}:{invocation.id}")  # noqa: S311 - fault injection
        delays = [d for rule in self._rules if (d := rule(rng, invocation)) is not None]
        invocation.kill_after_s = min(delays) if delays else None
        invocation.started_at = time.time()
        reply = environment.invoke(invocation.id, invocation.event, remaining_ms, invocation.kill_after_s)
        invocation.ended_at = time.time()
        invocation.reply = reply
        self._record.invocations.append(invocation)
        return reply

    def next_id(self, function: str) -> str:
        return f"{function[0]}{next(self._ids)}"


class AsyncLambda:
    """The acknowledger, invoked asynchronously: events wait in a queue; a failed or killed invocation is retried
    after a delay, `MaximumRetryAttempts` times (the template's 2); then its event goes to the failure
    destination, as Lambda's OnFailure record: the request payload and the function's error."""

    RETRIES = 2

    def __init__(self, cluster: Cluster, config: ChaosConfig, invoker: Invoker, record: Record, logs: Path) -> None:
        self._config = config
        self._invoker = invoker
        self._record = record
        self._queue: list[tuple[float, int, Invocation]] = []
        self._order = itertools.count()
        self._condition = threading.Condition()
        self._in_flight = 0
        self._stopping = False
        self.environments = [
            Environment("acknowledger", cluster.environment("acknowledger"), logs / f"acknowledger-{n}.log")
            for n in range(config.environments)
        ]
        self._threads = [threading.Thread(target=self._serve, args=(e,), daemon=True) for e in self.environments]
        self._random = random.Random(config.seed)  # noqa: S311 - fault injection

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def submit(self, kind: str, event: Any, jobs: list[str], delay_s: float = 0.0) -> None:
        invocation = Invocation(self._invoker.next_id("acknowledger"), "acknowledger", kind, event, jobs)
        self._push(invocation, delay_s)

    def _push(self, invocation: Invocation, delay_s: float) -> None:
        with self._condition:
            heapq.heappush(self._queue, (time.monotonic() + delay_s, next(self._order), invocation))
            self._condition.notify()

    def _serve(self, environment: Environment) -> None:
        while True:
            with self._condition:
                while not self._stopping and (not self._queue or self._queue[0][0] > time.monotonic()):
                    self._condition.wait(
                        timeout=max(0.01, self._queue[0][0] - time.monotonic()) if self._queue else 0.5
                    )
                if self._stopping:
                    return
                _, _, invocation = heapq.heappop(self._queue)
                self._in_flight += 1
            try:
                reply = self._invoker.invoke(environment, invocation, int(self._config.acknowledger_timeout_s * 1000))
                if reply.failed:
                    self._retry(invocation, reply)
            finally:
                with self._condition:
                    self._in_flight -= 1

    def _retry(self, invocation: Invocation, reply: Reply) -> None:
        if invocation.attempt <= self.RETRIES:
            again = Invocation(
                self._invoker.next_id("acknowledger"),
                "acknowledger",
                invocation.kind,
                invocation.event,
                invocation.jobs,
                attempt=invocation.attempt + 1,
            )
            with self._condition:
                delay = self._random.uniform(*self._config.retry_delays_s)
            self._push(again, delay)
            return
        self._record.failure_destination.append(
            {
                "requestContext": {"condition": "RetriesExhausted", "approximateInvokeCount": invocation.attempt},
                "requestPayload": invocation.event,
                "responsePayload": {
                    "errorType": "Killed" if reply.killed else reply.error_type,
                    "errorMessage": "" if reply.killed else reply.error_message,
                },
                "killed": reply.killed,
                "jobs": invocation.jobs,
                "kind": invocation.kind,
            }
        )

    def idle(self) -> bool:
        with self._condition:
            return not self._queue and self._in_flight == 0

    def stop(self) -> None:
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        for thread in self._threads:
            thread.join()
        for environment in self.environments:
            environment.close()


class SqsEventSource:
    """An event source mapping on a FIFO queue: batches of up to 10 messages, one invocation at a time per
    environment, partial batch failures. The work function's on the work queue; with `dead_letters`, the
    dead-letter handler's (one environment) on the work queue's dead-letter queue."""

    # moto's receive (its redrive to the dead-letter queue) is not safe from several threads at once: one
    # receive at a time, whichever queue. Deletes take the same lock: moto's delete rebuilds the queue's message
    # list and drops the message from its set of received ones, unguarded, so a delete racing a receive of the
    # same message (visible again; the delete holds an earlier receive's handle) can leave a deleted message
    # counted as received, and its FIFO group blocked for good. A 500-job run at load average 20 ended with one
    # message counted on the queue that no receive returned.
    _receiving = threading.Lock()

    def __init__(
        self,
        cluster: Cluster,
        config: ChaosConfig,
        invoker: Invoker,
        record: Record,
        logs: Path,
        *,
        dead_letters: bool = False,
    ) -> None:
        self._cluster = cluster
        self._config = config
        self._invoker = invoker
        self._record = record
        self._stopping = threading.Event()
        self._busy = 0
        self._lock = threading.Lock()
        self.function = "dead_letter" if dead_letters else "work"
        self.queue_url = cluster.dlq_url if dead_letters else cluster.queue_url
        self._queue_arn = cluster.dlq_arn if dead_letters else cluster.queue_arn
        self._timeout_s = config.dead_letter_timeout_s if dead_letters else config.work_timeout_s
        count = 1 if dead_letters else config.environments
        self.environments = [
            Environment(self.function, cluster.environment(self.function), logs / f"{self.function}-{n}.log")
            for n in range(count)
        ]
        self._threads = [threading.Thread(target=self._serve, args=(e,), daemon=True) for e in self.environments]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def _serve(self, environment: Environment) -> None:
        while not self._stopping.is_set():
            messages = self._receive()
            if not messages:
                continue
            with self._lock:
                self._busy += 1
            try:
                self._deliver(environment, messages)
            finally:
                with self._lock:
                    self._busy -= 1

    def _receive(self) -> list[Any]:
        """One receive, one at a time (see `_receiving`), not waiting: the lock is not held through a long poll.
        An error is a receive that found nothing; the poller goes on, as Lambda's does."""
        with self._receiving:
            try:
                messages: list[Any] = self._cluster.sqs.receive_message(
                    QueueUrl=self.queue_url,
                    MaxNumberOfMessages=10,
                    WaitTimeSeconds=0,
                    VisibilityTimeout=self._config.visibility_timeout_s,
                    MessageSystemAttributeNames=["All"],
                ).get("Messages", [])
            except ClientError:
                messages = []
        if not messages:
            self._stopping.wait(0.2)
        return messages

    def _deliver(self, environment: Environment, messages: list[Any]) -> None:
        """One invocation on a received batch. What is not deleted comes back; a receipt handle that has expired
        (the message came back meanwhile, to another receive) deletes nothing, as SQS would."""
        event = as_sqs_event(messages, self._queue_arn, REGION)
        jobs = [_job_of(m["Body"]) for m in messages]
        invocation = Invocation(self._invoker.next_id(self.function), self.function, "sqs", event, jobs)
        self._record.deliveries[self.function] += len(messages)
        reply = self._invoker.invoke(environment, invocation, int(self._timeout_s * 1000))
        if reply.failed:  # the whole batch comes back after its visibility timeout
            return
        answer = reply.result if isinstance(reply.result, dict) else {}
        for handle in settled(messages, answer.get("batchItemFailures")):
            with self._receiving, contextlib.suppress(ClientError):
                self._cluster.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=handle)

    def busy(self) -> bool:
        with self._lock:
            return self._busy > 0

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join()
        for environment in self.environments:
            environment.close()


def _job_of(body: str) -> str:
    try:
        return str(json.loads(body).get("jobId", ""))
    except ValueError:
        return ""
