"""`make run`: the worker's handler against the embedded local CodePipeline endpoint, on loopback only.

Starts the endpoint and moto's Secrets Manager on free 127.0.0.1 ports, seeds custom and partner jobs, points
the SDK at them with throwaway credentials, invokes the handler with events/ files, and prints what happened to
each job. No AWS account, no Docker, no network.
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
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from codepipeline_local import LocalCodePipeline

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
LOG_FILE = ROOT / "build" / "run.log"
CUSTOM = "Custom/Build/MyTool/1"
PARTNER = "ThirdParty/Deploy/PartnerTool/2"
CLIENT_ID = "c1e7d1a0-1234-4abc-9def-0123456789ab"
SECRET_ID = "codepipeline-job-worker/client-tokens"  # noqa: S105 - the secret's name, not a secret


class LocalContext:
    """The parts of Lambda's context the handler reads, with a 60 s budget."""

    function_name = "codepipeline-job-worker"
    function_version = "$LATEST"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:codepipeline-job-worker"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    secrets_server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    secrets_server.start()
    try:
        with LocalCodePipeline() as endpoint:
            return _demo(endpoint, "http://{}:{}".format(*secrets_server.get_host_and_port()))
    finally:
        secrets_server.stop()


def _demo(endpoint: LocalCodePipeline, secrets_url: str) -> int:
    client_token = uuid.uuid4().hex  # throwaway: made for this run, kept only by the endpoint and moto
    os.environ.update(
        {
            "AWS_ENDPOINT_URL_CODEPIPELINE": endpoint.url,
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": secrets_url,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": "us-east-1",
            "ACTION_TYPES": f"{CUSTOM},{PARTNER}",
            "CLIENT_TOKEN_SECRET_ID": SECRET_ID,
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_NAMESPACE": "CodePipelineJobWorkerLocal",
        }
    )
    os.environ.pop("AWS_PROFILE", None)
    boto3.client("secretsmanager").create_secret(Name=SECRET_ID, SecretString=json.dumps({CLIENT_ID: client_token}))

    # Seed: queued jobs for the scheduled poll, and the job of events/custom-job.json as a poll handed it out.
    direct = json.loads((EVENTS / "custom-job.json").read_text())
    for project in ("web", "api", "docs"):
        endpoint.store.create_job(CUSTOM, configuration={"ProjectName": project})
    for _ in range(2):
        endpoint.store.create_job(PARTNER, client_id=CLIENT_ID, client_token=client_token)
    endpoint.store.create_job(CUSTOM, job_id=direct["jobId"], dispatched_nonce=direct["nonce"])

    print(f"local CodePipeline endpoint {endpoint.url}, Secrets Manager (moto) {secrets_url}")
    print(f"seeded: 3 custom jobs ({CUSTOM}), 2 partner jobs ({PARTNER}), job {direct['jobId']} dispatched")
    print(f"the function's own log lines and metrics: {LOG_FILE.relative_to(ROOT)}\n")

    stale = {**direct, "nonce": "2"}
    runs = [
        ("scheduled poll", "events/scheduled.json", _event("scheduled.json")),
        ("direct custom job", "events/custom-job.json", direct),
        ("a second worker with a stale nonce", "same job, nonce 2", stale),
    ]
    LOG_FILE.parent.mkdir(exist_ok=True)
    with LOG_FILE.open("w") as log:
        # Imported once the environment is set, as Lambda's cold start does.
        from codepipeline_worker.handler import lambda_handler  # noqa: PLC0415
        from codepipeline_worker.observability import logger  # noqa: PLC0415

        logger.registered_handler.setStream(log)  # type: ignore[attr-defined]
        for title, source, event in runs:
            with contextlib.redirect_stdout(log):  # the metrics (EMF) are printed
                before = _states(endpoint)
                try:
                    result, error = lambda_handler(event, LocalContext()), None
                except Exception as exc:  # noqa: BLE001 - shown, as `sam local invoke` shows a function error
                    result, error = None, exc
            _show(_Run(title, source, event, result, error, before, _states(endpoint)))
    stats = endpoint.stats()
    print(f"endpoint calls: {json.dumps(stats['calls'])}")
    print(f"endpoint errors: {json.dumps(stats['errors'])}")
    return 0


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


def _show(run: _Run) -> None:
    print(f"== {run.title} ({run.source})")
    if run.result is None:
        name = type(run.error).__name__
        print(f"   function error: {name}: {run.error}")
        rows = [{"jobId": run.event["jobId"], "jobType": "custom", "outcome": f"raised {name}"}]
    else:
        rows = run.result.get("results", [run.result])
    print(f"   {'job':36}  {'type':10}  {'outcome':34}  endpoint: before -> after")
    for row in rows:
        job_id = row["jobId"]
        outcome = row["outcome"] + (f" ({row['error']})" if "error" in row else "")
        print(f"   {job_id:36}  {row['jobType']:10}  {outcome:34}  {run.before.get(job_id)} -> {run.after.get(job_id)}")
    if run.result is not None and "counts" in run.result:
        print(f"   counts: {json.dumps(run.result['counts'])}")
    print()


def _event(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())


if __name__ == "__main__":
    sys.exit(main())
