"""The life-cycle fault run (`make chaos`), at the size CI affords: both functions' real handlers in killable
processes, Lambda's asynchronous retries and SQS's event source around them, and every fault injected. The run
judges each job (see chaos.verdict); this test fails on any violation, and checks that the faults happened."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chaos.config import ChaosConfig
from chaos.run import run

if TYPE_CHECKING:
    from pathlib import Path


def test_every_job_ends_once_with_its_work_run_once_under_kills_duplicates_and_ambiguous_sends(tmp_path: Path) -> None:
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
