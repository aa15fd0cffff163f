"""Faults over real HTTP: throttling, HTTP 500, dropped connections, a slow endpoint, one that stops answering
mid-batch, a failing Secrets Manager. For each: every job is acknowledged or reported with its reason, none is
acknowledged twice, the invocation ends before its deadline, and the next run claims what was left."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from codepipeline_local import Faults, LocalCodePipeline
from codepipeline_worker.acknowledger.handler import lambda_handler
from tests.conftest import TEST_ENV, FakeLambdaContext, closed_port, load_event
from tests.integration.conftest import CLIENT_ID, CUSTOM, EVENT_TOKEN, PARTNER, WorkerFactory, issued_secrets

if TYPE_CHECKING:
    from collections.abc import Callable

    from codepipeline_worker.acknowledger.service import JobService

NOT_ACKNOWLEDGED = {"NotAttempted", "DeadlineExceeded", "ReadTimeoutError"}


def scheduled(worker: JobService, remaining_ms: int = 180_000) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    result = lambda_handler(load_event("scheduled.json"), FakeLambdaContext(remaining_ms=remaining_ms), service=worker)
    return result, time.monotonic() - started


def assert_each_job_accounted_for(endpoint: LocalCodePipeline, result: dict[str, Any], jobs: list[str]) -> Counter[str]:
    """Every job has one result, acknowledged or failed with a reason; none is acknowledged twice."""
    by_job = {r["jobId"]: r for r in result["results"]}
    outcomes: Counter[str] = Counter()
    for job_id in jobs:
        summary = endpoint.store.job(job_id)
        assert summary["acknowledgements"] <= 1
        entry = by_job.get(job_id)
        if entry is None:  # never polled in this run: still Queued, for the next run
            assert summary["status"] == "Queued", summary
            outcomes["not polled"] += 1
            continue
        outcomes[entry["outcome"] + (":" + entry["error"] if "error" in entry else "")] += 1
        assert entry["outcome"] in ("acknowledged", "failed", "conflict"), entry
        if entry["outcome"] == "failed":
            assert entry["error"] in NOT_ACKNOWLEDGED, entry
        if entry["outcome"] == "conflict":  # the nonce went stale while the call waited: dispatched again
            assert entry["error"] == "InvalidNonceException", entry
    return outcomes


def wait_for_redispatch(endpoint: LocalCodePipeline, timeout_s: float = 60.0) -> None:
    """Wait, on conditions rather than a guessed pause, until the next poll gets every job the last run did not
    claim: the calls the run left in flight at its deadline have ended (its pool's threads, `codepipeline_<n>`, are
    gone), and every job
    still Dispatched was dispatched longer ago than the dispatch timeout. `timeout_s` only bounds a failing test."""

    def ready() -> bool:
        if any(t.name.startswith("codepipeline_") and t.is_alive() for t in threading.enumerate()):
            return False
        now = time.monotonic()
        return all(
            job.status != "Dispatched" or now - job.dispatched_at > endpoint.store.dispatch_timeout_s
            for job in endpoint.store._jobs.values()  # the endpoint's own record of each dispatch
        )

    ends = time.monotonic() + timeout_s
    while not ready():
        assert time.monotonic() < ends, "the last run's calls did not end, or its jobs were not dispatched again"
        time.sleep(0.05)


def assert_all_claimed_once(endpoint: LocalCodePipeline, jobs: list[str]) -> None:
    for job_id in jobs:
        summary = endpoint.store.job(job_id)
        assert (summary["status"], summary["acknowledgements"]) == ("InProgress", 1), summary


@pytest.mark.parametrize(
    ("faults", "label"),
    [
        (Faults(throttle=0.3, seed=11), "30% ThrottlingException"),
        (Faults(http500=0.3, seed=12), "30% HTTP 500"),
        (Faults(drop=0.2, seed=13), "20% dropped connections"),
        (Faults(throttle=0.1, http500=0.1, drop=0.1, jitter_s=0.02, seed=14), "10% each, with jitter"),
    ],
)
def test_retried_faults_still_claim_every_job_once(
    faults: Faults, label: str, make_worker: WorkerFactory, emitted: Callable[[], str]
) -> None:
    with LocalCodePipeline() as endpoint:
        jobs = [endpoint.store.create_job(CUSTOM) for _ in range(40)]
        endpoint.set_faults(faults)

        # Ten attempts per call: a poll's worst case then needs Lambda's longest timeout
        result, _ = scheduled(
            make_worker(url=endpoint.url, AWS_MAX_ATTEMPTS="10", ACTION_TYPES=CUSTOM), remaining_ms=900_000
        )

        assert result["counts"]["acknowledged"] == 40
        assert_all_claimed_once(endpoint, jobs)
        stats = endpoint.stats()
        assert sum(stats["faults"].values()) > 0
        text = emitted()
        assert not [secret for secret in issued_secrets(endpoint) if secret in text]
        print(f"\n{label}: 40/40 acknowledged; endpoint {json.dumps(stats)}")


# Budgets that fit a test: one attempt per call, 0.2 s to connect and 1 s to read: a call's worst case is 1.2 s, a
# custom poll's (the poll and a claim) 2.4 s.
SHORT_CALLS = {"AWS_MAX_ATTEMPTS": "1", "CONNECT_TIMEOUT_S": "0.2", "READ_TIMEOUT_S": "1"}


def test_a_slow_endpoint_cannot_hold_the_invocation_past_its_deadline(make_worker: WorkerFactory) -> None:
    with LocalCodePipeline(dispatch_timeout_s=1.0) as endpoint:
        # Given 30 jobs, 0.4 s per call, and 4 s left (the worker keeps 1 s for itself)
        jobs = [endpoint.store.create_job(CUSTOM) for _ in range(30)]
        endpoint.set_faults(Faults(latency_s=0.4))
        worker = make_worker(url=endpoint.url, ACTION_TYPES=CUSTOM, ACK_CONCURRENCY="2", **SHORT_CALLS)

        result, elapsed = scheduled(worker, remaining_ms=4_000)

        # Then it returned before the deadline, with every job's fate: no claim started without time for its
        # worst case, so none was cut off
        assert elapsed < 4.0
        outcomes = assert_each_job_accounted_for(endpoint, result, jobs)
        assert outcomes["failed:NotAttempted"] > 0  # the deadline cut in
        assert outcomes["failed:DeadlineExceeded"] == 0

        # And the next run, once the endpoint is quick again, claims everything left, after re-dispatch
        endpoint.set_faults(Faults())
        wait_for_redispatch(endpoint)
        scheduled(worker)
        assert_all_claimed_once(endpoint, jobs)
        print(f"\nslow endpoint (0.4 s per call, 4 s left): returned in {elapsed:.2f} s; first run {dict(outcomes)}")


def test_an_endpoint_that_stops_answering_mid_batch(make_worker: WorkerFactory) -> None:
    with LocalCodePipeline(dispatch_timeout_s=1.0) as endpoint:
        # Given an endpoint that answers the poll and four acknowledgements, then nothing
        jobs = [endpoint.store.create_job(CUSTOM) for _ in range(10)]
        endpoint.set_faults(Faults(hang_after=5))
        worker = make_worker(url=endpoint.url, ACTION_TYPES=CUSTOM, ACK_CONCURRENCY="1", **SHORT_CALLS)

        result, elapsed = scheduled(worker, remaining_ms=4_000)

        # Then the silent calls time out within their budget, claims stop when no budget fits, and the
        # invocation returns in time. The five calls answered: the poll, the acknowledgements, and the second poll
        # (the first batch was full) if it came before the endpoint fell silent
        assert elapsed < 4.0
        outcomes = assert_each_job_accounted_for(endpoint, result, jobs)
        claimed = outcomes["acknowledged"]
        assert result["polls"][0]["polls"] + claimed == 5
        assert outcomes["failed:ReadTimeoutError"] >= 1
        assert outcomes["failed:NotAttempted"] >= 1
        assert claimed + outcomes["failed:ReadTimeoutError"] + outcomes["failed:NotAttempted"] == 10

        # When the endpoint answers again, the next run claims the others after re-dispatch
        endpoint.set_faults(Faults())
        wait_for_redispatch(endpoint)
        again, _ = scheduled(worker)
        assert again["counts"]["acknowledged"] == 10 - claimed
        assert_all_claimed_once(endpoint, jobs)
        print(f"\nendpoint silent after 5 calls (4 s left): returned in {elapsed:.2f} s; first run {dict(outcomes)}")


def test_a_failing_secret_lookup_fails_only_the_partner_jobs(
    monkeypatch: pytest.MonkeyPatch, endpoint: LocalCodePipeline, emitted: Callable[[], str]
) -> None:
    # Given Secrets Manager cannot be reached, at cold start (a passing fault: the cold start goes on) and after
    custom = [endpoint.store.create_job(CUSTOM) for _ in range(3)]
    partner = [endpoint.store.create_job(PARTNER, client_id=CLIENT_ID, client_token=EVENT_TOKEN) for _ in range(2)]
    monkeypatch.setenv("AWS_ENDPOINT_URL_CODEPIPELINE", endpoint.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", f"http://127.0.0.1:{closed_port()}")
    from codepipeline_worker.acknowledger.config import load_settings
    from codepipeline_worker.acknowledger.service import JobService

    worker = JobService.from_settings(
        load_settings({**TEST_ENV, "CLIENT_TOKEN_SECRET_ID": "tokens", "AWS_MAX_ATTEMPTS": "1"})
    )
    assert '"client-token secret not readable at cold start' in emitted()

    # When the schedule fires
    result, _ = scheduled(worker)

    # Then the custom jobs are claimed and only the partner jobs fail, with the reason
    by_job = {r["jobId"]: r for r in result["results"]}
    assert [by_job[j]["outcome"] for j in custom] == ["acknowledged"] * 3
    assert [by_job[j]["error"] for j in partner] == ["ClientTokenUnavailable"] * 2
    assert all(endpoint.store.job(j)["status"] == "Dispatched" for j in partner)


def _cold_start(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "import codepipeline_worker.acknowledger.handler"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        (None, "CLIENT_TOKEN_SECRET_ID: the client-token secret could not be read (ResourceNotFoundException)"),
        ('["not a map"]', "CLIENT_TOKEN_SECRET_ID: the client-token secret must be a JSON object mapping clientId"),
        ("plain text", "CLIENT_TOKEN_SECRET_ID: the client-token secret is not JSON"),
    ],
)
def test_a_missing_or_malformed_secret_fails_the_cold_start(secrets_url: str, secret: str | None, message: str) -> None:
    name = f"tokens-{time.monotonic_ns()}"
    if secret is not None:
        client = boto3.client("secretsmanager", endpoint_url=secrets_url, region_name="us-east-1")
        client.create_secret(Name=name, SecretString=secret)

    done = _cold_start({"CLIENT_TOKEN_SECRET_ID": name, "AWS_ENDPOINT_URL_SECRETS_MANAGER": secrets_url})

    assert done.returncode != 0
    assert f"ConfigurationError: invalid configuration: {message}" in done.stderr
