"""`make run`: a job's whole life cycle against the embedded local CodePipeline endpoint, on loopback only.

Starts the endpoint, moto's Secrets Manager, SQS, DynamoDB, S3 and KMS, and a small health server on free 127.0.0.1
ports; seeds custom and partner jobs for the example action; points the SDK at them with throwaway credentials. Then:
the acknowledger claims the jobs (events/ files) and hands them to the work queue; the work function's Lambda entry
runs them from the queue and reports to CodePipeline; a job that is still running continues as a follow-up job,
claimed and run in a second round. Beside them, a Build job with real artifacts runs in a stack of its own (the
Build-style example, run_build_job.py). Last, a second deployment whose work function cannot start: its job's
message is delivered until the work queue sets it aside, and the dead-letter handler fails the job back. Prints
each step, each job's life cycle and the Build job's artifacts. No AWS account, no Docker.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import boto3
from moto.server import ThreadedMotoServer

import run_build_job
from codepipeline_local import LocalCodePipeline, StatusPages
from local_resources import MAX_RECEIVE_COUNT, create_job_table, create_work_queues

if TYPE_CHECKING:
    from collections.abc import Callable

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
LOG_FILE = ROOT / "build" / "run.log"
CUSTOM = "Custom/Build/MyTool/1"
PARTNER = "ThirdParty/Deploy/PartnerTool/2"
# The second deployment: an action type of its own, and a WORK_FUNCTION whose module it does not ship.
BROKEN_TYPE = "Custom/Deploy/MyDeployer/1"
BROKEN_WORK_FUNCTION = "mydeployer.deploy:run"
CLIENT_ID = "c1e7d1a0-1234-4abc-9def-0123456789ab"
SECRET_ID = "codepipeline-job-worker/client-tokens"  # noqa: S105 - the secret's name, not a secret
# The job worker's timeout in template.yaml: polls and claims start only when their worst case fits in it.
JOB_WORKER_TIMEOUT_S = 180
# What the example action checks: one page healthy, one warming up (503 once, then 200), one broken.
HEALTH_PAGES = {"/healthy": [200], "/warming-up": [503, 200], "/broken": [500]}
# A gate reads and writes no artifacts.
NO_ARTIFACTS: dict[str, Any] = {"input_artifacts": [], "output_artifacts": []}


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    aws = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)  # Secrets Manager, SQS, DynamoDB, S3, KMS
    aws.start()
    aws_url = "http://{}:{}".format(*aws.get_host_and_port())
    try:
        with LocalCodePipeline(aws_url=aws_url) as endpoint, StatusPages(HEALTH_PAGES) as health:
            return _demo(endpoint, aws_url, health)
    finally:
        aws.stop()


def _demo(endpoint: LocalCodePipeline, aws_url: str, health: StatusPages) -> int:
    client_token = uuid.uuid4().hex  # throwaway: made for this run, kept only by the endpoint and moto
    os.environ.update(
        {
            "AWS_ENDPOINT_URL_CODEPIPELINE": endpoint.url,
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": aws_url,
            "AWS_ENDPOINT_URL_SQS": aws_url,
            "AWS_ENDPOINT_URL_DYNAMODB": aws_url,
            "AWS_ENDPOINT_URL_S3": str(endpoint.artifact_url),  # the artifact front: the jobs' credentials only
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": "us-east-1",
            "ACTION_TYPES": f"{CUSTOM},{PARTNER}",
            "CLIENT_TOKEN_SECRET_ID": SECRET_ID,
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_NAMESPACE": "CodePipelineJobWorkerLocal",
            # The example action refuses addresses that are not public; the health pages here are on 127.0.0.1
            "URL_GATE_ALLOW_PRIVATE_ADDRESSES": "true",
        }
    )
    os.environ.pop("AWS_PROFILE", None)
    boto3.client("secretsmanager").create_secret(Name=SECRET_ID, SecretString=json.dumps({CLIENT_ID: client_token}))
    # The template's FIFO work queue and job table
    queue_url, _ = create_work_queues(boto3.client("sqs"), "codepipeline-jobs")
    os.environ["JOB_QUEUE_URL"] = queue_url
    os.environ["JOB_TABLE_NAME"] = create_job_table(boto3.client("dynamodb"), "codepipeline-jobs")

    # Seed jobs for the example action (codepipeline_worker.examples.url_gate.check_url): each checks a URL of the local
    # health server. One is healthy, one warms up (503, then 200: two rounds), one is broken (500).
    direct = json.loads((EVENTS / "custom-job.json").read_text())
    seeds = {
        "web": {"Url": health.url("/healthy")},
        "api": {"Url": health.url("/warming-up"), "MaxChecks": "3"},
        "docs": {"Url": health.url("/broken"), "MaxChecks": "1"},
    }
    names: dict[str, str] = {}
    for project, configuration in seeds.items():
        names[
            endpoint.store.create_job(CUSTOM, configuration={"ProjectName": project, **configuration}, **NO_ARTIFACTS)
        ] = project
    for n in (1, 2):
        job_id = endpoint.store.create_job(
            PARTNER,
            client_id=CLIENT_ID,
            client_token=client_token,
            configuration={"Url": health.url("/healthy")},
            **NO_ARTIFACTS,
        )
        names[job_id] = f"partner {n}"
    endpoint.store.create_job(
        CUSTOM,
        job_id=direct["jobId"],
        dispatched_nonce=direct["nonce"],
        configuration={"ProjectName": "direct", "Url": health.url("/healthy")},
        **NO_ARTIFACTS,
    )
    names[direct["jobId"]] = "direct"
    build_job = run_build_job.seed(endpoint)
    names[build_job] = run_build_job.NAME

    print(f"local CodePipeline endpoint {endpoint.url}; Secrets Manager, SQS, DynamoDB, S3 and KMS (moto) {aws_url}")
    print(f"seeded: 3 custom jobs ({CUSTOM}), 2 partner jobs ({PARTNER}), job {direct['jobId']} dispatched")
    print(
        f"work queue {queue_url} (FIFO), job table {os.environ['JOB_TABLE_NAME']}\n"
        "work function codepipeline_worker.examples.url_gate:check_url"
    )
    run_build_job.announce(endpoint)
    print(f"the functions' own log lines and metrics: {LOG_FILE.relative_to(ROOT)}\n")

    LOG_FILE.parent.mkdir(exist_ok=True)
    with LOG_FILE.open("w") as log:
        # Imported once the environment is set, as Lambda's cold start does.
        from codepipeline_worker.acknowledger import handler  # noqa: PLC0415
        from codepipeline_worker.shared.adapter import open_work_queue  # noqa: PLC0415
        from codepipeline_worker.shared.observability import logger  # noqa: PLC0415
        from codepipeline_worker.work import handler as worker_handler  # noqa: PLC0415
        from codepipeline_worker.work.config import get_worker_settings  # noqa: PLC0415
        from codepipeline_worker.work.consume import LocalContext, consume_once  # noqa: PLC0415

        logger.registered_handler.setStream(log)  # type: ignore[attr-defined]
        queue = open_work_queue(queue_url, get_worker_settings())
        build = run_build_job.stack(dict(os.environ))
        acknowledge, work = _acknowledger(handler, LocalContext), _work_function(worker_handler, consume_once)
        stale = {**direct, "nonce": "2"}
        scheduled = _event("scheduled.json")
        steps: list[tuple[str, str, Any, Callable[[], Any]]] = [
            ("acknowledger: scheduled poll", "events/scheduled.json", scheduled, acknowledge(scheduled)),
            ("acknowledger: direct custom job", "events/custom-job.json", direct, acknowledge(direct)),
            ("acknowledger: a second worker with a stale nonce", "same job, nonce 2", stale, acknowledge(stale)),
            ("work function: round 1", "the work queue", None, work(queue)),
            (
                "acknowledger: scheduled poll (claims the follow-up job)",
                "events/scheduled.json",
                scheduled,
                acknowledge(scheduled),
            ),
            ("work function: round 2", "the work queue", None, work(queue)),
            (
                "the Build stack's acknowledger: scheduled poll",
                "events/scheduled.json",
                scheduled,
                acknowledge(scheduled, build.service),
            ),
            ("the Build stack's work function", "its work queue", None, work(build.queue, build.runner)),
        ]
        for title, source, event, step in steps:
            with contextlib.redirect_stdout(log):  # the metrics (EMF) are printed
                before = _states(endpoint)
                try:
                    result, error = step(), None
                except Exception as exc:  # noqa: BLE001 - shown, as `sam local invoke` shows a function error
                    result, error = None, exc
            _show(_Run(title, source, event, result, error, before, _states(endpoint)), names)
        _broken_deployment(endpoint, names, log, health.url("/healthy"))
    _life_cycles(endpoint, names)
    run_build_job.show_artifacts(endpoint, build_job)
    stats = endpoint.stats()
    print(f"endpoint calls: {json.dumps(stats['calls'])}")
    print(f"endpoint errors: {json.dumps(stats['errors'])}")
    return 0


def _acknowledger(handler: Any, context: Any) -> Callable[..., Callable[[], Any]]:
    """A step: the acknowledger's Lambda entry on an event, with its stack's service (by default, the gate's)."""

    def step(event: Any, service: Any = None) -> Callable[[], Any]:
        return lambda: handler.lambda_handler(
            event, context("codepipeline-job-worker", JOB_WORKER_TIMEOUT_S), service=service
        )

    return step


def _work_function(handler: Any, consume_once: Any) -> Callable[..., Callable[[], Any]]:
    """A step: the work function's Lambda entry on what its stack's work queue holds."""

    def step(queue: Any, runner: Any = None) -> Callable[[], Any]:
        def run(event: dict[str, Any], context: Any) -> Any:
            return handler.lambda_handler(event, context, runner=runner)

        return lambda: dict(zip(("received", "redelivered"), consume_once(queue, run, wait_s=0), strict=True))

    return step


def _broken_deployment(endpoint: LocalCodePipeline, names: dict[str, str], log: TextIO, url: str) -> None:
    """A second deployment of the worker, whose WORK_FUNCTION names a module it does not ship: every invocation of
    its work function fails at its cold start, as Lambda's does; the work queue sets the job's message aside after
    MAX_RECEIVE_COUNT receives; the dead-letter handler fails the job back, naming the configuration error."""
    from codepipeline_worker.acknowledger.config import load_settings  # noqa: PLC0415 - imported as a cold start
    from codepipeline_worker.acknowledger.handler import lambda_handler  # noqa: PLC0415
    from codepipeline_worker.acknowledger.service import JobService  # noqa: PLC0415
    from codepipeline_worker.dead_letter.config import DeadLetterSettings  # noqa: PLC0415
    from codepipeline_worker.dead_letter.handler import lambda_handler as dead_letter_handler  # noqa: PLC0415
    from codepipeline_worker.dead_letter.service import DeadLetterService  # noqa: PLC0415
    from codepipeline_worker.shared.adapter import open_work_queue  # noqa: PLC0415
    from codepipeline_worker.shared.config import load_config  # noqa: PLC0415
    from codepipeline_worker.shared.errors import ConfigurationError  # noqa: PLC0415
    from codepipeline_worker.work.config import WorkerSettings  # noqa: PLC0415
    from codepipeline_worker.work.consume import LocalContext, consume_once  # noqa: PLC0415
    from codepipeline_worker.work.runner import WorkRunner  # noqa: PLC0415

    print(f"== a second deployment: WORK_FUNCTION={BROKEN_WORK_FUNCTION}, a module it does not ship")
    deployer = endpoint.store.create_job(BROKEN_TYPE, configuration={"Url": url}, **NO_ARTIFACTS)
    names[deployer] = "deployer"
    # Visible again as soon as an invocation fails (visibility timeout 0): the run does not wait one out.
    queue_url, dead_letters_url = create_work_queues(boto3.client("sqs"), "mydeployer-jobs", visibility_timeout_s=0)
    variables = {**os.environ, "ACTION_TYPES": BROKEN_TYPE, "JOB_QUEUE_URL": queue_url}
    variables["WORK_FUNCTION"] = BROKEN_WORK_FUNCTION
    settings = load_config(WorkerSettings, variables)
    endpoint.store.add_action_type(BROKEN_TYPE)
    before = _states(endpoint)
    with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        acknowledger = JobService.from_settings(load_settings(variables))
        lambda_handler(
            _event("scheduled.json"), LocalContext("mydeployer-job-worker", JOB_WORKER_TIMEOUT_S), acknowledger
        )
    _changes("acknowledger: scheduled poll", before, _states(endpoint), names)

    try:
        WorkRunner.from_settings(settings)
    except ConfigurationError as exc:
        cold_start = exc

    def fails_at_cold_start(event: dict[str, Any], context: Any) -> dict[str, Any]:
        raise cold_start

    queue = open_work_queue(queue_url, settings)
    receives = 0
    with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        while consume_once(queue, fails_at_cold_start, wait_s=0)[0]:
            receives += 1
    print(f"   work function: {receives} invocations, each failed at its cold start: {cold_start}")
    print(f"   the work queue set the message aside after {receives} receives (maxReceiveCount {MAX_RECEIVE_COUNT})")

    before = _states(endpoint)
    with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        service = DeadLetterService.from_settings(load_config(DeadLetterSettings, variables))
        received, redelivered = consume_once(
            open_work_queue(dead_letters_url, settings),
            lambda event, context: dead_letter_handler(event, context, service=service),
            wait_s=0,
        )
    print(f"   dead-letter handler: {received} message(s) run; {redelivered} left for redelivery")
    _changes("dead-letter handler", before, _states(endpoint), names)
    print()
    if endpoint.store.job(deployer)["status"] != "Failed":  # the demo shows what it claims, or says it did not
        raise SystemExit(f"the second deployment's job was not failed back: see {LOG_FILE.relative_to(ROOT)}")


def _changes(who: str, before: dict[str, str], after: dict[str, str], names: dict[str, str]) -> None:
    for job_id, now in after.items():
        if before.get(job_id) != now:
            print(f"   {who}: {names.get(job_id, 'follow-up')} {job_id}  {before.get(job_id)} -> {now}")


def _life_cycles(endpoint: LocalCodePipeline, names: dict[str, str]) -> None:
    """Each job's states, as the endpoint recorded them, and what the work function reported."""
    print("== life cycles (the endpoint's record of each job)")
    jobs = endpoint.store.jobs()
    follow_ups = {
        entry["followUpJobId"]: job["jobId"] for job in jobs for entry in job["history"] if "followUpJobId" in entry
    }
    for job in jobs:
        name = names.get(job["jobId"]) or f"{names.get(follow_ups.get(job['jobId'], ''), '?')} (follow-up)"
        states: list[str] = []
        for entry in job["history"]:
            if not states or states[-1] != entry["status"]:
                states.append(entry["status"])
        last = job["history"][-1]
        print(f"   {name:20} {job['jobId']}  {' -> '.join(states)}")
        if last["event"] == "failed":
            print(f"   {'':20} failed ({last['failureType']}): {last['failureMessage']}")
        elif last["event"] == "succeeded":
            said = last.get("summary", "")
            if "followUpJobId" in last:
                said += f" [{last.get('percentComplete', 0)} %, continues as {last['followUpJobId']}]"
            if "outputVariables" in last:
                said += f"; output variables {json.dumps(last['outputVariables'])}"
            print(f"   {'':20} succeeded: {said}")
    print()


def _states(endpoint: LocalCodePipeline) -> dict[str, str]:
    return {job["jobId"]: job["status"] for job in endpoint.store.jobs()}


@dataclass
class _Run:
    title: str
    source: str
    event: Any
    result: dict[str, Any] | None
    error: Exception | None
    before: dict[str, str]
    after: dict[str, str]


def _show(run: _Run, names: dict[str, str]) -> None:
    print(f"== {run.title} ({run.source})")
    if run.result is not None and "received" in run.result:
        print(f"   {run.result['received']} message(s) run; {run.result['redelivered']} left for redelivery")
        changed = {k: (run.before.get(k), v) for k, v in run.after.items() if run.before.get(k) != v}
        for job_id, (was, now) in changed.items():
            print(f"   {names.get(job_id, 'follow-up'):20} {job_id}  {was} -> {now}")
        print()
        return
    if run.result is None:
        name = type(run.error).__name__
        print(f"   function error: {name}: {run.error}")
        rows = [{"jobId": run.event["jobId"], "jobType": "custom", "outcome": f"raised {name}"}]
    else:
        rows = run.result.get("results", [run.result])
    print(f"   {'job':36}  {'type':10}  {'outcome':34}  {'hand-off':8}  endpoint: before -> after")
    for row in rows:
        job_id = row["jobId"]
        outcome = row["outcome"] + (f" ({row['error']})" if "error" in row else "")
        handoff = row.get("handoff", "-")
        states = f"{run.before.get(job_id)} -> {run.after.get(job_id)}"
        print(f"   {job_id:36}  {row['jobType']:10}  {outcome:34}  {handoff:8}  {states}")
    if run.result is not None and "counts" in run.result:
        print(f"   counts: {json.dumps(run.result['counts'])}")
    print()


def _event(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())


if __name__ == "__main__":
    sys.exit(main())
