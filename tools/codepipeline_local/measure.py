"""Per-call time of the endpoint by the number of jobs it holds: `python -m codepipeline_local measure`.

Two figures per number of jobs held (claimed jobs of the polled action type, what a busy endpoint, or the
benchmark's, holds), each the mean over `calls` rounds of one poll (maxBatchSize 1) and one acknowledgement:
- in the store: the endpoint's own work, its methods called directly (no HTTP, no SDK);
- over HTTP: the same calls through boto3 to the endpoint on 127.0.0.1, as a worker makes them.
The figures are reported, never asserted: the tests count the jobs a call touches instead.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from .server import LocalCodePipeline

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_codepipeline.type_defs import ActionTypeIdTypeDef

ACTION_TYPE = "Custom/Build/Measured/1"
TYPE_ID: ActionTypeIdTypeDef = {"owner": "Custom", "category": "Build", "provider": "Measured", "version": "1"}
WARM_UP = 10


def per_call_us(held: int, calls: int) -> tuple[float, float]:
    """Microseconds per call (poll or acknowledge) in the store and over HTTP, with `held` claimed jobs held."""
    with LocalCodePipeline() as endpoint:
        store = endpoint.store
        for _ in range(held):
            job_id = store.create_job(ACTION_TYPE, dispatched_nonce="1")
            store.acknowledge_job({"jobId": job_id, "nonce": "1"})
        for _ in range(2 * (calls + WARM_UP)):
            store.create_job(ACTION_TYPE)

        def in_store() -> None:
            [job] = store.poll_for_jobs({"actionTypeId": dict(TYPE_ID)})["jobs"]
            store.acknowledge_job({"jobId": job["id"], "nonce": job["nonce"]})

        client = boto3.client(
            "codepipeline",
            endpoint_url=endpoint.url,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - the local endpoint's throwaway credentials
            config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
        )

        def over_http() -> None:
            [job] = client.poll_for_jobs(actionTypeId=TYPE_ID)["jobs"]
            client.acknowledge_job(jobId=job["id"], nonce=job["nonce"])

        return _timed(in_store, calls), _timed(over_http, calls)


def _timed(round_trip: Callable[[], Any], calls: int) -> float:
    for _ in range(WARM_UP):  # connections, botocore's caches
        round_trip()
    started = time.perf_counter()
    for _ in range(calls):
        round_trip()
    return (time.perf_counter() - started) / calls / 2 * 1e6


def report(jobs: str, calls: int) -> str:
    lines = ["jobs held   µs per call in the store   µs per call over HTTP (boto3)"]
    for held in (int(n) for n in jobs.split(",")):
        store_us, http_us = per_call_us(held, calls)
        lines.append(f"{held:>9}   {store_us:22.0f}   {http_us:29.0f}")
    return "\n".join(lines)
