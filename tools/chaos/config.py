"""What a fault run does: how many jobs, how they reach the acknowledger, what goes wrong and how often, and how
time is compressed. Every draw comes from `seed`."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ChaosConfig:
    jobs: int = 500
    seed: int = 11
    # How jobs reach the acknowledger: a share come as direct events (some in batches), the rest are found by the
    # scheduled polls (and STARTED events). A share of direct events is delivered again, at once or later.
    partner_share: float = 0.3
    direct_share: float = 0.4
    batch_share: float = 0.25  # of the direct jobs, put in batch events (a batch sometimes names a job twice)
    duplicate_share: float = 0.3  # direct events delivered more than once
    # What each job's work does (chaos.work.BEHAVIOURS), by weight: the work side's faults are hang (stopped at
    # its time limit), exit (raises SystemExit) and stall (its invocation runs into the function's timeout and is
    # killed there, at every delivery, until the queue sets it aside and the dead-letter handler fails it back).
    behaviours: dict[str, float] = field(
        default_factory=lambda: {
            "succeed": 0.69,
            "fail": 0.1,
            "continue": 0.1,
            "hang": 0.04,
            "exit": 0.04,
            "stall": 0.03,
        }
    )
    # Faults: SIGKILL at a random point of an invocation, per function; a send (SendMessage, or a poll's
    # SendMessageBatch) answered too late or reset after SQS stored it; a batch's entries refused (SQS lists them
    # in `Failed`: the jobs are failed back); CodePipeline throttling and 5xx (the endpoint's faults).
    kill_acknowledger: float = 0.12
    kill_work: float = 0.12
    slow_send: float = 0.08
    reset_send: float = 0.05
    refuse_entry: float = 0.03
    throttle: float = 0.04
    http500: float = 0.02
    # Compressed time, yet roomy enough for a loaded 2-CPU machine where moto answers slowly. The acknowledger's
    # calls: 2 attempts of 0.3 s to connect and 1 s to read (a call's worst case 3.6 s with the pauses, a partner
    # poll's 36 s); its timeout 40 s, which is also how long a killed poll's records stay leased to it. The work
    # function's timeout 12 s, each job's work limited to 1 s (JOB_TIME_LIMIT_S: the default share of so short a
    # timeout would start nothing, its calls' worst case being most of it); the queue's visibility timeout 15 s (a
    # cold start counts in it); a job's dispatch 10 s; Lambda's retry of a failed event after 1-2 s.
    max_attempts: int = 2
    connect_timeout_s: float = 0.3
    read_timeout_s: float = 1.0
    acknowledger_timeout_s: float = 40.0
    work_timeout_s: float = 12.0
    job_time_limit_s: float = 1.0
    dead_letter_timeout_s: float = 20.0
    visibility_timeout_s: int = 15
    max_receive_count: int = 5
    dispatch_timeout_s: float = 10.0
    retry_delays_s: tuple[float, float] = (1.0, 2.0)
    tick_s: float = 2.0  # the schedule
    arrivals_s: float = 20.0  # jobs are created, and their events sent, over this long
    time_limit_s: float = 900.0  # after the last arrival, how long the run may take to settle every job
    environments: int = 4  # per function (the dead-letter handler has one)
    work_s: float = 0.01  # each run's own time

    @classmethod
    def ci(cls, seed: int = 7) -> ChaosConfig:
        """A size that fits `make test` on a loaded 2-CPU machine; kills twice as likely, so that so few
        invocations still see kills in both functions (a kill drawn after the invocation answered is none)."""
        return cls(
            jobs=60,
            seed=seed,
            arrivals_s=6.0,
            time_limit_s=300.0,
            environments=2,
            kill_acknowledger=0.25,
            kill_work=0.25,
        )
