"""The work side's service: run the user's work function on a claimed job and report what it returned.

Success and StillRunning become PutJobSuccessResult (StillRunning with a continuation token), Failure becomes
PutJobFailureResult; partner jobs use the third-party variants, with the client token read by clientId. Whatever
the work function raises (BaseException included: SystemExit, KeyboardInterrupt...), or a result CodePipeline
would refuse, becomes a failure result whose message names only the problem, never a value.

Each job's work has a time limit (JOB_TIME_LIMIT_S; by default the function's timeout shared by a full batch).
The work runs in a child process (`shared.isolation`) that is killed at the limit: the job is then reported as
still running from its last checkpoint, or failed. A job starts only while the invocation's time holds its
limit plus the calls made outside it (its once-only record completed, its report; each at its worst, retries
included); otherwise `JobNotStarted` is raised before anything is written, and its message goes back to the queue.

Each job runs once (`once.RunOnce`): its once-only record is written, then its details are read, before any of
the user's code (a job that CodePipeline no longer has for this worker is not run), then the work function runs,
and its outcome (a timed-out work's included) is stored with the record before it is reported. A message
delivered again after that gets the stored outcome, and reports it; nothing runs again.

What happens to the queue message:
- the result was reported, or CodePipeline says the job is no longer this worker's (it completed, timed out or
  does not exist), or CodePipeline rejects the report for good (no retry of the work can change that): done;
- the result could not be reported (throttling after retries, the network, no client token), the job's work is
  running in another delivery, or the once-only record could not be written: `JobNotReported` is raised, and the
  message is delivered again later: its stored outcome is reported then, or its work runs if it never did.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, SecretStr, ValidationError

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
from ..shared.entry_point import load_work_function
from ..shared.isolation import LimitReached, run_in_child, within
from ..shared.models import JobType, ResultModel
from ..shared.observability import debug_on, logger, metrics
from ..shared.tokens import checked_token_store
from .artifacts import ArtifactError
from .job import Failure, Job, JobDetails, StillRunning, Success
from .once import RecordUnavailable, RunOnce, WorkInProgress

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..shared.deadline import Deadline
    from ..shared.isolation import Channel
    from ..shared.messages import JobMessage
    from .config import WorkerSettings
    from .job import Outcome, WorkFunction

__all__ = ["JobNotReported", "JobNotStarted", "RunResult", "WorkRunner", "load_work_function"]

# Answers that refuse a report for good: running the work again would end the same way.
REJECTED_CODES = frozenset(
    {
        "ValidationException",
        "InvalidClientTokenException",
        "AccessDeniedException",
        "UnrecognizedClientException",
        "OutputVariablesSizeExceededException",
    }
)
# The calls a job makes after its time limit: reporting its result, and before that completing its once-only
# record (with `once`). Reading its details counts within the limit; writing its record comes before it, and what
# that takes is taken from the limit. A job starts only while the invocation holds its limit plus these.
REPORT_CALLS = 1
RECORD_CALLS = 1
# What one job costs beyond its work, for the default limit to leave: a fork, a report that does not take its
# worst case, logs. (Measured: a few milliseconds locally, a CodePipeline call's ~0.1 s on AWS.)
JOB_OVERHEAD_S = 0.5
DEFAULT_BATCH_SIZE = 10
_OUTCOME_TYPES = (Success, Failure, StillRunning)
# How an outcome is kept in the job's once-only record: its kind, and its fields.
_STORED_KINDS: dict[str, type[Success | Failure | StillRunning]] = {
    "success": Success,
    "failure": Failure,
    "stillRunning": StillRunning,
}
_OUTCOME_NAMES = frozenset({"Success", "Failure", "StillRunning", "CurrentRevision"})
RESULT_METRICS = {
    "succeeded": "JobsSucceeded",
    "failed": "JobsFailedByWork",
    "continued": "JobsContinued",
    "stale": "ResultsRefused",
    "rejected": "ResultsRejected",
}


class RunResult(ResultModel):
    """What became of one job on the work side. Never holds a secret, nor the work's texts."""

    job_id: str
    job_type: JobType
    result: Literal["succeeded", "failed", "continued", "stale", "rejected"]
    failure_type: str | None = None
    error: str | None = None


class JobNotReported(RuntimeError):
    """The job's result could not be reported; the queue message should be delivered again."""

    def __init__(self, job_id: str, code: str) -> None:
        super().__init__(f"job {job_id}: the result was not reported ({code}); the message will be redelivered")
        self.job_id = job_id
        self.code = code


class JobNotStarted(RuntimeError):
    """The invocation's time left cannot hold the job's time limit plus its calls: nothing ran, and the job's
    once-only record was not written (or was deleted); the message should go back to the queue, for an invocation
    with time enough."""

    def __init__(self, job_id: str, needed_s: float, remaining_s: float) -> None:
        super().__init__(f"job {job_id}: {needed_s:.1f} s needed to run and report it, {remaining_s:.1f} s left")
        self.job_id = job_id
        self.needed_s = needed_s
        self.remaining_s = remaining_s


class _DetailsUnavailable(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class WorkProblem:
    """What went wrong in the work, for the log and metrics, which the parent writes: never a value the work
    handled, only types, names, places and figures."""

    event: str
    fields: dict[str, Any] = field(default_factory=dict)
    metric: str | None = None
    level: Literal["error", "warning"] = "error"


type Verdict = tuple[Outcome, WorkProblem | None]


@dataclass
class _Attempt:
    """The parent's side of one job's run: the details it read for the work (and the secrets in them), the last
    checkpoint the work recorded."""

    message: JobMessage
    load: Callable[[JobMessage], JobDetails]
    secrets: list[str]
    details_error: str | None = None
    checkpoint: StillRunning | None = None
    first: JobDetails | None = None

    def fetch(self) -> JobDetails | str:
        """The job's details (the work's first request gets those read before it started), or the error code of
        the call that failed. Decides nothing: a call the time limit left running in its thread must not change
        the job's fate."""
        if self.first is not None:
            details, self.first = self.first, None
            return details
        try:
            return self.load(self.message)
        except _DetailsUnavailable as exc:
            return exc.code

    def note(self, answer: JobDetails | str) -> None:
        """The details the work was given: their secrets are masked in what it reports; their error decides
        what becomes of the job."""
        if isinstance(answer, str):
            self.details_error = answer
        elif answer.artifact_credentials is not None:
            self.secrets.extend(answer.artifact_credentials.secrets())

    def details(self, _message: JobMessage) -> JobDetails:
        """The loader of a job run in this process."""
        answer = self.fetch()
        self.note(answer)
        if isinstance(answer, str):
            raise _DetailsUnavailable(answer)
        return answer

    def serve(self, request: Any) -> Any:
        """The child's requests: a checkpoint (noted), its details (fetched; noted once delivered)."""
        if isinstance(request, StillRunning):
            self.checkpoint = request
            return None
        return self.fetch()

    def delivered(self, _request: Any, answer: Any) -> None:
        if isinstance(answer, JobDetails | str):
            self.note(answer)


class WorkRunner:
    """Runs the work function on each job message, once per job, and reports its outcome to CodePipeline.
    Without `once` (tests of the reporting alone), every delivery runs the work."""

    def __init__(
        self,
        codepipeline: CodePipelineAdapter,
        tokens: ClientTokenStore | None,
        work: WorkFunction,
        once: RunOnce | None = None,
        *,
        time_limit_s: float | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        worst_call_s: float | None = None,
        isolate: bool = True,
    ) -> None:
        self._codepipeline = codepipeline
        self._tokens = tokens
        self._work = work
        self.once = once
        self._time_limit_s = time_limit_s or None
        self._batch_size = batch_size
        self._isolate = isolate
        # By default, the worst case of a call with the settings' defaults (3 attempts, 1 s to connect, 2 s to read).
        call_s = worst_call_s if worst_call_s is not None else worst_case_call_s(3, 1.0, 2.0)
        self.reserve_s = (REPORT_CALLS + (RECORD_CALLS if once is not None else 0)) * call_s

    @classmethod
    def from_settings(cls, settings: WorkerSettings) -> WorkRunner:
        """The runner of one execution environment: WORK_FUNCTION imported, clients built, the secret read."""
        work = load_work_function(settings.work_function)
        codepipeline = CodePipelineAdapter(create_codepipeline_client(settings))
        once = RunOnce(create_dynamodb_client(settings), str(settings.job_table_name))
        return cls.configured(codepipeline, checked_token_store(settings), work, settings, once)

    @classmethod
    def configured(
        cls,
        codepipeline: CodePipelineAdapter,
        tokens: ClientTokenStore | None,
        work: WorkFunction,
        settings: WorkerSettings,
        once: RunOnce | None = None,
    ) -> WorkRunner:
        """A runner of `work` with the time limits and isolation the settings say."""
        return cls(
            codepipeline,
            tokens,
            work,
            once,
            time_limit_s=settings.job_time_limit_s,
            batch_size=settings.work_batch_size,
            worst_call_s=worst_case_call_s(settings.max_attempts, settings.connect_timeout_s, settings.read_timeout_s),
            isolate=settings.job_isolation == "process",
        )

    def time_limit_for(self, deadline: Deadline | None) -> float | None:
        """Each job's time limit in an invocation: JOB_TIME_LIMIT_S, or by default the invocation's time less
        the reserve, shared by a full batch (less each job's overhead), so that every job of one can start even
        if each takes its whole limit. None: no deadline, no limit."""
        if self._time_limit_s is not None:
            return self._time_limit_s
        if deadline is None:
            return None
        return max(0.0, (deadline.remaining() - self.reserve_s) / self._batch_size - JOB_OVERHEAD_S)

    def run(
        self, message: JobMessage, deadline: Deadline | None = None, time_limit_s: float | None = None
    ) -> RunResult:
        """Run one job (or take the outcome an earlier delivery stored); report it. Raises JobNotStarted when there
        is no time to run it (nothing was done, no record left), JobNotReported when its result could not be
        reported: either way the message should come back."""
        limit = time_limit_s if time_limit_s is not None else self.time_limit_for(deadline)
        self._check_time(message, deadline, limit)
        token = self._token(message) if message.job_type == "thirdParty" else None
        logger.append_keys(job_id=message.job_id, job_type=message.job_type)
        try:
            answer = self._run_once(message, token, deadline, limit)
        except _DetailsUnavailable as exc:
            raise JobNotReported(message.job_id, exc.code) from None
        except WorkInProgress:
            logger.warning("the job's work is running in another delivery: this message comes back later")
            metrics.add_metric(name="WorkInProgressElsewhere", unit=MetricUnit.Count, value=1)
            raise JobNotReported(message.job_id, "WorkInProgress") from None
        except RecordUnavailable as exc:
            logger.error("the job's once-only record could not be written", error=exc.code)
            raise JobNotReported(message.job_id, exc.code) from None
        try:
            if "stale" in answer:
                code = str(answer["stale"])
                stale = RunResult(job_id=message.job_id, job_type=message.job_type, result="stale", error=code)
                return self._finish(stale)
            outcome = _STORED_KINDS[answer["kind"]].model_validate(answer["outcome"])
            return self._report(Job(message, _no_details), outcome, token)
        finally:
            logger.remove_keys(["job_id", "job_type"])

    def _check_time(self, message: JobMessage, deadline: Deadline | None, limit: float | None) -> None:
        """Raise JobNotStarted unless the invocation's time left holds the job's limit plus the reserve."""
        if deadline is None:
            return
        needed = (limit or 0.0) + self.reserve_s
        remaining = deadline.remaining()
        if not limit or remaining < needed:
            raise JobNotStarted(message.job_id, needed, remaining)

    def _run_once(
        self, message: JobMessage, token: SecretStr | None, deadline: Deadline | None, limit: float | None
    ) -> dict[str, Any]:
        if self.once is None:
            return self._work_on(message, token, deadline, limit)
        # The record is in progress until Lambda ends the invocation: a delivery after that finds the run killed.
        run_ends = None if deadline is None else time.monotonic() + deadline.lambda_remaining_s()
        return self.once.run(message, lambda: self._work_on(message, token, deadline, limit), run_ends)

    def _work_on(
        self, message: JobMessage, token: SecretStr | None, deadline: Deadline | None, limit: float | None
    ) -> dict[str, Any]:
        """The job's details, then its work within its limit: the outcome, cleared of the secrets the runner
        knows, as stored. Raises JobNotStarted when writing the record left too little time (the record is then
        deleted), _DetailsUnavailable when the details could not be read (the message comes back)."""
        if deadline is not None and limit is not None:  # what writing the record took comes off the limit
            limit = min(limit, deadline.remaining() - self.reserve_s)
            self._check_time(message, deadline, limit)
        ends_at = None if limit is None else time.monotonic() + limit
        attempt = _Attempt(message, self._load_details(token), [token.get_secret_value()] if token else [])
        try:
            first = within(lambda _request: attempt.fetch(), None, ends_at)  # before any of the user's code
        except LimitReached:
            outcome, problem = _timed_out(limit or 0.0, None)
        else:
            attempt.note(first)
            if isinstance(first, str):
                if first in STALE_CODES:  # not this worker's any more: nothing runs, now or at a later delivery
                    return {"stale": first}
                raise _DetailsUnavailable(first)
            attempt.first = first
            outcome, problem = self._outcome(attempt, limit, ends_at)
        if attempt.details_error is not None:  # renewing the artifact credentials failed
            if attempt.details_error in STALE_CODES:
                return {"stale": attempt.details_error}
            raise _DetailsUnavailable(attempt.details_error)
        if problem is not None:
            _record_problem(problem)
        stored = _scrub(outcome, attempt.secrets)
        kind = next(name for name, model in _STORED_KINDS.items() if isinstance(stored, model))
        return {"kind": kind, "outcome": stored.model_dump(mode="json", by_alias=True, exclude_none=True)}

    # -- the work function -----------------------------------------------------------------------------

    def _load_details(self, token: SecretStr | None) -> Callable[[JobMessage], JobDetails]:
        def load(message: JobMessage) -> JobDetails:
            try:
                if token is None:
                    data: Any = self._codepipeline.job_details(message.job_id)
                else:
                    _, data = self._codepipeline.third_party_job_details(message.job_id, token)
            except AwsCallError as exc:
                error = _DetailsUnavailable(exc.code)
            else:
                details = JobDetails.from_job_data(data)
                if debug_on():  # the configuration's names only: a property may be secret
                    logger.debug(
                        "job details fetched",
                        configuration_keys=sorted(details.configuration),
                        input_artifacts=len(details.input_artifacts),
                        output_artifacts=len(details.output_artifacts),
                        artifact_credentials=details.artifact_credentials is not None,
                        continuation=details.continuation_token is not None,
                    )
                return details
            raise error

        return load

    def _outcome(self, attempt: _Attempt, limit: float | None, ends_at: float | None) -> Verdict:
        """The work function's verdict on the job, by `ends_at`: in a child process killed then, or in this one."""
        if debug_on():
            logger.debug(
                "running the work function",
                work_function=getattr(self._work, "__qualname__", type(self._work).__name__),
                seconds_left=None if ends_at is None else round(max(0.0, ends_at - time.monotonic()), 3),
            )
        started = time.monotonic()
        verdict = self._verdict_of(attempt, limit, ends_at)
        outcome, problem = verdict
        if problem is None and debug_on():  # it returned (a problem: it raised, died, or overran: logged as such)
            seconds = round(time.monotonic() - started, 3)
            logger.debug("the work function returned", outcome=type(outcome).__name__, seconds=seconds)
        return verdict

    def _verdict_of(self, attempt: _Attempt, limit: float | None, ends_at: float | None) -> Verdict:
        if not self._isolate:
            job = Job(attempt.message, attempt.details, ends_at, time_limit_s=limit, on_checkpoint=attempt.serve)
            return _verdict(self._work, job)

        def in_child(channel: Channel) -> Verdict:  # runs in the child process
            job = Job(
                attempt.message,
                lambda _message: _ask_details(channel),
                ends_at,
                time_limit_s=limit,
                on_checkpoint=channel.tell,
            )
            metrics.clear_metrics()  # the parent's, copied by the fork: the parent publishes them
            verdict = _verdict(self._work, job)
            if metrics.metric_set:  # the work's own metrics: published from here, or lost with the process
                metrics.flush_metrics()
            return verdict

        left = None if ends_at is None else max(0.0, ends_at - time.monotonic())
        ended = run_in_child(in_child, left, attempt.serve, attempt.delivered)
        if ended.how == "returned":
            verdict: Verdict = ended.value
            return verdict
        if ended.how == "timed_out":
            return _timed_out(limit or 0.0, attempt.checkpoint)
        return (
            Failure(message=f"The work ended without a result ({ended.status}); the worker's log may say why."),
            WorkProblem("the work ended without a result", {"status": ended.status}, metric="WorkErrors"),
        )

    # -- reporting ----------------------------------------------------------------------------------------

    def _report(self, job: Job, outcome: Outcome, token: SecretStr | None) -> RunResult:
        try:
            self._put(job, outcome, token)
        except AwsCallError as exc:
            code = exc.code
        else:
            return self._finish(_result(job, outcome))
        if code in STALE_CODES:
            logger.warning("CodePipeline refused the result: the job is no longer this worker's", error=code)
            return self._finish(RunResult(job_id=job.id, job_type=job.type, result="stale", error=code))
        if code in REJECTED_CODES:
            return self._rejected(job, outcome, token, code)
        logger.error("result not reported", job_id=job.id, error=code)
        raise JobNotReported(job.id, code)

    def _rejected(self, job: Job, outcome: Outcome, token: SecretStr | None, code: str) -> RunResult:
        """CodePipeline will never take this report: a result becomes a failure, reported at once; a failure it
        rejects ends here (logged, counted, alarmed on), since running the work again cannot change it."""
        if not isinstance(outcome, Failure):
            logger.error("CodePipeline rejected the result: the job is failed instead", error=code)
            if code == "OutputVariablesSizeExceededException":
                message = "The output variables exceed CodePipeline's size limit"
            else:
                message = f"CodePipeline rejected the work's result ({code}); the job is failed rather than run again."
            return self._report(job, Failure(message=message), token)
        logger.error("CodePipeline rejected the failure report: the job cannot be reported by this worker", error=code)
        return self._finish(RunResult(job_id=job.id, job_type=job.type, result="rejected", error=code))

    def _put(self, job: Job, outcome: Outcome, token: SecretStr | None) -> None:
        if isinstance(outcome, Failure):
            failure = outcome.model_dump(by_alias=True, exclude_none=True)
            if token is None:
                self._codepipeline.put_job_failure_result(job.id, failure)
            else:
                self._codepipeline.put_third_party_job_failure_result(job.id, token, failure)
            return
        details: dict[str, Any] = {"summary": outcome.summary, "externalExecutionId": outcome.external_execution_id}
        revision = None
        variables = None
        continuation = None
        if isinstance(outcome, StillRunning):
            details["percentComplete"] = outcome.percent_complete
            continuation = outcome.continuation_token
        else:
            revision = outcome.current_revision
            variables = outcome.output_variables
        execution = {k: v for k, v in details.items() if v is not None}
        if token is None:
            self._codepipeline.put_job_success_result(
                job.id,
                execution_details=execution,
                current_revision=revision,
                continuation_token=continuation,
                output_variables=variables,
            )
        else:
            self._codepipeline.put_third_party_job_success_result(
                job.id, token, execution_details=execution, current_revision=revision, continuation_token=continuation
            )

    def _token(self, message: JobMessage) -> SecretStr:
        problem: str
        if self._tokens is None or message.client_id is None:
            problem = "ClientTokenNotConfigured"
        else:
            try:
                return self._tokens.token_for(message.client_id)
            except ClientTokenError as exc:
                problem = exc.code
        logger.error("no client token for a partner job", job_id=message.job_id, error=problem)
        raise JobNotReported(message.job_id, problem)

    @staticmethod
    def _finish(result: RunResult) -> RunResult:
        metrics.add_metric(name=RESULT_METRICS[result.result], unit=MetricUnit.Count, value=1)
        fields = result.model_dump(exclude_none=True)
        if result.result == "stale":
            logger.warning("job done elsewhere", extra=fields)
        else:
            logger.info("job reported", extra=fields)
        return result


def _no_details(message: JobMessage) -> JobDetails:
    """The details of a job whose outcome is already known: reporting it needs none."""
    raise AssertionError(f"job {message.job_id}: no details are read to report a stored outcome")


def _ask_details(channel: Channel) -> JobDetails:  # runs in the child process
    answer = channel.ask("details")
    if isinstance(answer, JobDetails):
        return answer
    raise _DetailsUnavailable(str(answer))


def _verdict(work: WorkFunction, job: Job) -> Verdict:
    """What the work function made of the job. Whatever it raises is caught here, BaseException included: a
    work function that calls sys.exit() or raises KeyboardInterrupt fails its own job, and only that."""
    try:
        outcome = work(job)
    except _DetailsUnavailable:
        return Failure(message="The job's details could not be read"), None  # the caller knows why
    except ValidationError as exc:
        return _invalid(exc) if exc.title in _OUTCOME_NAMES else _raised(exc)
    except BaseException as exc:  # noqa: BLE001 - any failure of the user's code becomes the job's failure
        return _raised(exc)
    return _checked(outcome, job)


def _invalid(exc: ValidationError) -> Verdict:
    """The work function built a Success, Failure or StillRunning that CodePipeline would refuse."""
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or exc.title}: {e['msg'].removeprefix('Value error, ')}"
        for e in exc.errors(include_input=False, include_url=False, include_context=False)[:10]
    )
    return (
        Failure(message=f"The work function returned an invalid {exc.title}: {problems}"),
        WorkProblem("the work function built an invalid result", {"result_type": exc.title, "problems": problems}),
    )


def _checked(outcome: object, job: Job) -> Verdict:
    if not isinstance(outcome, _OUTCOME_TYPES):
        returned = type(outcome).__name__
        return (
            Failure(message=f"The work function returned {returned}, not Success, Failure or StillRunning"),
            WorkProblem("the work function returned something else", {"returned_type": returned}),
        )
    if job.type == "thirdParty" and isinstance(outcome, Success) and outcome.output_variables:
        return Failure(message="Partner actions cannot set output variables (PutThirdPartyJobSuccessResult)"), None
    return _plain(outcome), None


def _plain(outcome: Outcome) -> Outcome:
    """The outcome as one of the library's own classes (a subclass of the user's may not cross a process)."""
    for kind in _OUTCOME_TYPES:
        if type(outcome) is kind:
            return outcome
    base = next(kind for kind in _OUTCOME_TYPES if isinstance(outcome, kind))
    return base.model_validate(outcome.model_dump(include=set(base.model_fields)))


def _timed_out(limit: float, checkpoint: StillRunning | None) -> Verdict:
    fields = {"time_limit_s": round(limit, 3), "checkpoint": checkpoint is not None}
    event = "the work reached its time limit and was stopped"
    if checkpoint is not None:
        problem = WorkProblem(event, fields, metric="WorkTimeouts", level="warning")
        summary = checkpoint.summary or f"Stopped at its time limit of {limit:.3g} s; goes on from its last checkpoint"
        return checkpoint.model_copy(update={"summary": summary}), problem
    problem = WorkProblem(event, fields, metric="WorkTimeouts")
    message = (
        f"The work did not finish within its time limit of {limit:.3g} s and was stopped; "
        "it recorded no checkpoint to go on from."
    )
    return Failure(message=message), problem


def _record_problem(problem: WorkProblem) -> None:
    log = logger.warning if problem.level == "warning" else logger.error
    log(problem.event, **problem.fields)
    if problem.metric is not None:
        metrics.add_metric(name=problem.metric, unit=MetricUnit.Count, value=1)


def _result(job: Job, outcome: Outcome) -> RunResult:
    if isinstance(outcome, Failure):
        return RunResult(job_id=job.id, job_type=job.type, result="failed", failure_type=outcome.type)
    if isinstance(outcome, StillRunning):
        return RunResult(job_id=job.id, job_type=job.type, result="continued")
    return RunResult(job_id=job.id, job_type=job.type, result="succeeded")


def _raised(exc: BaseException) -> Verdict:
    """The failure for an exception in the work function: its type, never its message (which may quote
    anything); where it was raised goes to the log, for the person who debugs it. An ArtifactError is the
    exception: its message is built from artifact names, S3 error codes and zip entry names only."""
    if isinstance(exc, ArtifactError):
        fields = {"error_type": type(exc).__name__, "error": str(exc)}
        problem = WorkProblem("an artifact could not be read or written", fields, metric="ArtifactErrors")
        return Failure(message=str(exc), type=exc.type), problem
    frames = traceback.extract_tb(exc.__traceback__)
    where = [f"{frame.filename}:{frame.lineno} in {frame.name}" for frame in frames[-5:]]
    name = type(exc).__name__
    return (
        Failure(message=f"The work function raised {name}; the worker's log has where."),
        WorkProblem("the work function raised", {"error_type": name, "where": where}, metric="WorkErrors"),
    )


def _scrub[M: BaseModel](outcome: M, secrets: list[str]) -> M:
    """The outcome with every secret the runner knows (client token, artifact credentials) masked in its
    texts, nested ones (the current revision) included: a work function that puts one in a summary, a message,
    a token or an output variable does not publish it to the console."""
    if not secrets:
        return outcome

    def clean(text: str) -> str:
        for secret in secrets:
            if secret:
                text = text.replace(secret, "***")
        return text

    update: dict[str, Any] = {}
    for name, value in outcome:
        if isinstance(value, str):
            update[name] = clean(value)
        elif isinstance(value, dict):
            update[name] = {k: clean(v) for k, v in value.items()}
        elif isinstance(value, BaseModel):
            update[name] = _scrub(value, secrets)
    return outcome.model_copy(update=update)
