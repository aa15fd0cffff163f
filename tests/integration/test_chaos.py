"""The life-cycle fault run (`make chaos`), at the size CI affords: both functions' real handlers in killable
processes, Lambda's asynchronous retries and SQS's event sources around them (the dead-letter handler's included),
and every fault injected, the work side's too (work that hangs, raises SystemExit, or stalls its invocation into
the function's timeout at every delivery). The run judges each job (see chaos.verdict); this test fails on any
violation, and checks that the faults happened."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chaos.config import ChaosConfig
from chaos.run import run

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
    assert (
        counts["SendMessage answers (proxy)"].get("slow", 0) + counts["SendMessage answers (proxy)"].get("reset", 0) > 0
    )
    assert counts["CodePipeline faults (endpoint)"].get("throttle", 0) > 0
    assert counts["jobs delivered more than once"] > 0
    # The work side's faults happened too, and ended as they should (chaos.verdict.check_work_side): work that
    # hung stopped at its time limit, work that raised SystemExit, invocations killed at the function's timeout,
    # and jobs whose five deliveries all failed, failed back by the dead-letter handler
    stopped, exited = (int(n) for n in counts["jobs failed at their time limit / by SystemExit"].split(" / "))
    assert stopped > 0
    assert exited > 0
    assert counts["work invocations killed at their timeout"] > 0  # a random kill may end a stalled one first
    handled, failed_back = (
        int(n) for n in counts["dead letters handled / jobs failed back by their handler"].split(" / ")
    )
    assert handled > 0
    assert failed_back > 0
