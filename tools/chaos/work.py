"""The fault run's work function: what each job does is named by its configuration (`ChaosBehaviour`), and every
run is written down (a line at its start and one at its end, with the process and the invocation) so that the
harness can count runs per job.

`BEHAVIOURS` is a plug-in point: a new behaviour is one function of the job and its run, registered here under
the name a `ChaosConfig.behaviours` weight refers to (see docs/testing.md).
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from codepipeline_worker.work import Failure, Job, Outcome, StillRunning, Success

if TYPE_CHECKING:
    from collections.abc import Callable

# The current invocation, set by the environment's loop before each one (chaos.child).
INVOCATION = {"id": ""}


@dataclass(frozen=True)
class Run:
    """One run of a job's work, as the harness sees it: which process, which invocation, when."""

    job_id: str
    pid: int
    invocation: str

    def mark(self, event: str) -> None:
        path = os.environ["CHAOS_RUNS_FILE"]
        line = {"job": self.job_id, "event": event, "pid": self.pid, "invocation": self.invocation, "at": time.time()}
        with open(path, "a", encoding="utf-8") as runs:  # one write of one line: appends do not interleave
            runs.write(json.dumps(line) + "\n")


def succeed(job: Job, run: Run) -> Outcome:
    return Success(summary=f"chaos run of {job.id}")


def fail(job: Job, run: Run) -> Outcome:
    return Failure(message="chaos: this job fails")


def continue_once(job: Job, run: Run) -> Outcome:
    """StillRunning on the first round, Success on the follow-up job CodePipeline creates."""
    if job.continuation_token is None:
        return StillRunning(continuation_token="round-2", percent_complete=50)  # noqa: S106 - not a secret
    return Success(summary="chaos: done in round 2")


def _until_orphaned(limit_s: float) -> None:
    """Wait until the process that forked this one has gone (or `limit_s`): a run that outlives its invocation
    ends with it, as everything in a Lambda environment does, rather than linger after the harness."""
    parent = os.getppid()
    ends = time.monotonic() + limit_s
    while os.getppid() == parent and time.monotonic() < ends:
        time.sleep(0.05)


def hang(job: Job, run: Run) -> Outcome:
    """Never returns: the job's time limit stops it, and the job is failed saying so."""
    _until_orphaned(600.0)
    return Success(summary="chaos: this run was never stopped")


def exit_(job: Job, run: Run) -> Outcome:
    """What argparse does on bad arguments: the job fails, and only the job."""
    raise SystemExit(2)


def stall(job: Job, run: Run) -> Outcome:
    """Stops the function's own process, as work that wedges it would: the invocation runs into the function's
    timeout, and Lambda kills it there. Every delivery does the same, until the work queue sets the message
    aside and the dead-letter handler fails the job back."""
    os.kill(os.getppid(), signal.SIGSTOP)
    _until_orphaned(600.0)
    return Success(summary="chaos: this run was never stopped")


BEHAVIOURS: dict[str, Callable[[Job, Run], Outcome]] = {
    "succeed": succeed,
    "fail": fail,
    "continue": continue_once,
    "hang": hang,
    "exit": exit_,
    "stall": stall,
}


def run(job: Job) -> Outcome:
    """WORK_FUNCTION of the fault run: chaos.work:run."""
    current = Run(job.id, os.getpid(), INVOCATION["id"])
    current.mark("start")
    time.sleep(float(os.environ.get("CHAOS_WORK_S", "0.01")))  # a little work: a kill may land in it
    behaviour = BEHAVIOURS[job.configuration.get("ChaosBehaviour", "succeed")]
    outcome = behaviour(job, current)
    current.mark("end")
    return outcome
