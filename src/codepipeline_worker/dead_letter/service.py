"""The dead-letter handler's service: fail back, once, each job whose message the work queue set aside.

A job message reaches the dead-letter queue after the work queue delivered it maxReceiveCount times without a
result: each time the work function could not report it, was stopped by its own timeout, failed its cold start,
or had no time to start it. Its job is still InProgress in CodePipeline, holding its pipeline until the action
times out (hours): this service fails it now, with PutJobFailureResult (or PutThirdPartyJobFailureResult, with
the client token read by clientId), saying why and how many deliveries there were.

- A work function that cannot start (WORK_FUNCTION cannot be imported, or is not a function of one argument)
  is named in the failure, as a ConfigurationError.
- A job CodePipeline no longer holds InProgress (it completed, timed out, or an earlier delivery of this dead
  letter failed it) counts as done.
- A failure report that does not go through (throttling after retries, the network, no client token, a
  refusal) raises `NotFailedBack`: the message stays on the dead-letter queue and is tried again later.
- Once the job has ended, its once-only record (work.once) is marked done, so that a copy of its message that
  still reaches the work function (a hand-off the reconciler sent again) runs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from aws_lambda_powertools.metrics import MetricUnit

from ..shared.adapter import (
    STALE_CODES,
    AwsCallError,
    ClientTokenError,
    ClientTokenStore,
    CodePipelineAdapter,
    create_codepipeline_client,
    create_dynamodb_client,
    worst_case_call_s,
)
from ..shared.entry_point import work_function_problem
from ..shared.models import JobType, ResultModel
from ..shared.observability import logger, metrics
from ..shared.tokens import checked_token_store
from ..work.once import RecordUnavailable, RunOnce

if TYPE_CHECKING:
    from collections.abc import Callable

    from pydantic import SecretStr

    from ..shared.deadline import Deadline
    from ..shared.messages import JobMessage
    from .config import DeadLetterSettings

# What the job's once-only record holds once its dead letter has ended it: a delivery of its message reports nothing.
ENDED_ANSWER = {"stale": "FailedBackFromDeadLetter"}
# A dead letter starts while its calls (reading the client token for a partner job, the failure report) can each
# make one attempt at its slowest before the deadline. Unlike a job's work, nothing is lost if the function is
# ended after that: the message comes back, and a failure that went through makes the next try find the job
# ended. (Waiting for every retry at its worst would, with AWS_MAX_ATTEMPTS above 4, outlast the function.)
RESERVED_CALLS = 2


class DeadLetterResult(ResultModel):
    """What became of one dead letter. Never holds a secret."""

    job_id: str
    job_type: JobType
    result: Literal["failedBack", "alreadyDone"]
    failure_type: str | None = None
    deliveries: int | None = None
    error: str | None = None


class NotFailedBack(RuntimeError):
    """The job could not be failed back now; its dead letter should be delivered again."""

    def __init__(self, job_id: str, code: str) -> None:
        super().__init__(f"job {job_id}: not failed back ({code}); its dead letter will be delivered again")
        self.job_id = job_id
        self.code = code


class DeadLetterService:
    """Fails back the job of each dead letter, naming why its work never completed."""

    def __init__(
        self,
        codepipeline: CodePipelineAdapter,
        tokens: ClientTokenStore | None,
        work_function: str,
        once: RunOnce | None = None,
        *,
        one_attempt_s: float = worst_case_call_s(1, 1.0, 2.0),
        check: Callable[[str], str | None] = work_function_problem,
    ) -> None:
        self._codepipeline = codepipeline
        self._tokens = tokens
        self._work_function = work_function
        self._once = once
        self._check = check
        self._problem: str | None = None
        self._checked = False
        self.reserve_s = RESERVED_CALLS * one_attempt_s

    @classmethod
    def from_settings(cls, settings: DeadLetterSettings) -> DeadLetterService:
        return cls(
            CodePipelineAdapter(create_codepipeline_client(settings)),
            checked_token_store(settings),
            settings.work_function,
            RunOnce(create_dynamodb_client(settings), settings.job_table_name) if settings.job_table_name else None,
            one_attempt_s=worst_case_call_s(1, settings.connect_timeout_s, settings.read_timeout_s),
        )

    def work_function_problem(self) -> str | None:
        """What keeps the work function from starting, checked once per execution environment, when the first
        dead letter comes (importing the user's module costs a cold start nothing it does not need)."""
        if not self._checked:
            self._problem = self._check(self._work_function)
            self._checked = True
            if self._problem is not None:
                logger.error("the work function cannot start", problem=self._problem)
        return self._problem

    def fail_back(
        self, message: JobMessage, receives: int | None, deadline: Deadline | None = None
    ) -> DeadLetterResult:
        """Fail the message's job back to CodePipeline; raise NotFailedBack when that must be tried again."""
        if deadline is not None and deadline.remaining() < self.reserve_s:
            raise NotFailedBack(message.job_id, "NotAttempted")
        token = self._token(message) if message.job_type == "thirdParty" else None
        deliveries = None if receives is None else max(receives - 1, 0)  # the last receive is this handler's
        failure = self._failure(deliveries)
        logger.append_keys(job_id=message.job_id, job_type=message.job_type)
        try:
            self._put(message, token, failure)
        except AwsCallError as exc:
            return self._not_put(message, exc.code)
        finally:
            logger.remove_keys(["job_id", "job_type"])
        self._ended(message)
        metrics.add_metric(name="JobsFailedBack", unit=MetricUnit.Count, value=1)
        result = DeadLetterResult(
            job_id=message.job_id,
            job_type=message.job_type,
            result="failedBack",
            failure_type=failure["type"],
            deliveries=deliveries,
        )
        logger.warning("dead letter: job failed back", extra=result.model_dump(exclude_none=True))
        return result

    def _failure(self, deliveries: int | None) -> dict[str, str]:
        times = "several times" if deliveries is None else ("once" if deliveries == 1 else f"{deliveries} times")
        problem = self.work_function_problem()
        if problem is not None:
            return {
                "type": "ConfigurationError",
                "message": (
                    f"The work function cannot start: invalid configuration: {problem}. This job's message was "
                    f"delivered {times} without a result, then set aside. Fix the work function's configuration, "
                    "then retry the action."
                ),
            }
        return {
            "type": "JobFailed",
            "message": (
                f"The job worker did not complete this job: its message was delivered {times} without a result "
                "(each time the work could not report, was stopped by the function's timeout, or had no time to "
                "start) and was set aside. The work function's log has each attempt under this job's id."
            ),
        }

    def _put(self, message: JobMessage, token: SecretStr | None, failure: dict[str, str]) -> None:
        if token is None:
            self._codepipeline.put_job_failure_result(message.job_id, failure)
        else:
            self._codepipeline.put_third_party_job_failure_result(message.job_id, token, failure)

    def _not_put(self, message: JobMessage, code: str) -> DeadLetterResult:
        if code in STALE_CODES:
            self._ended(message)
            metrics.add_metric(name="DeadLettersAlreadyDone", unit=MetricUnit.Count, value=1)
            logger.info("dead letter: the job had already ended", job_id=message.job_id, error=code)
            return DeadLetterResult(job_id=message.job_id, job_type=message.job_type, result="alreadyDone", error=code)
        raise _not_failed_back(message, code)

    def _ended(self, message: JobMessage) -> None:
        """Mark the job's once-only record done. Best effort: the job has ended in CodePipeline, and the work
        function reads a job's details before it runs anything (an ended job's are refused)."""
        if self._once is None:
            return
        try:
            self._once.record(message, ENDED_ANSWER)
        except RecordUnavailable as exc:
            logger.warning("dead letter: the job's once-only record was not marked done", error=exc.code)

    def _token(self, message: JobMessage) -> SecretStr:
        code = "ClientTokenNotConfigured"
        if self._tokens is not None and message.client_id is not None:
            try:
                return self._tokens.token_for(message.client_id)
            except ClientTokenError as exc:
                code = exc.code
        raise _not_failed_back(message, code)


def _not_failed_back(message: JobMessage, code: str) -> NotFailedBack:
    """Counted and logged: the job could not be failed back now (the error to raise)."""
    metrics.add_metric(name="DeadLettersNotFailedBack", unit=MetricUnit.Count, value=1)
    logger.error("dead letter: the job could not be failed back", job_id=message.job_id, error=code)
    return NotFailedBack(message.job_id, code)
