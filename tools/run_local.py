"""`make run [WORK_FUNCTION=actions.my_action:run]`: a job's whole life cycle against the embedded local
CodePipeline endpoint, on loopback only.

Starts the endpoint, moto's Secrets Manager, SQS, DynamoDB, S3 and KMS, and a small health server on free
127.0.0.1 ports; points the SDK at them with throwaway credentials. Then the acknowledger claims the jobs (events/
files) and hands them to the work queue; the work function's Lambda entry runs them from the queue and reports to
CodePipeline; a job that is still running continues as a follow-up job, claimed and run in the next round. Prints
each step, each job's life cycle and what the work function reported. No AWS account, no Docker.

Without WORK_FUNCTION, the example action (a URL health gate) runs on custom and partner jobs that show each
outcome, and beside them a Build job with real artifacts in a stack of its own (the Build-style example,
run_build_job.py), whose artifacts are shown; last, a second deployment whose work function cannot start: its job's
message is delivered until the work queue sets it aside, and the dead-letter handler fails the job back.

With WORK_FUNCTION, your work function runs on a job of the first of ACTION_TYPES (default
Custom/Build/MyTool/1), whose configuration is each declared property's example (CONFIGURATION_PROPERTIES), until
it stops answering StillRunning.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import boto3
from moto.server import ThreadedMotoServer

import run_build_job
from codepipeline_local import LocalCodePipeline, StatusPages
from life_cycle import show as show_life_cycles
from local_resources import MAX_RECEIVE_COUNT, create_job_table, create_work_queues

if TYPE_CHECKING:
    from collections.abc import Callable

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
LOG_FILE = ROOT / "build" / "run.log"
EXAMPLE = "codepipeline_worker.examples.url_gate:check_url"
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
ENTRY_POINT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$")
# Rounds of poll-then-work for your action: each StillRunning answer takes one more.
MAX_ROUNDS = 10


def main() -> int:
    work_function = os.environ.get("WORK_FUNCTION", "").strip() or EXAMPLE
    # Before anything imports the library (your module may): no tracing, local metrics, throwaway credentials.
    os.environ.update(
        {
            "WORK_FUNCTION": work_function,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": "us-east-1",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_NAMESPACE": "CodePipelineJobWorkerLocal",
            # The example action refuses addresses that are not public; the health pages here are on 127.0.0.1
            "URL_GATE_ALLOW_PRIVATE_ADDRESSES": "true",
        }
    )
    os.environ.pop("AWS_PROFILE", None)
    configuration = _check_work_function(work_function)
    if configuration is None:
        return 2
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    aws = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)  # Secrets Manager, SQS, DynamoDB, S3, KMS
    aws.start()
    aws_url = "http://{}:{}".format(*aws.get_host_and_port())
    try:
        with LocalCodePipeline(aws_url=aws_url) as endpoint, StatusPages(HEALTH_PAGES) as health:
            local = _Local(endpoint, aws_url, health, work_function)
            if work_function == EXAMPLE:
                return _example(local)
            return _your_action(local, configuration)
    finally:
        aws.stop()


def _check_work_function(reference: str) -> dict[str, str] | None:
    """Your work function's example configuration, or None after one line that says what is wrong: before
    anything starts, as a cold start would refuse it."""
    from codepipeline_worker.shared.errors import ConfigurationError  # noqa: PLC0415 - once the environment is set
    from codepipeline_worker.work.properties import declared_properties, example_configuration  # noqa: PLC0415

    problem = None
    if not ENTRY_POINT.match(reference):
        problem = "must be package.module:function, e.g. actions.my_action:run"
    else:
        try:
            properties = declared_properties(reference)
        except ConfigurationError as exc:
            problem = str(exc).removeprefix("invalid configuration: WORK_FUNCTION: ")
            if "cannot be imported" in problem:
                problem += "; make action NAME=my_action writes one in src/actions/"
        else:
            module_name, _, name = reference.partition(":")
            if callable(getattr(sys.modules[module_name], name, None)):
                return example_configuration(properties)
            problem = f"{module_name} has no function {name}"
    print(f"WORK_FUNCTION={reference}: {problem}", file=sys.stderr)
    return None


@dataclass
class _Local:
    """The embedded services, and the environment that points the functions at them."""

    endpoint: LocalCodePipeline
    aws_url: str
    health: StatusPages
    work_function: str

    def start(self, action_types: str) -> tuple[str, str]:
        """Point the SDK and the functions' settings at the local services; returns the work queue's URL and the
        partner jobs' throwaway client token."""
        client_token = uuid.uuid4().hex  # made for this run, kept only by the endpoint and moto
        os.environ.update(
            {
                "AWS_ENDPOINT_URL_CODEPIPELINE": self.endpoint.url,
                "AWS_ENDPOINT_URL_SECRETS_MANAGER": self.aws_url,
                "AWS_ENDPOINT_URL_SQS": self.aws_url,
                "AWS_ENDPOINT_URL_DYNAMODB": self.aws_url,
                "AWS_ENDPOINT_URL_S3": str(
                    self.endpoint.artifact_url
                ),  # the artifact front: the jobs' credentials only
                "ACTION_TYPES": action_types,
                "CLIENT_TOKEN_SECRET_ID": SECRET_ID,
            }
        )
        tokens = json.dumps({CLIENT_ID: client_token})
        boto3.client("secretsmanager").create_secret(Name=SECRET_ID, SecretString=tokens)
        # The template's FIFO work queue and job table
        queue_url, _ = create_work_queues(boto3.client("sqs"), "codepipeline-jobs")
        os.environ["JOB_QUEUE_URL"] = queue_url
        os.environ["JOB_TABLE_NAME"] = create_job_table(boto3.client("dynamodb"), "codepipeline-jobs")
        return queue_url, client_token

    def announce(self, queue_url: str, seeded: str) -> None:
        print(f"local CodePipeline endpoint {self.endpoint.url}")
        print(f"Secrets Manager, SQS, DynamoDB, S3 and KMS (moto) {self.aws_url}")
        print(f"seeded: {seeded}")
        print(f"work queue {queue_url} (FIFO), job table {os.environ['JOB_TABLE_NAME']}")
        print(f"work function {self.work_function}")
        print(f"the functions' own log lines and metrics (and your print output): {LOG_FILE.relative_to(ROOT)}\n")


def _example(local: _Local) -> int:
    """The example action on jobs that show each outcome: healthy, warming up (two rounds), broken; partner jobs;
    a direct event, and a second worker's stale nonce."""
    queue_url, client_token = local.start(f"{CUSTOM},{PARTNER}")
    endpoint, health = local.endpoint, local.health
    direct = _event("custom-job.json")
    seeds = {
        "web": {"Url": health.url("/healthy")},
        "api": {"Url": health.url("/warming-up"), "MaxChecks": "3"},
        "docs": {"Url": health.url("/broken"), "MaxChecks": "1"},
    }
    names: dict[str, str] = {}
    for project, configuration in seeds.items():
        job_id = endpoint.store.create_job(
            CUSTOM, configuration={"ProjectName": project, **configuration}, **NO_ARTIFACTS
        )
        names[job_id] = project
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
    local.announce(queue_url, f"3 custom jobs ({CUSTOM}), 2 partner jobs ({PARTNER}), job {direct['jobId']} dispatched")
    run_build_job.announce(endpoint)

    with _Steps(endpoint, queue_url, names) as steps:
        steps.acknowledge("acknowledger: scheduled poll", "events/scheduled.json", _event("scheduled.json"))
        steps.acknowledge("acknowledger: direct custom job", "events/custom-job.json", direct)
        steps.acknowledge(
            "acknowledger: a second worker with a stale nonce", "same job, nonce 2", {**direct, "nonce": "2"}
        )
        steps.work("work function: round 1")
        steps.acknowledge(
            "acknowledger: scheduled poll (claims the follow-up job)", "events/scheduled.json", _event("scheduled.json")
        )
        steps.work("work function: round 2")
        build = run_build_job.stack(dict(os.environ))
        steps.acknowledge(
            "the Build stack's acknowledger: scheduled poll",
            "events/scheduled.json",
            _event("scheduled.json"),
            build.service,
        )
        steps.work("the Build stack's work function", build.queue, build.runner, "its work queue")
        _broken_deployment(endpoint, names, steps.log, health.url("/healthy"))
    _finish(endpoint, names, lambda: run_build_job.show_artifacts(endpoint, build_job))
    return 0


def _your_action(local: _Local, configuration: dict[str, str]) -> int:
    """Your work function on one job of the first configured action type, round after round while it answers
    StillRunning (up to MAX_ROUNDS); then what it reported, and what it logged at WARNING and above."""
    action_type = os.environ.get("ACTION_TYPES", CUSTOM).split(",", maxsplit=1)[0].strip() or CUSTOM
    queue_url, client_token = local.start(action_type)
    partner = action_type.startswith("ThirdParty/")
    job_id = local.endpoint.store.create_job(
        action_type,
        configuration=configuration,
        client_id=CLIENT_ID if partner else None,
        client_token=client_token if partner else None,
    )
    names = {job_id: "job 1"}
    local.announce(
        queue_url,
        f"1 {'partner' if partner else 'custom'} job ({action_type}), configuration {json.dumps(configuration)}",
    )

    with _Steps(local.endpoint, queue_url, names) as steps:
        for round_ in range(1, MAX_ROUNDS + 1):
            if "Queued" not in steps.states().values():
                break
            steps.acknowledge(
                f"acknowledger: scheduled poll, round {round_}", "events/scheduled.json", _event("scheduled.json")
            )
            steps.work(f"work function: round {round_}")
        else:
            print(f"still running after {MAX_ROUNDS} rounds (on AWS, each round waits for the next poll)\n")
    _finish(local.endpoint, names)
    _show_warnings()
    return 0


class _Steps:
    """Runs the functions' Lambda entry points in this process, as Lambda would, and prints each step: their
    log lines and metrics go to build/run.log."""

    def __init__(self, endpoint: LocalCodePipeline, queue_url: str, names: dict[str, str]) -> None:
        self._endpoint = endpoint
        self._queue_url = queue_url
        self._names = names
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> _Steps:
        LOG_FILE.parent.mkdir(exist_ok=True)
        self._log = self._stack.enter_context(LOG_FILE.open("w"))
        # Imported once the environment is set, as Lambda's cold start does.
        from codepipeline_worker.acknowledger import handler  # noqa: PLC0415
        from codepipeline_worker.shared.adapter import open_work_queue  # noqa: PLC0415
        from codepipeline_worker.shared.observability import logger  # noqa: PLC0415
        from codepipeline_worker.work import handler as worker_handler  # noqa: PLC0415
        from codepipeline_worker.work.config import get_worker_settings  # noqa: PLC0415
        from codepipeline_worker.work.consume import LocalContext, consume_once  # noqa: PLC0415

        logger.registered_handler.setStream(self._log)  # type: ignore[attr-defined]
        queue = open_work_queue(self._queue_url, get_worker_settings())
        self._acknowledger: Callable[[Any, Any], Any] = lambda event, service: handler.lambda_handler(
            event, LocalContext("codepipeline-job-worker", JOB_WORKER_TIMEOUT_S), service=service
        )

        def consume(work_queue: Any, runner: Any) -> tuple[int, int]:
            def run(event: dict[str, Any], context: Any) -> Any:
                return worker_handler.lambda_handler(event, context, runner=runner)

            return consume_once(work_queue or queue, run, wait_s=0)

        self._consume: Callable[[Any, Any], tuple[int, int]] = consume
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def acknowledge(self, title: str, source: str, event: Any, service: Any = None) -> None:
        """The acknowledger on `event`, with its stack's service (by default, the run's)."""
        result, error, before = self._run(lambda: self._acknowledger(event, service))
        _show(_Run(title, source, event, result, error, before, self.states()), self._names)

    def work(self, title: str, queue: Any = None, runner: Any = None, source: str = "the work queue") -> None:
        """The work function's Lambda entry on what its stack's work queue holds (by default, the run's)."""
        result, error, before = self._run(lambda: self._consume(queue, runner))
        if isinstance(result, tuple):
            result = {"received": result[0], "redelivered": result[1]}
        _show(_Run(title, source, None, result, error, before, self.states()), self._names)

    def _run(self, step: Callable[[], Any]) -> tuple[Any, Exception | None, dict[str, str]]:
        before = self.states()
        with contextlib.redirect_stdout(self._log):  # the metrics (EMF), and your print output
            try:
                return step(), None, before
            except Exception as exc:  # noqa: BLE001 - shown, as `sam local invoke` shows a function error
                return None, exc, before

    @property
    def log(self) -> TextIO:
        """build/run.log, where the functions' log lines and metrics go."""
        return self._log

    def states(self) -> dict[str, str]:
        return _states(self._endpoint)


def _states(endpoint: LocalCodePipeline) -> dict[str, str]:
    return {job["jobId"]: job["status"] for job in endpoint.store.jobs()}


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


def _finish(endpoint: LocalCodePipeline, names: dict[str, str], then: Callable[[], None] | None = None) -> None:
    print("== life cycles (the endpoint's record of each job, and what the work function reported)")
    show_life_cycles(endpoint.store.jobs(), names, sys.stdout)
    print()
    if then is not None:
        then()
    stats = endpoint.stats()
    print(f"endpoint calls: {json.dumps(stats['calls'])}")
    print(f"endpoint errors: {json.dumps(stats['errors'])}")


def _show_warnings() -> None:
    """The functions' log lines at WARNING and above (your function raising, a bad result), from build/run.log."""
    lines = []
    for line in LOG_FILE.read_text().splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict) and record.get("level") in ("WARNING", "ERROR", "CRITICAL"):
                fields = {k: v for k, v in record.items() if k not in _LOG_CONTEXT}
                lines.append(f"   {record['level']} {record.get('message')} {json.dumps(fields)}")
    if lines:
        print(f"\nlogged at WARNING and above ({LOG_FILE.relative_to(ROOT)} has every line):")
        print("\n".join(lines))


# The fields of every log line that say where, not what.
_LOG_CONTEXT = frozenset(
    {
        "level",
        "message",
        "location",
        "timestamp",
        "service",
        "cold_start",
        "function_name",
        "function_memory_size",
        "function_arn",
        "function_request_id",
        "sampling_rate",
        "xray_trace_id",
    }
)


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
