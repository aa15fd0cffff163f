"""Per-call time of the endpoint by the number of jobs it holds: `python -m codepipeline_local measure`.

Each figure is one poll (maxBatchSize 1) and one acknowledgement, through boto3 over HTTP on 127.0.0.1, against an
endpoint in this process that holds that many claimed jobs of the same action type (what a busy endpoint, or the
benchmark's, holds). The figures are reported, never asserted: the tests count the jobs a call touches instead.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

from .server import LocalCodePipeline

if TYPE_CHECKING:
    from mypy_boto3_codepipeline.type_defs import ActionTypeIdTypeDef

ACTION_TYPE = "Custom/Build/Measured/1"


def per_call_us(held: int, calls: int) -> float:
    """Microseconds per poll + acknowledge while the endpoint holds `held` claimed jobs."""
    with LocalCodePipeline() as endpoint:
        store = endpoint.store
        for _ in range(held):
            job_id = store.create_job(ACTION_TYPE, dispatched_nonce="1")
            store.acknowledge_job({"jobId": job_id, "nonce": "1"})
        for _ in range(calls + 10):
            store.create_job(ACTION_TYPE)
        client = boto3.client(
            "codepipeline",
            endpoint_url=endpoint.url,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - the local endpoint's throwaway credentials
            config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
        )
        type_id: ActionTypeIdTypeDef = {"owner": "Custom", "category": "Build", "provider": "Measured", "version": "1"}

        def round_trip() -> None:
            [job] = client.poll_for_jobs(actionTypeId=type_id)["jobs"]
            client.acknowledge_job(jobId=job["id"], nonce=job["nonce"])

        for _ in range(10):  # warm: connection, botocore's caches
            round_trip()
        started = time.perf_counter()
        for _ in range(calls):
            round_trip()
        return (time.perf_counter() - started) / calls / 2 * 1e6


def report(jobs: str, calls: int) -> str:
    lines = ["jobs held   µs per call (poll or acknowledge, boto3 over HTTP)"]
    for held in (int(n) for n in jobs.split(",")):
        lines.append(f"{held:>9}   {per_call_us(held, calls):8.0f}")
    return "\n".join(lines)
