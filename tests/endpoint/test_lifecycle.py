"""The job life cycle, through the real boto3 client over HTTP."""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest

from codepipeline_local import ControlClient, ControlError, LocalCodePipeline
from tests.endpoint.conftest import CLIENT_ID, CLIENT_TOKEN, CUSTOM, PARTNER, client_for
from tests.endpoint.test_faults_and_control import run_cli

if TYPE_CHECKING:
    from mypy_boto3_codepipeline import CodePipelineClient

UNKNOWN_ID = "99999999-abcd-9999-abcd-999999abcdef"


def status_of(endpoint: LocalCodePipeline, job_id: str) -> str:
    return str(endpoint.store.job(job_id)["status"])


def test_poll_dispatches_with_a_nonce_and_acknowledging_claims(
    endpoint: LocalCodePipeline, client: CodePipelineClient
) -> None:
    job_id = endpoint.store.create_job("Custom/Build/MyTool/1", configuration={"ProjectName": "web"})
    assert status_of(endpoint, job_id) == "Queued"

    [job] = client.poll_for_jobs(actionTypeId=CUSTOM, maxBatchSize=5)["jobs"]

    assert job["id"] == job_id
    assert status_of(endpoint, job_id) == "Dispatched"
    data = job["data"]
    assert data["actionConfiguration"]["configuration"] == {"ProjectName": "web"}
    assert set(data["artifactCredentials"]) == {"accessKeyId", "secretAccessKey", "sessionToken"}
    assert data["pipelineContext"]["pipelineName"] == "local-pipeline"
    assert client.acknowledge_job(jobId=job_id, nonce=job["nonce"])["status"] == "InProgress"
    assert status_of(endpoint, job_id) == "InProgress"
    assert [h["event"] for h in endpoint.store.job(job_id)["history"]] == ["created", "dispatched", "acknowledged"]


def test_a_dispatched_job_is_not_polled_again(endpoint: LocalCodePipeline, client: CodePipelineClient) -> None:
    endpoint.store.create_job("Custom/Build/MyTool/1")
    assert len(client.poll_for_jobs(actionTypeId=CUSTOM)["jobs"]) == 1
    assert client.poll_for_jobs(actionTypeId=CUSTOM)["jobs"] == []


def test_max_batch_size_defaults_to_one_and_is_honoured(
    endpoint: LocalCodePipeline, client: CodePipelineClient
) -> None:
    for _ in range(5):
        endpoint.store.create_job("Custom/Build/MyTool/1")
    assert len(client.poll_for_jobs(actionTypeId=CUSTOM)["jobs"]) == 1
    assert len(client.poll_for_jobs(actionTypeId=CUSTOM, maxBatchSize=3)["jobs"]) == 3


def test_any_other_nonce_is_refused_and_a_second_worker_too(
    endpoint: LocalCodePipeline, client: CodePipelineClient
) -> None:
    job_id = endpoint.store.create_job("Custom/Build/MyTool/1")
    [job] = client.poll_for_jobs(actionTypeId=CUSTOM)["jobs"]
    with pytest.raises(client.exceptions.InvalidNonceException):
        client.acknowledge_job(jobId=job_id, nonce="1")
    assert client.acknowledge_job(jobId=job_id, nonce=job["nonce"])["status"] == "InProgress"

    # A second worker, with any other nonce, is refused; the first may ask again harmlessly
    with pytest.raises(client.exceptions.InvalidNonceException):
        client.acknowledge_job(jobId=job_id, nonce="2")
    assert client.acknowledge_job(jobId=job_id, nonce=job["nonce"])["status"] == "InProgress"
    assert endpoint.store.job(job_id)["acknowledgements"] == 1


def test_an_undispatched_job_has_no_valid_nonce(endpoint: LocalCodePipeline, client: CodePipelineClient) -> None:
    job_id = endpoint.store.create_job("Custom/Build/MyTool/1")
    with pytest.raises(client.exceptions.InvalidNonceException):
        client.acknowledge_job(jobId=job_id, nonce="3")


def test_unknown_jobs_are_not_found(endpoint: LocalCodePipeline, client: CodePipelineClient) -> None:
    partner_id = endpoint.store.create_job(
        "ThirdParty/Deploy/PartnerTool/2", client_id=CLIENT_ID, client_token=CLIENT_TOKEN
    )
    with pytest.raises(client.exceptions.JobNotFoundException):
        client.acknowledge_job(jobId=UNKNOWN_ID, nonce="3")
    with pytest.raises(client.exceptions.JobNotFoundException):
        client.acknowledge_job(jobId=partner_id, nonce="3")  # a partner job is not a custom job
    with pytest.raises(client.exceptions.JobNotFoundException):
        client.get_job_details(jobId=UNKNOWN_ID)


def test_an_unacknowledged_job_is_dispatched_again_with_a_new_nonce(client: CodePipelineClient) -> None:
    from codepipeline_local import LocalCodePipeline

    with LocalCodePipeline(dispatch_timeout_s=0.1) as endpoint:
        from tests.endpoint.conftest import client_for

        fast = client_for(endpoint.url)
        job_id = endpoint.store.create_job("Custom/Build/MyTool/1")
        [first] = fast.poll_for_jobs(actionTypeId=CUSTOM)["jobs"]
        time.sleep(0.2)
        assert status_of(endpoint, job_id) == "Queued"

        [second] = fast.poll_for_jobs(actionTypeId=CUSTOM)["jobs"]

        assert second["id"] == job_id
        assert second["nonce"] != first["nonce"]
        with pytest.raises(fast.exceptions.InvalidNonceException):
            fast.acknowledge_job(jobId=job_id, nonce=first["nonce"])
        assert fast.acknowledge_job(jobId=job_id, nonce=second["nonce"])["status"] == "InProgress"
        events = [h["event"] for h in endpoint.store.job(job_id)["history"]]
        assert events == [
            "created",
            "dispatched",
            "dispatch timed out",
            "dispatched",
            "acknowledge refused",
            "acknowledged",
        ]


def test_success_with_a_continuation_token_queues_a_follow_up(
    endpoint: LocalCodePipeline, client: CodePipelineClient
) -> None:
    job_id = endpoint.store.create_job("Custom/Build/MyTool/1", configuration={"ProjectName": "web"})
    [job] = client.poll_for_jobs(actionTypeId=CUSTOM)["jobs"]
    client.acknowledge_job(jobId=job_id, nonce=job["nonce"])

    client.put_job_success_result(jobId=job_id, continuationToken="step-2")

    assert status_of(endpoint, job_id) == "Succeeded"
    [follow_up] = client.poll_for_jobs(actionTypeId=CUSTOM)["jobs"]
    assert follow_up["id"] != job_id
    assert follow_up["data"]["continuationToken"] == "step-2"
    assert follow_up["data"]["actionConfiguration"]["configuration"] == {"ProjectName": "web"}
    assert endpoint.store.job(job_id)["history"][-1]["followUpJobId"] == follow_up["id"]


def test_results_need_a_job_in_progress(endpoint: LocalCodePipeline, client: CodePipelineClient) -> None:
    job_id = endpoint.store.create_job("Custom/Build/MyTool/1")
    with pytest.raises(client.exceptions.InvalidJobStateException):
        client.put_job_success_result(jobId=job_id)
    [job] = client.poll_for_jobs(actionTypeId=CUSTOM)["jobs"]
    client.acknowledge_job(jobId=job_id, nonce=job["nonce"])

    client.put_job_failure_result(jobId=job_id, failureDetails={"type": "JobFailed", "message": "tests failed"})

    assert status_of(endpoint, job_id) == "Failed"
    assert endpoint.store.job(job_id)["history"][-1]["failureMessage"] == "tests failed"
    assert client.acknowledge_job(jobId=job_id, nonce=job["nonce"])["status"] == "Failed"


def test_job_details(endpoint: LocalCodePipeline, client: CodePipelineClient) -> None:
    job_id = endpoint.store.create_job("Custom/Build/MyTool/1", account_id="210987654321")
    details = client.get_job_details(jobId=job_id)["jobDetails"]
    assert (details["id"], details["accountId"]) == (job_id, "210987654321")
    assert details["data"]["actionTypeId"] == CUSTOM


def test_an_action_type_that_does_not_exist(endpoint: LocalCodePipeline, client: CodePipelineClient) -> None:
    endpoint.store.create_job("Custom/Build/MyTool/1")
    with pytest.raises(client.exceptions.ActionTypeNotFoundException):
        client.poll_for_jobs(actionTypeId={**CUSTOM, "version": "2"})
    with pytest.raises(client.exceptions.ActionTypeNotFoundException):
        client.poll_for_third_party_jobs(actionTypeId=CUSTOM)  # a custom type is not a partner type
    endpoint.store.add_action_type("Custom/Build/Empty/1")
    assert client.poll_for_jobs(actionTypeId={**CUSTOM, "provider": "Empty"})["jobs"] == []


def test_the_partner_life_cycle(endpoint: LocalCodePipeline, client: CodePipelineClient) -> None:
    job_id = endpoint.store.create_job(
        "ThirdParty/Deploy/PartnerTool/2", client_id=CLIENT_ID, client_token=CLIENT_TOKEN
    )
    with pytest.raises(client.exceptions.InvalidJobException):
        client.get_third_party_job_details(jobId=job_id, clientToken=CLIENT_TOKEN)  # not dispatched yet

    assert client.poll_for_third_party_jobs(actionTypeId=PARTNER, maxBatchSize=5)["jobs"] == [
        {"clientId": CLIENT_ID, "jobId": job_id}
    ]
    with pytest.raises(client.exceptions.InvalidClientTokenException):
        client.get_third_party_job_details(jobId=job_id, clientToken="wrong")
    details = client.get_third_party_job_details(jobId=job_id, clientToken=CLIENT_TOKEN)["jobDetails"]
    with pytest.raises(client.exceptions.InvalidClientTokenException):
        client.acknowledge_third_party_job(jobId=job_id, nonce=details["nonce"], clientToken="wrong")
    status = client.acknowledge_third_party_job(jobId=job_id, nonce=details["nonce"], clientToken=CLIENT_TOKEN)

    assert status["status"] == "InProgress"
    # Once claimed, the details no longer hand out the nonce: no second worker can claim the job with it
    assert "nonce" not in client.get_third_party_job_details(jobId=job_id, clientToken=CLIENT_TOKEN)["jobDetails"]
    with pytest.raises(client.exceptions.InvalidClientTokenException):
        client.put_third_party_job_success_result(jobId=job_id, clientToken="wrong")
    client.put_third_party_job_success_result(jobId=job_id, clientToken=CLIENT_TOKEN, continuationToken="next")
    [follow_up] = client.poll_for_third_party_jobs(actionTypeId=PARTNER)["jobs"]
    assert follow_up["clientId"] == CLIENT_ID


def test_partner_failure_result(endpoint: LocalCodePipeline, client: CodePipelineClient) -> None:
    job_id = endpoint.store.create_job(
        "ThirdParty/Deploy/PartnerTool/2", client_id=CLIENT_ID, client_token=CLIENT_TOKEN, dispatched_nonce="5"
    )
    client.acknowledge_third_party_job(jobId=job_id, nonce="5", clientToken=CLIENT_TOKEN)

    client.put_third_party_job_failure_result(
        jobId=job_id, clientToken=CLIENT_TOKEN, failureDetails={"type": "JobFailed", "message": "no"}
    )

    assert status_of(endpoint, job_id) == "Failed"


def test_many_threads_at_once_dispatch_each_job_once(endpoint: LocalCodePipeline) -> None:
    # Given 200 jobs and 16 threads polling them as fast as they can
    from tests.endpoint.conftest import client_for

    for _ in range(200):
        endpoint.store.create_job("Custom/Build/MyTool/1")
    seen: list[str] = []
    lock = threading.Lock()

    def poll_all() -> None:
        client = client_for(endpoint.url)
        while jobs := client.poll_for_jobs(actionTypeId=CUSTOM, maxBatchSize=3)["jobs"]:
            for job in jobs:
                client.acknowledge_job(jobId=job["id"], nonce=job["nonce"])
            with lock:
                seen.extend(job["id"] for job in jobs)

    threads = [threading.Thread(target=poll_all) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then every job was handed out exactly once and is claimed
    assert len(seen) == 200
    assert len(set(seen)) == 200
    assert {job["status"] for job in endpoint.store.jobs()} == {"InProgress"}


def test_creating_jobs_checks_what_it_is_given(endpoint: LocalCodePipeline) -> None:
    with pytest.raises(ValueError, match="clientId and clientToken"):
        endpoint.store.create_job("ThirdParty/Deploy/PartnerTool/2")
    with pytest.raises(ValueError, match="Owner/Category/Provider/Version"):
        endpoint.store.create_job("Custom/Build")
    job_id = endpoint.store.create_job("Custom/Build/MyTool/1")
    with pytest.raises(ValueError, match="exists"):
        endpoint.store.create_job("Custom/Build/MyTool/1", job_id=job_id)


def _summary_has_no_secrets(summary: dict[str, Any]) -> bool:
    return "nonce" not in summary and "clientToken" not in summary


def test_job_summaries_hold_no_nonce_or_token(endpoint: LocalCodePipeline) -> None:
    endpoint.store.create_job(
        "ThirdParty/Deploy/PartnerTool/2", client_id=CLIENT_ID, client_token=CLIENT_TOKEN, dispatched_nonce="7"
    )
    assert all(_summary_has_no_secrets(s) for s in endpoint.store.jobs())


def test_a_created_job_is_polled_only_once_queued(endpoint: LocalCodePipeline, client: CodePipelineClient) -> None:
    # Given a job seeded Created (its action started, not yet queued for workers)
    control = ControlClient(endpoint.url)
    [job_id] = control.create_jobs("Custom/Build/MyTool/1", status="Created")
    assert client.poll_for_jobs(actionTypeId=CUSTOM)["jobs"] == []

    # When it is queued, then a poll hands it out
    assert control.queue(job_id)["status"] == "Queued"
    assert [j["id"] for j in client.poll_for_jobs(actionTypeId=CUSTOM)["jobs"]] == [job_id]
    assert [h["event"] for h in endpoint.store.job(job_id)["history"]] == ["created", "queued", "dispatched"]
    with pytest.raises(ControlError, match="not Created"):
        control.queue(job_id)


def claimed(endpoint: LocalCodePipeline, client: CodePipelineClient, **fields: Any) -> tuple[str, str]:
    """A custom job, polled and acknowledged: its id and nonce."""
    job_id = endpoint.store.create_job("Custom/Build/MyTool/1", **fields)
    [job] = client.poll_for_jobs(actionTypeId=CUSTOM)["jobs"]
    assert client.acknowledge_job(jobId=job_id, nonce=job["nonce"])["status"] == "InProgress"
    return job_id, job["nonce"]


def test_a_job_timed_out_refuses_its_results(endpoint: LocalCodePipeline, client: CodePipelineClient) -> None:
    # Given a claimed job
    job_id, nonce = claimed(endpoint, client)

    # When it times out (the control call does what the action's timeout does)
    assert ControlClient(endpoint.url).time_out(job_id)["status"] == "TimedOut"

    # Then its worker learns it from every call it can make
    assert client.acknowledge_job(jobId=job_id, nonce=nonce)["status"] == "TimedOut"
    with pytest.raises(client.exceptions.InvalidJobStateException):
        client.put_job_success_result(jobId=job_id)
    with pytest.raises(client.exceptions.InvalidJobStateException):
        client.put_job_failure_result(jobId=job_id, failureDetails={"type": "JobFailed", "message": "late"})
    assert client.get_job_details(jobId=job_id)["jobDetails"]["id"] == job_id
    events = [h["event"] for h in endpoint.store.job(job_id)["history"]]
    assert events[-3:] == ["timed out", "result refused", "result refused"]
    with pytest.raises(ControlError, match="can no longer time out"):
        ControlClient(endpoint.url).time_out(job_id)


def test_a_partner_job_timed_out_has_no_details(endpoint: LocalCodePipeline, client: CodePipelineClient) -> None:
    job_id = endpoint.store.create_job(
        "ThirdParty/Deploy/PartnerTool/2", client_id=CLIENT_ID, client_token=CLIENT_TOKEN, dispatched_nonce="5"
    )
    endpoint.store.time_out(job_id)

    with pytest.raises(client.exceptions.InvalidJobException):
        client.get_third_party_job_details(jobId=job_id, clientToken=CLIENT_TOKEN)
    assert client.acknowledge_third_party_job(jobId=job_id, nonce="5", clientToken=CLIENT_TOKEN)["status"] == "TimedOut"
    with pytest.raises(client.exceptions.InvalidJobStateException):
        client.put_third_party_job_success_result(jobId=job_id, clientToken=CLIENT_TOKEN)


def wait_for_status(endpoint: LocalCodePipeline, job_id: str, status: str, limit_s: float = 30) -> None:
    """Wait until the job reaches the status (the endpoint applies due timeouts whenever it is read)."""
    deadline = time.monotonic() + limit_s
    while endpoint.store.job(job_id)["status"] != status:
        assert time.monotonic() < deadline, f"job {job_id} never became {status}"
        time.sleep(0.02)


@pytest.mark.parametrize("state", ["Queued", "Dispatched", "InProgress", "Created"])
def test_the_action_timeout_times_out_a_job_in_any_unfinished_state(state: str) -> None:
    with LocalCodePipeline(action_timeout_s=0.3) as endpoint:
        client = client_for(endpoint.url)
        if state == "InProgress":
            job_id, _ = claimed(endpoint, client)
        else:
            job_id = endpoint.store.create_job(
                "Custom/Build/MyTool/1", status="Created" if state == "Created" else "Queued"
            )
            if state == "Dispatched":
                client.poll_for_jobs(actionTypeId=CUSTOM)
        assert endpoint.store.job(job_id)["status"] == state

        wait_for_status(endpoint, job_id, "TimedOut")

        assert client.poll_for_jobs(actionTypeId=CUSTOM)["jobs"] == []
        last = endpoint.store.job(job_id)["history"][-1]
        assert (last["event"], last["timeoutSeconds"]) == ("timed out", 0.3)


def test_timeouts_are_settable_per_endpoint_type_and_job(endpoint: LocalCodePipeline) -> None:
    control = ControlClient(endpoint.url)
    assert control.settings(actionTimeoutSeconds=600)["actionTimeoutSeconds"] == 600
    control.add_action_type("Custom/Deploy/Slow/1", timeoutSeconds=7200)
    [by_endpoint] = control.create_jobs("Custom/Build/MyTool/1")
    [by_type] = control.create_jobs("Custom/Deploy/Slow/1")
    [by_job] = control.create_jobs("Custom/Deploy/Slow/1", timeoutSeconds=30)

    assert [control.job(j)["timeoutSeconds"] for j in (by_endpoint, by_type, by_job)] == [600, 7200, 30]
    with pytest.raises(ControlError, match="60 to 43200"):
        control.add_action_type("Custom/Deploy/Slow/2", timeoutSeconds=5)


def test_the_command_line_times_out_and_queues(endpoint: LocalCodePipeline) -> None:
    url = ["--url", endpoint.url]
    held = endpoint.store.create_job("Custom/Build/MyTool/1", status="Created")
    queued = endpoint.store.create_job("Custom/Build/MyTool/1")

    assert run_cli("queue", *url, held).returncode == 0
    timed_out = run_cli("time-out", *url, queued)

    assert timed_out.returncode == 0, timed_out.stderr
    assert {j["jobId"]: j["status"] for j in endpoint.store.jobs()} == {held: "Queued", queued: "TimedOut"}
    settings = run_cli("settings", *url, "--action-timeout", "90", "--credentials-ttl", "30")
    assert json.loads(settings.stdout) == {
        "dispatchTimeoutSeconds": 60.0,
        "actionTimeoutSeconds": 90.0,
        "credentialsTtlSeconds": 30.0,
    }
