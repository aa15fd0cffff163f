"""A call's cost does not grow with the jobs the endpoint holds: counted as the jobs a call touches (reads or writes
an attribute of), not timed. `python -m codepipeline_local measure` reports the time per call."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from codepipeline_local.jobs import Job
from tests.endpoint.conftest import CLIENT_ID, CLIENT_TOKEN, CUSTOM, PARTNER
from tests.endpoint.test_faults_and_control import run_cli

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_codepipeline import CodePipelineClient

    from codepipeline_local import LocalCodePipeline

type Touched = Callable[[Callable[[], Any]], int]


@pytest.fixture
def touched(monkeypatch: pytest.MonkeyPatch) -> Touched:
    """How many distinct jobs a call touches, wherever in the endpoint it touches them."""
    seen: set[int] = set()

    def counting(job: Job, name: str) -> Any:
        seen.add(id(job))
        return object.__getattribute__(job, name)

    def count(call: Callable[[], Any]) -> int:
        monkeypatch.setattr(Job, "__getattribute__", counting)
        seen.clear()
        try:
            call()
        finally:
            monkeypatch.undo()
        return len(seen)

    return count


def hold(endpoint: LocalCodePipeline, jobs: int) -> None:
    """Jobs a busy endpoint holds: claimed and queued custom jobs of the polled type, and partner jobs."""
    store = endpoint.store
    for n in range(jobs):
        if n % 3 == 0:
            job_id = store.create_job("Custom/Build/MyTool/1", dispatched_nonce="1")
            store.acknowledge_job({"jobId": job_id, "nonce": "1"})
        elif n % 3 == 1:
            store.create_job("Custom/Build/MyTool/1")
        else:
            store.create_job("ThirdParty/Deploy/PartnerTool/2", client_id=CLIENT_ID, client_token=CLIENT_TOKEN)


def round_of_calls(endpoint: LocalCodePipeline, client: CodePipelineClient, touched: Touched) -> list[int]:
    """The jobs each call of a custom and a partner life cycle touches."""
    custom: dict[str, Any] = {}
    partner: dict[str, Any] = {}

    def poll() -> None:
        [custom["job"]] = client.poll_for_jobs(actionTypeId=CUSTOM, maxBatchSize=1)["jobs"]

    def poll_partner() -> None:
        [partner["job"]] = client.poll_for_third_party_jobs(actionTypeId=PARTNER, maxBatchSize=1)["jobs"]

    def partner_details() -> None:
        partner["details"] = client.get_third_party_job_details(
            jobId=partner["job"]["jobId"], clientToken=CLIENT_TOKEN
        )["jobDetails"]

    calls = [
        poll,
        lambda: client.acknowledge_job(jobId=custom["job"]["id"], nonce=custom["job"]["nonce"]),
        lambda: client.get_job_details(jobId=custom["job"]["id"]),
        lambda: client.put_job_success_result(jobId=custom["job"]["id"]),
        poll_partner,
        partner_details,
        lambda: client.acknowledge_third_party_job(
            jobId=partner["job"]["jobId"], nonce=partner["details"]["nonce"], clientToken=CLIENT_TOKEN
        ),
        lambda: client.put_third_party_job_failure_result(
            jobId=partner["job"]["jobId"],
            clientToken=CLIENT_TOKEN,
            failureDetails={"type": "JobFailed", "message": "m"},
        ),
        lambda: client.poll_for_jobs(actionTypeId={**CUSTOM, "provider": "Idle"}),
    ]
    endpoint.store.add_action_type("Custom/Build/Idle/1")
    return [touched(call) for call in calls]


@pytest.mark.parametrize("held", [30, 3000])
def test_each_call_touches_only_the_jobs_it_answers_about(
    endpoint: LocalCodePipeline, client: CodePipelineClient, touched: Touched, held: int
) -> None:
    hold(endpoint, held)

    assert round_of_calls(endpoint, client, touched) == [1, 1, 1, 1, 1, 1, 1, 1, 0]


def test_a_timeout_costs_the_jobs_it_concerns_once(
    endpoint: LocalCodePipeline, client: CodePipelineClient, touched: Touched
) -> None:
    # Given 3,000 jobs held, of which 5 were dispatched and not acknowledged in time
    hold(endpoint, 3000)
    for _ in range(5):
        client.poll_for_jobs(actionTypeId=CUSTOM)
    endpoint.store.dispatch_timeout_s = 0.0

    # When the next calls come, then the first re-queues those 5 and dispatches one more, the next touches one job
    assert touched(lambda: client.poll_for_jobs(actionTypeId=CUSTOM)) == 6
    endpoint.store.dispatch_timeout_s = 60.0
    assert touched(lambda: client.poll_for_jobs(actionTypeId=CUSTOM)) == 1


def test_the_measure_command_reports_time_per_call_by_jobs_held() -> None:
    measured = run_cli("measure", "--jobs", "0,10", "--calls", "5")

    assert measured.returncode == 0, measured.stderr
    rows = measured.stdout.splitlines()[1:]
    assert [int(row.split()[0]) for row in rows] == [0, 10]
    assert all(float(figure) > 0 for row in rows for figure in row.split()[1:])
