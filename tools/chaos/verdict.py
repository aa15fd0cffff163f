"""The verdict of a fault run, per job, from what CodePipeline (the endpoint), the queues, the job table and the
runs recorded; and the counts `make chaos` prints.

Each job (follow-up jobs of continuations included) must:
- end Succeeded or Failed in CodePipeline: none left InProgress with nothing queued;
- have its result accepted at most once (a later report is refused by CodePipeline, and counted);
- have its work run more than once only when a kill interrupted an earlier run: every run after the first is
  matched by a run whose invocation was killed;
- never have its work started after it ended;
- never run at all if it was failed back (the queue certainly refused it);
- end as its work says: a job whose work hangs fails at its time limit, one whose work raises SystemExit fails
  saying so (or at its time limit, on a loaded machine), one whose work stalls its invocation into the
  function's timeout (every time) is failed back by the dead-letter handler (or fails at its time limit); any
  job may also be failed back by the dead-letter handler when its message shared five killed invocations;
- if its message reached the dead-letter queue, have ended: failed back by the dead-letter handler once, or
  ended before (its message can share five killed invocations after its report); and leave no dead letter.
And nothing the endpoint handed out (nonces, client tokens, artifact credentials) appears in any log, result,
queue message, once-only record or failure record, except in the failure record of a job event whose every
delivery was killed: Lambda keeps the killed event's payload (documented in docs/design.md).

`CHECKS` is a plug-in point: a function of the run's facts that returns the violations it finds.
"""

from __future__ import annotations

import json
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore import xform_name

from .trail import violated_jobs, write_trails

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from codepipeline_local import LocalCodePipeline

    from .cluster import Cluster
    from .config import ChaosConfig
    from .lambdas import Record
    from .run import Arrivals

ENDED = {"Succeeded", "Failed"}
_REPORTS = (
    "PutJobSuccessResult",
    "PutJobFailureResult",
    "PutThirdPartyJobSuccessResult",
    "PutThirdPartyJobFailureResult",
)


@dataclass
class Reports:
    """Every report the endpoint was asked for, per job: taken, or refused (the job had ended)."""

    attempts: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


def watch_reports(endpoint: LocalCodePipeline) -> Reports:
    """Count the result reports the endpoint answers, per job (its store's methods, wrapped)."""
    reports = Reports()
    store = endpoint.store
    for operation in _REPORTS:
        method = xform_name(operation)
        answer = getattr(store, method)

        def counted(params: dict[str, Any], answer: Any = answer) -> Any:
            job_id = str(params.get("jobId"))
            with reports.lock:
                reports.attempts[job_id] += 1
            try:
                return answer(params)
            except Exception:
                with reports.lock:
                    reports.refused[job_id] += 1
                raise

        setattr(store, method, counted)
    return reports


@dataclass
class Facts:
    """What the run recorded, gathered once for the checks."""

    config: ChaosConfig
    jobs: dict[str, dict[str, Any]]  # the endpoint's summary of each job, follow-ups included
    arrived: list[str]
    runs: dict[str, list[dict[str, Any]]]  # each job's run markers, in order
    killed: set[str]  # invocations killed before they answered
    record: Record
    reports: Reports
    secrets: list[str]
    texts: dict[str, str]  # where secrets must not be: name -> text
    left_on_queue: int
    dead_letters: list[str]
    behaviours: dict[str, str]  # each job's ChaosBehaviour (follow-up jobs carry their first job's)


@dataclass
class Verdict:
    counts: dict[str, Any]
    violations: list[str]
    details: str = ""  # what the run knows of the violated jobs, in short (chaos.trail)

    @property
    def passed(self) -> bool:
        return not self.violations

    def table(self) -> str:
        width = max(len(k) for k in self.counts)
        lines = [f"{k:<{width}}  {v}" for k, v in self.counts.items()]
        lines.append(f"{'violations':<{width}}  {len(self.violations)}")
        lines += [f"  - {v}" for v in self.violations[:50]]
        if self.details:
            lines.append(self.details)
        return "\n".join(lines)


def _ended_at(job: dict[str, Any]) -> float | None:
    return next((e["at"] for e in job["history"] if e["event"] in ("succeeded", "failed")), None)


def _failed_back(job: dict[str, Any]) -> bool:
    return any("could not put it on its work queue" in str(e.get("failureMessage", "")) for e in job["history"])


# How each way a job fails begins its failure message (runner, dead_letter.service).
TIME_LIMIT_FAILURE = "The work did not finish within its time limit"
SYSTEM_EXIT_FAILURE = "The work function raised SystemExit"
DEAD_LETTER_FAILURE = "The job worker did not complete this job"


def _failure(job: dict[str, Any]) -> str:
    return next((str(e.get("failureMessage", "")) for e in job["history"] if e["event"] == "failed"), "")


def check_jobs(facts: Facts) -> list[str]:
    """Each job's fate, reports, runs."""
    found = []
    killed_in_failure_records = {job for r in facts.record.failure_destination if r["killed"] for job in r["jobs"]}
    for job_id, job in facts.jobs.items():
        status = job["status"]
        if status not in ENDED and not (status == "InProgress" and job_id in killed_in_failure_records):
            found.append(f"{job_id}: left {status}")
        accepted = sum(1 for e in job["history"] if e["event"] in ("succeeded", "failed"))
        if accepted > 1:
            found.append(f"{job_id}: result accepted {accepted} times")
        runs = [m for m in facts.runs.get(job_id, []) if m["event"] == "start"]
        interrupted = sum(1 for m in runs if m["invocation"] in facts.killed)
        if len(runs) > 1 + interrupted:
            found.append(f"{job_id}: work ran {len(runs)} times, {interrupted} of them interrupted by a kill")
        ended = _ended_at(job)
        late = [m for m in runs if ended is not None and m["at"] > ended + 0.005]
        if late:
            found.append(f"{job_id}: work started {len(late)} time(s) after the job ended")
        if _failed_back(job) and runs:
            found.append(f"{job_id}: failed back, yet its work ran")
    return found


def check_secrets(facts: Facts) -> list[str]:
    """No secret the endpoint handed out anywhere it must not be."""
    found = []
    for name, text in facts.texts.items():
        leaked = [s for s in facts.secrets if s in text]
        if leaked:
            found.append(f"{len(leaked)} secret(s) in {name}")
    for record in facts.record.failure_destination:
        if not record["killed"] and any(s in json.dumps(record) for s in facts.secrets):
            found.append(f"a secret in the failure record of a {record['kind']} event that was not killed")
    return found


def check_queues(facts: Facts) -> list[str]:
    found = []
    if facts.left_on_queue:
        found.append(f"{facts.left_on_queue} message(s) left on the work queue")
    for body in facts.dead_letters:  # until the dead-letter handler fails them back (docs/testing.md)
        job = facts.jobs.get(json.loads(body).get("jobId", ""), {})
        if job.get("status") not in ENDED:
            found.append(f"{job.get('jobId')}: its message is in the dead-letter queue and the job has not ended")
    return found


EXPECTED_FAILURES = {
    "hang": (TIME_LIMIT_FAILURE, DEAD_LETTER_FAILURE),
    # On a loaded machine the work may reach its time limit before it reaches its `SystemExit` (a stress run saw
    # it, at load average 9): that too ends the job Failed, once, saying why.
    "exit": (SYSTEM_EXIT_FAILURE, TIME_LIMIT_FAILURE, DEAD_LETTER_FAILURE),
    # A stall stops the function's process until Lambda's timeout kills it, delivery after delivery, until the
    # dead-letter handler fails the job back. One CI run also saw the function's process report the job's time
    # limit first (its child overran it): that too ends the job Failed, once, saying why.
    "stall": (TIME_LIMIT_FAILURE, DEAD_LETTER_FAILURE),
}


def check_work_side(facts: Facts) -> list[str]:
    """Each work-side fault ends its job as it should; every dead letter is failed back, once."""
    found = []
    for job_id, job in facts.jobs.items():
        expected = EXPECTED_FAILURES.get(facts.behaviours.get(job_id, ""))
        # A job failed back by the acknowledger (the queue refused its message) never reached its work: that it
        # never ran is check_jobs'
        if expected is not None and job["status"] in ENDED and not _failed_back(job):
            failure = _failure(job)
            if job["status"] != "Failed" or not failure.startswith(expected):
                found.append(f"{job_id}: its work did {facts.behaviours[job_id]}, and it ended {job['status']}")
    handled = {job for i in facts.record.invocations if i.function == "dead_letter" for job in i.jobs}
    for job_id in handled:
        job = facts.jobs.get(job_id, {})
        if job.get("status") not in ENDED:  # failed back by the handler, or it had ended before
            found.append(f"{job_id}: its dead letter was handled, and the job is {job.get('status')}")
        failed_back = sum(1 for e in job.get("history", []) if DEAD_LETTER_FAILURE in str(e.get("failureMessage", "")))
        if failed_back > 1:
            found.append(f"{job_id}: failed back by the dead-letter handler {failed_back} times")
    if facts.dead_letters:
        found.append(f"{len(facts.dead_letters)} dead letter(s) left on the dead-letter queue")
    return found


CHECKS: list[Callable[[Facts], list[str]]] = [check_jobs, check_secrets, check_queues, check_work_side]


def judge(  # noqa: PLR0917 - the run's parts
    config: ChaosConfig,
    cluster: Cluster,
    record: Record,
    reports: Reports,
    arrivals: Arrivals,
    arrived: list[str],
    folder: Path,
    seconds: float,
) -> Verdict:
    facts = _facts(config, cluster, record, reports, arrived, folder)
    violations = [v for check in CHECKS for v in check(facts)]
    details = write_trails(facts, cluster, violated_jobs(facts, violations), folder)
    return Verdict(_counts(facts, cluster, arrivals, seconds), violations, details)


def _facts(  # noqa: PLR0917 - the run's parts
    config: ChaosConfig, cluster: Cluster, record: Record, reports: Reports, arrived: list[str], folder: Path
) -> Facts:
    runs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in (folder / "runs.jsonl").read_text().splitlines():
        marker = json.loads(line)
        runs[marker["job"]].append(marker)
    secrets = cluster.endpoint.store.issued_secrets()
    texts = {f"log {p.name}": p.read_text(errors="replace") for p in sorted(folder.glob("*.log"))}
    texts["results and queue messages"] = json.dumps(
        [(i.event if i.function == "work" else None, i.reply.result if i.reply else None) for i in record.invocations]
    )
    texts["once-only records"] = json.dumps(
        [
            i
            for i in cluster.client("dynamodb").scan(TableName=cluster.table)["Items"]
            if i["id"]["S"].startswith("work#")
        ]
    )
    attributes = cluster.sqs.get_queue_attributes(
        QueueUrl=cluster.queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    dead = cluster.sqs.receive_message(QueueUrl=cluster.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=60)
    jobs = {job["jobId"]: job for job in cluster.endpoint.store.jobs()}
    return Facts(
        config=config,
        jobs=jobs,
        arrived=arrived,
        runs=dict(runs),
        killed={i.id for i in record.invocations if i.reply is not None and i.reply.killed},
        record=record,
        reports=reports,
        secrets=[s for s in secrets if len(s) >= 6],  # the shortest nonces would match any number in a log
        texts=texts,
        left_on_queue=sum(int(v) for v in attributes.values()),
        dead_letters=[m["Body"] for m in dead.get("Messages", [])],
        behaviours={
            job_id: str((job.get("configuration") or {}).get("ChaosBehaviour", "succeed"))
            for job_id, job in jobs.items()
        },
    )


def _history(facts: Facts, event: str) -> int:
    return sum(1 for job in facts.jobs.values() for e in job["history"] if e["event"] == event)


def _counts(facts: Facts, cluster: Cluster, arrivals: Arrivals, seconds: float) -> dict[str, Any]:
    invocations = facts.record.invocations
    by_function: Counter[str] = Counter(i.function for i in invocations)
    killed: Counter[str] = Counter(i.function for i in invocations if i.reply is not None and i.reply.killed)
    errors: Counter[str] = Counter(
        i.reply.error_type for i in invocations if i.reply is not None and i.reply.error_type is not None
    )
    outcomes: Counter[str] = Counter()
    reconciled: Counter[str] = Counter()
    for invocation in invocations:
        if invocation.function != "acknowledger" or invocation.reply is None:
            continue
        result = invocation.reply.result if isinstance(invocation.reply.result, dict) else {}
        for entry in result.get("results", [result] if "outcome" in result else []):
            outcomes[entry["outcome"]] += 1
            if "handoff" in entry:
                outcomes[f"handoff {entry['handoff']}"] += 1
        for key, value in (result.get("reconciled") or {}).items():
            if isinstance(value, int):
                reconciled[key] += value
    statuses = Counter(job["status"] for job in facts.jobs.values())
    starts = {job: [m for m in marks if m["event"] == "start"] for job, marks in facts.runs.items()}
    reruns = sum(max(0, len(s) - 1) for s in starts.values())
    ended = {(m["job"], m["invocation"]) for marks in facts.runs.values() for m in marks if m["event"] == "end"}
    cut = sum(
        1
        for s in starts.values()
        for m in s
        if m["invocation"] in facts.killed and (m["job"], m["invocation"]) not in ended
    )
    killed_records = [r for r in facts.record.failure_destination if r["killed"]]
    residual = [
        j
        for j, job in facts.jobs.items()
        if job["status"] == "InProgress" and any(j in r["jobs"] for r in killed_records)
    ]
    return {
        "seconds": round(seconds, 1),
        "jobs created": len(facts.arrived),
        "follow-up jobs (continuations)": len(facts.jobs) - len(facts.arrived),
        "jobs Succeeded / Failed": f"{statuses['Succeeded']} / {statuses['Failed']}",
        "jobs failed back (queue refused)": sum(1 for job in facts.jobs.values() if _failed_back(job)),
        "jobs left InProgress, every delivery killed": len(residual),
        "jobs left otherwise": len(facts.jobs) - statuses["Succeeded"] - statuses["Failed"] - len(residual),
        "direct deliveries (job events)": sum(arrivals.direct.values()),
        "jobs delivered more than once": sum(1 for n in arrivals.direct.values() if n > 1),
        "batch events": arrivals.batches,
        "scheduled ticks / STARTED events": f"{arrivals.ticks} / {arrivals.started_events}",
        "acknowledger invocations / killed": f"{by_function['acknowledger']} / {killed['acknowledger']}",
        "work invocations / killed": f"{by_function['work']} / {killed['work']}",
        "function errors (raised)": dict(errors),
        "claim results returned": {k: v for k, v in sorted(outcomes.items()) if not k.startswith("handoff")},
        "hand-offs": {k.removeprefix("handoff "): v for k, v in sorted(outcomes.items()) if k.startswith("handoff")},
        # A conflict is a job event whose nonce went stale: its job's dispatch timed out while the event waited
        # (a late duplicate, or an event queued behind busy environments), and a poll claimed it with a new one
        "dispatches timed out / stale nonces refused": f"{_history(facts, 'dispatch timed out')} / "
        f"{_history(facts, 'acknowledge refused')}",
        "reconciled": dict(reconciled),
        "SQS sends (proxy)": dict(cluster.proxy.faults.counts),
        "CodePipeline faults (endpoint)": cluster.endpoint.stats()["faults"],
        "messages delivered to the work function": facts.record.deliveries["work"],
        "work runs": sum(len(s) for s in starts.values()),
        "runs killed before their work ended": cut,
        "jobs run again (after a killed run)": reruns,
        "most runs of one job": max((len(s) for s in starts.values()), default=0),
        "results accepted": sum(
            1 for job in facts.jobs.values() for e in job["history"] if e["event"] in ("succeeded", "failed")
        ),
        "reports refused (job had ended)": sum(facts.reports.refused.values()),
        "failure records (killed / function error)": f"{len(killed_records)} / "
        f"{len(facts.record.failure_destination) - len(killed_records)}",
        "jobs by behaviour": dict(Counter(facts.behaviours[job] for job in facts.arrived)),
        "work invocations killed at their timeout": sum(
            1
            for i in invocations
            if i.function == "work" and i.reply is not None and i.reply.killed and i.kill_after_s is None
        ),
        "jobs failed at their time limit / by SystemExit": f"{_failing(facts, TIME_LIMIT_FAILURE)} / "
        f"{_failing(facts, SYSTEM_EXIT_FAILURE)}",
        "dead letters handled / jobs failed back by their handler": f"{facts.record.deliveries['dead_letter']} / "
        f"{_failing(facts, DEAD_LETTER_FAILURE)}",
        "dead letters left": len(facts.dead_letters),
    }


def _failing(facts: Facts, failure: str) -> int:
    return sum(1 for job in facts.jobs.values() if job["status"] == "Failed" and _failure(job).startswith(failure))
