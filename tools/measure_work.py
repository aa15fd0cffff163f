"""What running each job's work in a child process costs: per-job time through the work side's runner, the work
in a forked child (JOB_ISOLATION=process) against the same work in the function's own process (none), like for
like: same runner, same endpoint, same job state, the modes alternating job by job. Then the example action's
whole job (details, one HTTP check of a local page, the report), both ways.

    .venv/bin/python tools/measure_work.py [jobs per mode, default 200]

Everything runs on 127.0.0.1: the local CodePipeline endpoint in a process of its own (in this one, its memory
and threads would make each fork dearer than in a Lambda function), and a local page for the example.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import boto3

from codepipeline_local import StatusPages
from codepipeline_local.control import ControlClient

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

CUSTOM = "Custom/Build/MyTool/1"
ACTION_TYPE = {"owner": "Custom", "category": "Build", "provider": "MyTool", "version": "1"}


def main(argv: list[str]) -> int:
    jobs = int(argv[0]) if argv else 200
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": "us-east-1",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "ERROR",
            "URL_GATE_ALLOW_PRIVATE_ADDRESSES": "true",
        }
    )
    with _endpoint() as endpoint, StatusPages({"/healthy": [200]}) as pages:
        os.environ["AWS_ENDPOINT_URL_CODEPIPELINE"] = endpoint.url
        from codepipeline_worker.examples.url_gate import check_url  # noqa: PLC0415 - once the environment is set
        from codepipeline_worker.work import Job, Outcome, Success  # noqa: PLC0415

        def no_op(_job: Job) -> Outcome:
            return Success()

        print(f"{jobs} jobs per mode; median and 90th percentile per job, in ms")
        configuration = {"Url": pages.url("/healthy")}
        for label, work in (("no-op work", no_op), ("example action (check_url)", check_url)):
            times = _alternating(endpoint, work, jobs, configuration)
            for mode, samples in times.items():
                print(f"  {label:28} {mode:8} {_ms(statistics.median(samples))} {_ms(_p90(samples))}")
            overhead = statistics.median(times["process"]) - statistics.median(times["none"])
            print(f"  {label:28} {'overhead':8} {_ms(overhead)}")
    return 0


@contextlib.contextmanager
def _endpoint() -> Iterator[ControlClient]:
    """The local endpoint, served by another process on a free port; its control API."""
    server = subprocess.Popen(
        [sys.executable, "-m", "codepipeline_local", "serve", "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    try:
        first_line = server.stdout.readline() if server.stdout is not None else ""
        url = first_line.split()[-1]  # "local CodePipeline endpoint on http://127.0.0.1:<port>"
        yield ControlClient(url)
    finally:
        server.terminate()
        server.wait(10)


def _alternating(
    endpoint: ControlClient, work: Callable[[Any], Any], jobs: int, configuration: dict[str, str]
) -> dict[str, list[float]]:
    from codepipeline_worker.shared.adapter import CodePipelineAdapter, create_codepipeline_client  # noqa: PLC0415
    from codepipeline_worker.shared.config import CommonSettings, load_config  # noqa: PLC0415
    from codepipeline_worker.shared.messages import JobMessage  # noqa: PLC0415
    from codepipeline_worker.shared.observability import metrics  # noqa: PLC0415
    from codepipeline_worker.work.runner import WorkRunner  # noqa: PLC0415

    adapter = CodePipelineAdapter(create_codepipeline_client(load_config(CommonSettings, {})))
    runners = {
        "process": WorkRunner(adapter, None, work, time_limit_s=30, isolate=True),
        "none": WorkRunner(adapter, None, work, time_limit_s=30, isolate=False),
    }
    claimed = _claimed(endpoint, 2 * jobs + 2, configuration)
    times: dict[str, list[float]] = {mode: [] for mode in runners}
    for n, job_id in enumerate(claimed):
        mode = "process" if n % 2 == 0 else "none"
        started = time.perf_counter()
        result = runners[mode].run(JobMessage(job_id=job_id, job_type="custom"))
        elapsed = time.perf_counter() - started
        metrics.clear_metrics()  # no handler flushes them here
        if result.result != "succeeded":
            raise SystemExit(f"job {job_id}: {result.result}")
        if n >= 2:  # the first of each mode warms up (imports, connections)
            times[mode].append(elapsed)
    return times


def _claimed(endpoint: ControlClient, count: int, configuration: dict[str, str]) -> list[str]:
    """`count` jobs, polled and acknowledged (InProgress), as the acknowledger leaves them."""
    client = boto3.client("codepipeline", endpoint_url=endpoint.url)
    endpoint.add_action_type(CUSTOM)
    endpoint.create_jobs(CUSTOM, count, configuration=configuration)
    claimed: list[str] = []
    while len(claimed) < count:
        for job in client.poll_for_jobs(actionTypeId=ACTION_TYPE, maxBatchSize=100)["jobs"]:  # type: ignore[arg-type]
            client.acknowledge_job(jobId=job["id"], nonce=job["nonce"])
            claimed.append(job["id"])
    return claimed


def _p90(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=10)[-1]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:7.2f}"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
