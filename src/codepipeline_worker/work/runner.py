"""The work side's service: run the user's work function on a claimed job and report what it returned.

Success and StillRunning become PutJobSuccessResult (StillRunning with a continuation token), Failure becomes
PutJobFailureResult; partner jobs use the third-party variants, with the client token read by clientId. An
exception in the work function, or a result CodePipeline would refuse, becomes a failure result whose message
names only the problem, never a value.

Each job runs once (`once.RunOnce`): its details are read first, before any of the user's code (a job that
CodePipeline no longer has for this worker is not run), then the work function runs, and its outcome is stored
with the job's once-only record before it is reported. A message delivered again after that gets the stored
outcome, and reports it; nothing runs again.

What happens to the queue message:
- the result was reported, or CodePipeline says the job is no longer this worker's (it completed, timed out or
  does not exist): the message is done;
- the result could not be reported (throttling after retries, the network, no client token), the job's work is
  running in another delivery, or the once-only record could not be written: `JobNotReported` is raised, and the
  message is delivered again later: its stored outcome is reported then, or its work runs if it never did.
"""

from __future__ import annotations

import importlib
import time
import traceback
from typing import TYPE_CHECKING, Any, Literal

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, SecretStr, ValidationError

from ..shared.adapter import (
    AwsCallError,
    ClientTokenError,
    ClientTokenStore,
    CodePipelineAdapter,
    create_codepipeline_client,
    create_dynamodb_client,
)
from ..shared.errors import ConfigurationError
from ..shared.models import JobType, ResultModel
from ..shared.observability import logger, metrics
from ..shared.tokens import checked_token_store
from .artifacts import ArtifactError
from .job import Failure, Job, JobDetails, StillRunning, Success
from .once import RecordUnavailable, RunOnce, WorkInProgress

if TYPE_CHECKING:
    from ..shared.messages import JobMessage
    from .config import WorkerSettings
    from .job import Outcome, WorkFunction

# CodePipeline's answers that mean the job is no longer this worker's to report: no retry will change them.
STALE_CODES = frozenset({"InvalidJobStateException", "JobNotFoundException", "InvalidJobException"})
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
}


class RunResult(ResultModel):
    """What became of one job on the work side. Never holds a secret, nor the work's texts."""

    job_id: str
    job_type: JobType
    result: Literal["succeeded", "failed", "continued", "stale"]
    failure_type: str | None = None
    error: str | None = None


class JobNotReported(RuntimeError):
    """The job's result could not be reported; the queue message should be delivered again."""

    def __init__(self, job_id: str, code: str) -> None:
        super().__init__(f"job {job_id}: the result was not reported ({code}); the message will be redelivered")
        self.job_id = job_id
        self.code = code


class _DetailsUnavailable(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def load_work_function(reference: str) -> WorkFunction:
    """`package.module:function`, imported at cold start: a bad WORK_FUNCTION fails the cold start."""
    module_name, _, name = reference.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        problem = f"module {module_name} cannot be imported ({type(exc).__name__})"
    else:
        function = getattr(module, name, None)
        if callable(function):
            return function  # type: ignore[no-any-return]
        problem = f"{module_name} has no function {name}"
    raise ConfigurationError(f"invalid configuration: WORK_FUNCTION: {problem}")


class WorkRunner:
    """Runs the work function on each job message, once per job, and reports its outcome to CodePipeline.
    Without `once` (tests of the reporting alone), every delivery runs the work."""

    def __init__(
        self,
        codepipeline: CodePipelineAdapter,
        tokens: ClientTokenStore | None,
        work: WorkFunction,
        once: RunOnce | None = None,
    ) -> None:
        self._codepipeline = codepipeline
        self._tokens = tokens
        self._work = work
        self.once = once

    @classmethod
    def from_settings(cls, settings: WorkerSettings) -> WorkRunner:
        work = load_work_function(settings.work_function)
        once = RunOnce(create_dynamodb_client(settings), str(settings.job_table_name))
        return cls(CodePipelineAdapter(create_codepipeline_client(settings)), checked_token_store(settings), work, once)

    def run(self, message: JobMessage, deadline: float | None = None) -> RunResult:
        """Run one job (or take the outcome an earlier delivery stored); report it. Raises JobNotReported when the
        message should come back."""
        token = self._token(message) if message.job_type == "thirdParty" else None
        logger.append_keys(job_id=message.job_id, job_type=message.job_type)
        try:
            answer = self._run_once(message, token, deadline)
        except _DetailsUnavailable as exc:
            raise JobNotReported(message.job_id, exc.code) from None
        except WorkInProgress:
            logger.warning("the job's work is running in another delivery: this message comes back later")
            metrics.add_metric(name="WorkInProgressElsewhere", unit=MetricUnit.Count, value=1)
            raise JobNotReported(message.job_id, "WorkInProgress") from None
        except RecordUnavailable as exc:
            logger.error("the job's once-only record could not be written", error=exc.code)
            raise JobNotReported(message.job_id, exc.code) from None
        finally:
            logger.remove_keys(["job_id", "job_type"])
        if "stale" in answer:
            code = str(answer["stale"])
            return self._finish(RunResult(job_id=message.job_id, job_type=message.job_type, result="stale", error=code))
        kind = _STORED_KINDS[answer["kind"]]
        outcome = kind.model_validate(answer["outcome"])
        job = Job(message, _no_details, deadline)
        return self._report(job, outcome, token)

    def _run_once(self, message: JobMessage, token: SecretStr | None, deadline: float | None) -> dict[str, Any]:
        if self.once is None:
            return self._work_on(message, token, deadline)
        return self.once.run(message, lambda: self._work_on(message, token, deadline), deadline)

    def _work_on(self, message: JobMessage, token: SecretStr | None, deadline: float | None) -> dict[str, Any]:
        """The job's details, then its work: the outcome, cleared of the secrets the runner knows, as stored. The
        details are read again when the job's artifact credentials need renewing."""
        known_secrets: list[str] = [token.get_secret_value()] if token is not None else []

        def load_details(msg: JobMessage) -> JobDetails:
            try:
                if token is None:
                    data: Any = self._codepipeline.job_details(msg.job_id)
                else:
                    _, data = self._codepipeline.third_party_job_details(msg.job_id, token)
            except AwsCallError as exc:
                error = _DetailsUnavailable(exc.code)
            else:
                details = JobDetails.from_job_data(data)
                if details.artifact_credentials is not None:
                    known_secrets.extend(details.artifact_credentials.secrets())
                # The configuration's names only: a property may be secret
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

        job = Job(message, load_details, deadline)
        try:
            job.details()  # before any of the user's code
        except _DetailsUnavailable as exc:
            if exc.code in STALE_CODES:  # not this worker's any more: nothing runs, now or at a later delivery
                return {"stale": exc.code}
            raise
        outcome = _scrub(self._outcome(job), known_secrets)
        kind = next(name for name, model in _STORED_KINDS.items() if isinstance(outcome, model))
        return {"kind": kind, "outcome": outcome.model_dump(mode="json", by_alias=True, exclude_none=True)}

    # -- the work function -----------------------------------------------------------------------------

    def _outcome(self, job: Job) -> Outcome:
        remaining = job.remaining_time_s()
        logger.debug(
            "running the work function",
            work_function=getattr(self._work, "__qualname__", type(self._work).__name__),
            seconds_left=None if remaining is None else round(remaining, 3),
        )
        started = time.monotonic()
        try:
            outcome = self._work(job)
        except _DetailsUnavailable:  # renewing the artifact credentials failed: the message comes back
            raise
        except ValidationError as exc:
            if exc.title not in _OUTCOME_NAMES:
                return _raised(exc)
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or exc.title}: {e['msg'].removeprefix('Value error, ')}"
                for e in exc.errors(include_input=False, include_url=False, include_context=False)[:10]
            )
            logger.error("the work function built an invalid result", result_type=exc.title, problems=problems)
            return Failure(message=f"The work function returned an invalid {exc.title}: {problems}")
        except Exception as exc:  # noqa: BLE001 - any failure of the user's code becomes the job's failure
            return _raised(exc)
        logger.debug(
            "the work function returned", outcome=type(outcome).__name__, seconds=round(time.monotonic() - started, 3)
        )
        if not isinstance(outcome, _OUTCOME_TYPES):
            logger.error("the work function returned something else", returned_type=type(outcome).__name__)
            return Failure(
                message=f"The work function returned {type(outcome).__name__}, not Success, Failure or StillRunning"
            )
        if job.type == "thirdParty" and isinstance(outcome, Success) and outcome.output_variables:
            return Failure(message="Partner actions cannot set output variables (PutThirdPartyJobSuccessResult)")
        return outcome

    # -- reporting ----------------------------------------------------------------------------------------

    def _report(self, job: Job, outcome: Outcome, token: SecretStr | None) -> RunResult:
        try:
            self._put(job, outcome, token)
        except AwsCallError as exc:
            code = exc.code
        else:
            return self._finish(_result(job, outcome))
        if code == "OutputVariablesSizeExceededException" and isinstance(outcome, Success):
            return self._report(job, Failure(message="The output variables exceed CodePipeline's size limit"), token)
        if code in STALE_CODES:
            logger.warning("CodePipeline refused the result: the job is no longer this worker's", error=code)
            return self._finish(RunResult(job_id=job.id, job_type=job.type, result="stale", error=code))
        logger.error("result not reported", job_id=job.id, error=code)
        raise JobNotReported(job.id, code)

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


def _result(job: Job, outcome: Outcome) -> RunResult:
    if isinstance(outcome, Failure):
        return RunResult(job_id=job.id, job_type=job.type, result="failed", failure_type=outcome.type)
    if isinstance(outcome, StillRunning):
        return RunResult(job_id=job.id, job_type=job.type, result="continued")
    return RunResult(job_id=job.id, job_type=job.type, result="succeeded")


def _raised(exc: Exception) -> Failure:
    """The failure for an exception in the work function: its type, never its message (which may quote
    anything); where it was raised goes to the log, for the person who debugs it. An ArtifactError is the
    exception: its message is built from artifact names, S3 error codes and zip entry names only."""
    if isinstance(exc, ArtifactError):
        logger.error("an artifact could not be read or written", error_type=type(exc).__name__, error=str(exc))
        metrics.add_metric(name="ArtifactErrors", unit=MetricUnit.Count, value=1)
        return Failure(message=str(exc), type=exc.type)
    frames = traceback.extract_tb(exc.__traceback__)
    where = [f"{frame.filename}:{frame.lineno} in {frame.name}" for frame in frames[-5:]]
    logger.error("the work function raised", error_type=type(exc).__name__, where=where)
    metrics.add_metric(name="WorkErrors", unit=MetricUnit.Count, value=1)
    return Failure(message=f"The work function raised {type(exc).__name__}; the worker's log has where.")


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
