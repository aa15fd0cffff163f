"""One fault run: jobs arrive in CodePipeline over `arrivals_s`; a share is sent to the acknowledger as direct
events (some in batches, some delivered more than once), the rest is left to the schedule's polls; both functions
run in killable processes under their Lambda simulations until every job has ended, or the time limit."""

from __future__ import annotations

import random
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codepipeline_local import Faults

from .cluster import CLIENT_ID, CUSTOM, PARTNER, Cluster
from .lambdas import AsyncLambda, Invoker, KillRule, RandomKills, Record, SqsEventSource
from .verdict import Verdict, judge, watch_reports

if TYPE_CHECKING:
    from .config import ChaosConfig

SCHEDULED = {"version": "0", "source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}


@dataclass
class Arrivals:
    """What the run sent the acknowledger, per job: how many direct deliveries, batches, scheduled ticks."""

    direct: dict[str, int] = field(default_factory=dict)
    batches: int = 0
    ticks: int = 0
    started_events: int = 0


def kill_rules(config: ChaosConfig) -> list[KillRule]:
    """The kills of this run: random points of each function's invocations. (More rules plug in here.)"""
    return [RandomKills("acknowledger", config.kill_acknowledger), RandomKills("work", config.kill_work)]


def run(config: ChaosConfig, workdir: Path | None = None, *, rules: list[KillRule] | None = None) -> Verdict:
    folder = workdir or Path(tempfile.mkdtemp(prefix="chaos-"))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "runs.jsonl").write_text("")
    record = Record()
    with Cluster(config, folder) as cluster:
        reports = watch_reports(cluster.endpoint)
        cluster.endpoint.set_faults(Faults(throttle=config.throttle, http500=config.http500, seed=config.seed))
        invoker = Invoker(config, record, kill_rules(config) if rules is None else rules)
        acknowledger = AsyncLambda(cluster, config, invoker, record, folder)
        work = SqsEventSource(cluster, config, invoker, record, folder)
        dead_letters = SqsEventSource(cluster, config, invoker, record, folder, dead_letters=True)
        sources = (work, dead_letters)
        arrivals = Arrivals()
        stop = threading.Event()
        ticker = threading.Thread(target=_tick, args=(config, acknowledger, arrivals, stop), daemon=True)
        acknowledger.start()
        for source in sources:
            source.start()
        ticker.start()
        started = time.monotonic()
        try:
            jobs = _arrive(config, cluster, acknowledger, arrivals)
            _settle(config, cluster, acknowledger, sources, time.monotonic())
        finally:
            stop.set()
            ticker.join()
            acknowledger.stop()
            for source in sources:
                source.stop()
        seconds = time.monotonic() - started
        return judge(config, cluster, record, reports, arrivals, jobs, folder, seconds)


def _arrive(config: ChaosConfig, cluster: Cluster, acknowledger: AsyncLambda, arrivals: Arrivals) -> list[str]:
    """Create the jobs over `arrivals_s`; send the direct ones' events (batched, or delivered more than once)."""
    rng = random.Random(config.seed)  # noqa: S311 - fault injection
    behaviours = list(config.behaviours)
    weights = [config.behaviours[b] for b in behaviours]
    store = cluster.endpoint.store
    batch: list[tuple[str, dict[str, Any]]] = []
    jobs: list[str] = []
    start = time.monotonic()
    for n in range(config.jobs):
        time.sleep(max(0.0, start + n * config.arrivals_s / config.jobs - time.monotonic()))
        partner = rng.random() < config.partner_share
        configuration = {"ChaosBehaviour": rng.choices(behaviours, weights)[0]}
        direct = rng.random() < config.direct_share
        nonce = str(rng.randrange(10**9)) if direct else None
        if partner:
            job_id = store.create_job(
                PARTNER,
                configuration=configuration,
                client_id=CLIENT_ID,
                client_token=cluster.client_token,
                dispatched_nonce=nonce,
            )
        else:
            job_id = store.create_job(CUSTOM, configuration=configuration, dispatched_nonce=nonce)
        jobs.append(job_id)
        if nonce is None:
            continue
        event: dict[str, Any] = {"jobId": job_id, "nonce": nonce}
        if partner:  # half carry their nonce and token; the other half only the clientId (the details give a nonce)
            event = (
                {**event, "clientToken": cluster.client_token, "clientId": CLIENT_ID}
                if rng.random() < 0.5
                else {"jobId": job_id, "clientId": CLIENT_ID}
            )
        if rng.random() < config.batch_share:
            batch.append((job_id, event))
            if len(batch) >= rng.randint(2, 5):
                _send_batch(rng, acknowledger, arrivals, batch)
                batch = []
            continue
        deliveries = 1 + (rng.choice([1, 1, 2]) if rng.random() < config.duplicate_share else 0)
        arrivals.direct[job_id] = deliveries
        for delivery in range(deliveries):
            # A second delivery at once (concurrent), soon, or later than the dispatch timeout
            delay = 0.0 if delivery == 0 else rng.choice([0.0, 0.5, config.dispatch_timeout_s + 1.0])
            acknowledger.submit("direct", event, [job_id], delay)
    if batch:
        _send_batch(rng, acknowledger, arrivals, batch)
    return jobs


def _send_batch(
    rng: random.Random, acknowledger: AsyncLambda, arrivals: Arrivals, batch: list[tuple[str, dict[str, Any]]]
) -> None:
    events = [event for _, event in batch]
    if rng.random() < 0.3:  # the batch names one of its jobs twice
        events.append(dict(rng.choice(events)))
    arrivals.batches += 1
    for job_id, _ in batch:
        arrivals.direct[job_id] = arrivals.direct.get(job_id, 0) + 1
    acknowledger.submit("batch", {"jobs": events}, [job_id for job_id, _ in batch])


def _tick(config: ChaosConfig, acknowledger: AsyncLambda, arrivals: Arrivals, stop: threading.Event) -> None:
    """The schedule, and EventBridge's at-least-once delivery of it; now and then an action STARTED event."""
    rng = random.Random(config.seed + 1)  # noqa: S311 - fault injection
    while not stop.wait(config.tick_s):
        arrivals.ticks += 1
        acknowledger.submit("scheduled", SCHEDULED, [])
        if rng.random() < 0.2:  # delivered twice
            acknowledger.submit("scheduled", SCHEDULED, [], rng.uniform(0.0, 0.5))
        if rng.random() < 0.05:  # each polls up to 5 more times over 7.75 s while nothing comes back
            arrivals.started_events += 1
            acknowledger.submit("started", _started_event(), [])


def _started_event() -> dict[str, Any]:
    owner, category, provider, version = CUSTOM.split("/")
    return {
        "version": "0",
        "source": "aws.codepipeline",
        "detail-type": "CodePipeline Action Execution State Change",
        "detail": {
            "pipeline": "chaos",
            "stage": category,
            "action": provider,
            "state": "STARTED",
            "type": {"owner": owner, "category": category, "provider": provider, "version": version},
        },
    }


def _settle(
    config: ChaosConfig,
    cluster: Cluster,
    acknowledger: AsyncLambda,
    sources: tuple[SqsEventSource, ...],
    since: float,
) -> None:
    """Wait until every job has ended and nothing is left to run (on the work queue or its dead-letter queue),
    or the time limit."""
    while time.monotonic() - since < config.time_limit_s:
        time.sleep(1.0)
        states = {job["status"] for job in cluster.endpoint.store.jobs()}
        if (
            states <= {"Succeeded", "Failed"}
            and acknowledger.idle()
            and not any(source.busy() for source in sources)
            and all(_queue_empty(cluster, source.queue_url) for source in sources)
        ):
            return


def _queue_empty(cluster: Cluster, url: str) -> bool:
    attributes = cluster.sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"]) == 0
    )
