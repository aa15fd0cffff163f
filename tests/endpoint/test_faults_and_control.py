"""Fault injection, the control API and the command line."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError

from codepipeline_local import ControlClient, ControlError, Faults
from tests.endpoint.conftest import CUSTOM, client_for

if TYPE_CHECKING:
    from collections.abc import Iterator

    from codepipeline_local import LocalCodePipeline


def test_throttling_is_answered_as_the_service_does_and_retried(endpoint: LocalCodePipeline) -> None:
    endpoint.store.add_action_type("Custom/Build/MyTool/1")
    endpoint.set_faults(Faults(throttle=1.0))

    with pytest.raises(ClientError) as caught:
        client_for(endpoint.url, attempts=3).poll_for_jobs(actionTypeId=CUSTOM)

    assert caught.value.response["Error"]["Code"] == "ThrottlingException"
    assert caught.value.response["ResponseMetadata"]["RetryAttempts"] == 2
    assert endpoint.stats()["faults"] == {"throttle": 3}


def test_http_500_is_a_retried_internal_failure(endpoint: LocalCodePipeline) -> None:
    endpoint.store.add_action_type("Custom/Build/MyTool/1")
    endpoint.set_faults(Faults(http500=1.0))

    with pytest.raises(ClientError) as caught:
        client_for(endpoint.url, attempts=2).poll_for_jobs(actionTypeId=CUSTOM)

    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert caught.value.response["Error"]["Code"] == "InternalFailure"
    assert endpoint.stats()["calls"]["PollForJobs"] == 2


def test_a_dropped_connection_has_no_effect(endpoint: LocalCodePipeline) -> None:
    job_id = endpoint.store.create_job("Custom/Build/MyTool/1")
    endpoint.set_faults(Faults(drop=1.0))

    with pytest.raises(ConnectionClosedError):
        client_for(endpoint.url).poll_for_jobs(actionTypeId=CUSTOM)

    assert endpoint.store.job(job_id)["status"] == "Queued"


def test_faults_can_target_operations_and_are_reproducible(endpoint: LocalCodePipeline) -> None:
    endpoint.store.add_action_type("Custom/Build/MyTool/1")
    client = client_for(endpoint.url)

    def draws() -> list[str]:
        endpoint.set_faults(Faults(throttle=0.5, operations=("PollForJobs",), seed=7))
        outcomes = []
        for _ in range(20):
            try:
                client.poll_for_jobs(actionTypeId=CUSTOM)
                outcomes.append("ok")
            except ClientError:
                outcomes.append("throttled")
        return outcomes

    first = draws()
    assert first == draws()
    assert {"ok", "throttled"} == set(first)
    # An operation outside the list is untouched
    with pytest.raises(client.exceptions.JobNotFoundException):
        client.acknowledge_job(jobId="99999999-abcd-9999-abcd-999999abcdef", nonce="1")


@pytest.mark.parametrize(
    "faults",
    [{"throttle": 1.5}, {"throttle": 0.6, "drop": 0.6}, {"latencySeconds": -1}, {"operations": ["Nope"]}, {"bogus": 1}],
)
def test_impossible_faults_are_refused(endpoint: LocalCodePipeline, faults: dict[str, object]) -> None:
    with pytest.raises(ControlError):
        ControlClient(endpoint.url).set_faults(**faults)


def test_the_control_api_over_http(endpoint: LocalCodePipeline) -> None:
    control = ControlClient(endpoint.url)
    [custom] = control.create_jobs("Custom/Build/MyTool/1", configuration={"ProjectName": "web"})
    partner = control.create_jobs(
        "ThirdParty/Deploy/PartnerTool/2", 2, clientId="c1e7d1a0-1234-4abc-9def-0123456789ab", clientToken="t"
    )
    control.add_action_type("Custom/Test/Other/1")

    assert {j["jobId"] for j in control.jobs()} == {custom, *partner}
    assert control.job(custom)["configuration"] == {"ProjectName": "web"}
    assert control.set_faults(latencySeconds=0.01, throttle=0.1)["throttle"] == 0.1
    assert control.set_faults() == Faults().to_json()  # the poll below must not draw a fault
    assert control.set_dispatch_timeout(5)["dispatchTimeoutSeconds"] == 5.0
    assert endpoint.store.dispatch_timeout_s == 5.0
    client_for(endpoint.url).poll_for_jobs(actionTypeId={**CUSTOM, "category": "Test", "provider": "Other"})
    assert control.stats()["calls"] == {"PollForJobs": 1}
    control.reset()
    assert control.jobs() == []
    assert control.stats() == {"calls": {}, "faults": {}, "errors": {}}
    with pytest.raises(ControlError, match="no control route"):
        control._call("GET", "nothing")
    with pytest.raises(ControlError, match="count"):
        control.create_jobs("Custom/Build/MyTool/1", 2, jobId="11111111-abcd-1111-abcd-111111abcdef")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - the test's own interpreter and module
        [sys.executable, "-m", "codepipeline_local", *args], capture_output=True, text=True, check=False, timeout=30
    )


def test_the_command_line(endpoint: LocalCodePipeline) -> None:
    url = ["--url", endpoint.url]
    created = run_cli(
        "create-job", *url, "--action-type", "Custom/Build/MyTool/1", "--count", "2", "--config", "ProjectName=web"
    )
    assert created.returncode == 0, created.stderr
    assert len(json.loads(created.stdout)["jobIds"]) == 2
    partner = run_cli(
        "create-job",
        *url,
        "--action-type",
        "ThirdParty/Deploy/PartnerTool/2",
        "--client-id",
        "c1e7d1a0-1234-4abc-9def-0123456789ab",
        "--client-token",
        "t",
    )
    assert partner.returncode == 0, partner.stderr

    dispatched = run_cli(
        "create-job",
        *url,
        "--action-type",
        "Custom/Build/MyTool/1",
        "--job-id",
        "11111111-abcd-1111-abcd-111111abcdef",
        "--dispatched-nonce",
        "3",
    )
    assert dispatched.returncode == 0, dispatched.stderr
    jobs = json.loads(run_cli("jobs", *url).stdout)
    assert [j["status"] for j in jobs] == ["Queued"] * 3 + ["Dispatched"]
    assert json.loads(run_cli("job", *url, jobs[0]["jobId"]).stdout)["jobId"] == jobs[0]["jobId"]
    faults = json.loads(
        run_cli("faults", *url, "--throttle", "0.3", "--latency", "0.01", "--operations", "PollForJobs").stdout
    )
    assert (faults["throttle"], faults["operations"]) == (0.3, ["PollForJobs"])
    assert json.loads(run_cli("stats", *url).stdout)["calls"] == {}
    assert json.loads(run_cli("dispatch-timeout", *url, "2").stdout)["dispatchTimeoutSeconds"] == 2.0
    assert run_cli("reset", *url).returncode == 0
    assert endpoint.store.jobs() == []


def test_the_command_line_reports_a_refusal(endpoint: LocalCodePipeline) -> None:
    refused = run_cli("faults", "--url", endpoint.url, "--throttle", "2")
    assert refused.returncode == 1
    assert "share of calls" in refused.stderr


# `python -m codepipeline_local` with Ctrl-C's default disposition, as a terminal starts it: a shell starts its
# background jobs with SIGINT ignored, a disposition Python keeps, and a test run may be such a job.
_WITH_CTRL_C = (
    "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "runpy.run_module('codepipeline_local', run_name='__main__', alter_sys=True)"
)


@contextlib.contextmanager
def serving(*args: str) -> Iterator[subprocess.Popen[str]]:
    """`serve` in a process of its own, stopped with Ctrl-C (SIGINT) at the end; its exit status checked. A process
    that does not stop in 30 s is killed, and the test fails rather than waits."""
    with subprocess.Popen(  # noqa: S603 - this interpreter, the test's own arguments
        [sys.executable, "-c", _WITH_CTRL_C, "serve", *args], stdout=subprocess.PIPE, text=True
    ) as process:
        try:
            yield process
        finally:
            process.send_signal(signal.SIGINT)
            try:
                status = process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                raise
        assert status == 0


def test_serve_runs_the_endpoint_on_loopback() -> None:
    # Given the endpoint started alone, as `make endpoint` does
    with serving("--port", "0") as process:
        assert process.stdout is not None
        url = process.stdout.readline().strip().rsplit(" ", 1)[-1]
        # When a job is created through it, then it is there
        assert url.startswith("http://127.0.0.1:")
        assert len(ControlClient(url).create_jobs("Custom/Build/MyTool/1")) == 1


def test_serve_with_moto_keeps_artifacts_in_its_s3() -> None:
    # Given `make endpoint`: the endpoint with a moto server of its own for S3 and KMS
    with serving("--port", "0", "--moto", "--credentials-ttl", "60") as process:
        assert process.stdout is not None
        lines = [process.stdout.readline().strip() for _ in range(4)]
        url = lines[0].rsplit(" ", 1)[-1]
        assert lines[3].startswith("export AWS_ENDPOINT_URL_S3=http://127.0.0.1:")
        # When a job is seeded with input files and a new key, then they are in its S3, encrypted
        control = ControlClient(url)
        [job_id] = control.create_jobs(
            "Custom/Build/MyTool/1", inputArtifacts=[{"name": "Src", "files": {"a.txt": "a"}}], encryptionKey="new"
        )
        described, content = control.artifact(job_id, "Src")
        assert (described["exists"], described["encryption"]) == (True, "aws:kms")
        assert content is not None
        assert control.settings()["credentialsTtlSeconds"] == 60


def test_serve_on_a_busy_port_says_so_in_one_line(endpoint: LocalCodePipeline) -> None:
    port = endpoint.url.rsplit(":", 1)[-1]

    done = run_cli("serve", "--port", port)

    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"error: port {port} on 127.0.0.1 is in use: choose another, --port N (make endpoint ENDPOINT_PORT=N)"
    ]


def test_an_endpoint_that_stops_answering_has_no_effect_and_recovers(endpoint: LocalCodePipeline) -> None:
    # Given an endpoint that answers two calls, then stops answering
    jobs = [endpoint.store.create_job("Custom/Build/MyTool/1") for _ in range(3)]
    endpoint.set_faults(Faults(hang_after=2))
    # (the calls it answers wait as long as a loaded machine needs; only the one it does not answer is cut short)
    client, impatient = client_for(endpoint.url), client_for(endpoint.url, read_timeout=0.3)
    assert len(client.poll_for_jobs(actionTypeId=CUSTOM)["jobs"]) == 1
    assert len(client.poll_for_jobs(actionTypeId=CUSTOM)["jobs"]) == 1

    # When a third call is made, then it times out and changed nothing
    with pytest.raises(ReadTimeoutError):
        impatient.poll_for_jobs(actionTypeId=CUSTOM)
    assert [endpoint.store.job(j)["status"] for j in jobs].count("Queued") == 1
    assert endpoint.stats()["faults"]["hang"] == 1

    # And once the faults change, the endpoint answers again
    endpoint.set_faults(Faults())
    assert len(client.poll_for_jobs(actionTypeId=CUSTOM)["jobs"]) == 1


def test_a_jobs_trail_shows_each_acknowledgement_attempt_by_its_nonces_dispatch_never_the_nonce(
    endpoint: LocalCodePipeline,
) -> None:
    # Given a job dispatched twice (the first dispatch timed out), and a throttled first acknowledgement
    endpoint.store.add_action_type("Custom/Build/MyTool/1")
    job_id = endpoint.store.create_job("Custom/Build/MyTool/1", dispatched_nonce="4444444444")
    endpoint.store.dispatch_timeout_s = 0.0
    endpoint.store.jobs()
    endpoint.store.dispatch_timeout_s = 60.0
    client = client_for(endpoint.url)
    [job] = client.poll_for_jobs(actionTypeId=CUSTOM)["jobs"]
    endpoint.set_faults(Faults(throttle=1.0, operations=("AcknowledgeJob",)))
    with pytest.raises(ClientError):
        client.acknowledge_job(jobId=job_id, nonce=job["nonce"])
    endpoint.set_faults(Faults())

    # When it is acknowledged with the stale nonce, the current one (twice), and one never issued
    for nonce in ("4444444444", job["nonce"], job["nonce"], "never-issued"):
        with contextlib.suppress(ClientError):
            client.acknowledge_job(jobId=job_id, nonce=nonce)

    # Then its trail names each attempt, its answer, and the dispatch whose nonce it carried; never a nonce
    trail = endpoint.store.trail(job_id)
    calls = [(e["call"], e["answer"], e.get("nonceOf")) for e in trail if "call" in e]
    assert calls == [
        ("AcknowledgeJob", "fault: throttle", 2),
        ("AcknowledgeJob", "InvalidNonceException", 1),
        ("AcknowledgeJob", "InProgress", 2),
        ("AcknowledgeJob", "InProgress", 2),
        ("AcknowledgeJob", "InvalidNonceException", 0),
    ]
    assert [e["event"] for e in trail if "event" in e][:4] == [
        "created",
        "dispatched",
        "dispatch timed out",
        "dispatched",
    ]
    assert not any(s in json.dumps(trail) for s in endpoint.store.issued_secrets())
