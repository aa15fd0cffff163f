"""The life-cycle fault run (`make chaos`), at the size CI affords: both functions' real handlers in killable
processes, Lambda's asynchronous retries and SQS's event sources around them (the dead-letter handler's included),
and every fault injected, the work side's too (work that hangs, raises SystemExit, or stalls its invocation into
the function's timeout at every delivery). The run judges each job (see chaos.verdict); this test fails on any
violation, and checks that the faults happened."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

from chaos.cluster import CUSTOM
from chaos.config import ChaosConfig
from chaos.environment import Reply
from chaos.lambdas import Invocation
from chaos.run import run
from chaos.trail import TRAIL_FILE, violated_jobs, write_trails
from codepipeline_local import LocalCodePipeline

if TYPE_CHECKING:
    from pathlib import Path


def test_every_job_ends_once_with_its_work_run_once_under_kills_duplicates_ambiguous_sends_and_work_faults(
    tmp_path: Path,
) -> None:
    verdict = run(ChaosConfig.ci(), tmp_path)

    print(f"\n{verdict.table()}")
    assert verdict.violations == [], f"see the functions' logs in {tmp_path}"
    counts = verdict.counts
    # The faults did happen: processes killed in both functions, sends answered late or reset after the message
    # was stored, CodePipeline throttled; and jobs came twice
    for function in ("acknowledger", "work"):
        invocations, killed = (int(n) for n in counts[f"{function} invocations / killed"].split(" / "))
        assert invocations > 0
        assert killed > 0
    assert counts["SQS sends (proxy)"].get("slow", 0) + counts["SQS sends (proxy)"].get("reset", 0) > 0
    assert counts["CodePipeline faults (endpoint)"].get("throttle", 0) > 0
    assert counts["jobs delivered more than once"] > 0
    # The work side's faults happened too, and ended as they should (chaos.verdict.check_work_side): work stopped
    # at its time limit or ended by its SystemExit, invocations killed at the function's timeout, and jobs whose
    # five deliveries all failed, failed back by the dead-letter handler. Which way each hung or exiting job ends
    # depends on the machine's load (a loaded one sees the dead-letter handler end both hung jobs of a run): the
    # verdict accepts each way, and tests/integration/test_no_job_left_hanging.py drives each alone.
    stopped, exited = (int(n) for n in counts["jobs failed at their time limit / by SystemExit"].split(" / "))
    assert stopped + exited > 0
    assert counts["work invocations killed at their timeout"] > 0  # a random kill may end a stalled one first
    handled, failed_back = (
        int(n) for n in counts["dead letters handled / jobs failed back by their handler"].split(" / ")
    )
    assert handled > 0
    assert failed_back > 0


def test_a_violated_jobs_trail_is_written_and_printed_without_a_secret(tmp_path: Path) -> None:
    # Given a job the endpoint dispatched twice and a poll claimed, a hand-off record holding its nonce, an
    # invocation given its event, and a log line naming it
    with LocalCodePipeline() as endpoint:
        endpoint.store.add_action_type(CUSTOM)
        job_id = endpoint.store.create_job(CUSTOM, dispatched_nonce="5555555555")
        endpoint.store.dispatch_timeout_s = 0.0
        endpoint.store.jobs()
        endpoint.store.dispatch_timeout_s = 60.0
        owner, category, provider, version = CUSTOM.split("/")
        type_id = {"owner": owner, "category": category, "provider": provider, "version": version}
        [polled] = endpoint.store.poll_for_jobs({"actionTypeId": type_id, "maxBatchSize": 1})["jobs"]
        endpoint.store.acknowledge_job({"jobId": job_id, "nonce": polled["nonce"]})
        record = {"id": {"S": f"handoff#custom#{job_id}#0"}, "jobId": {"S": job_id}, "nonce": {"S": polled["nonce"]}}
        table = SimpleNamespace(scan=lambda **_: {"Items": [record, {"id": {"S": "work#other"}}]})
        cluster = SimpleNamespace(endpoint=endpoint, table="jobs", client=lambda _: table)
        invocation = Invocation("a1", "acknowledger", "direct", {"jobId": job_id, "nonce": "5555555555"}, [job_id])
        invocation.reply = Reply("a1", result={"jobId": job_id, "outcome": "conflict"})
        (tmp_path / "acknowledger-0.log").write_text(f'{{"message": "job claimed by another", "job_id": "{job_id}"}}\n')
        facts = SimpleNamespace(
            jobs={job_id: {}},
            secrets=endpoint.store.issued_secrets(),
            dead_letters=[],
            left_on_queue=0,
            record=SimpleNamespace(invocations=[invocation]),
            runs={},
        )

        # When the verdict found it violated
        jobs = violated_jobs(cast("Any", facts), [f"{job_id}: left InProgress", "3 message(s) left on the work queue"])
        printed = write_trails(cast("Any", facts), cast("Any", cluster), jobs, tmp_path)
        secrets = endpoint.store.issued_secrets()

    # Then the trail names each dispatch and acknowledgement by its nonce's dispatch, the record's nonce too
    written = (tmp_path / TRAIL_FILE).read_text()
    trail = json.loads(written)[job_id]
    assert jobs == [job_id]
    events = [e.get("event") or f"{e['call']} {e['answer']} {e['nonceOf']}" for e in trail["endpoint"]]
    assert events == [
        "created",
        "dispatched",
        "dispatch timed out",
        "dispatched",
        "acknowledged",
        "AcknowledgeJob InProgress 2",
    ]
    assert trail["table"] == [{"id": f"handoff#custom#{job_id}#0", "jobId": job_id, "nonce": "of dispatch 2"}]
    assert trail["invocations"][0]["result"] == {"jobId": job_id, "outcome": "conflict"}
    assert list(trail["log lines"]["acknowledger-0.log"]) != []
    assert "AcknowledgeJob -> InProgress" in printed
    assert not any(s in written or s in printed for s in secrets)
