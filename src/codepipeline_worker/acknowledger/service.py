"""The acknowledger's service: claims CodePipeline jobs, concurrently, within the invocation's time.

A job is claimed when AcknowledgeJob / AcknowledgeThirdPartyJob answers InProgress; nothing else counts.
Every job handed to or found by an invocation ends in exactly one JobResult: acknowledged, notClaimed,
conflict (another worker holds it) or failed (with the error code), including the jobs that time ran out for.
"""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast, get_args

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import SecretStr, ValidationError

from ..shared.adapter import (
    AwsCallError,
    ClientTokenError,
    ClientTokenStore,
    CodePipelineAdapter,
    WorkQueue,
    create_codepipeline_client,
    open_work_queue,
    worst_case_call_s,
)
from ..shared.errors import job_error_class
from ..shared.messages import JobMessage
from ..shared.models import JobStatus
from ..shared.observability import logger, metrics
from ..shared.tokens import checked_token_store
from .events import ActionStateChangeEvent, CustomJobEvent, Event, JobBatchEvent, ScheduledEvent, ThirdPartyJobEvent
from .results import BatchResult, Counts, Handoff, IgnoredResult, JobResult, Outcome, PollResult, PollSummary

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from mypy_boto3_codepipeline.type_defs import JobTypeDef, ThirdPartyJobTypeDef

    from ..shared.deadline import Deadline
    from ..shared.models import JobType
    from .config import PollTarget, Settings

JobEvent = CustomJobEvent | ThirdPartyJobEvent

# A new poll starts only while this much time is left to acknowledge what it returns: a job that is polled
# but not acknowledged waits for CodePipeline to dispatch it again.
MIN_POLL_TIME_S = 2.0
# After an action STARTED event, the job may not be pollable yet: poll again after these pauses.
STARTED_RETRY_DELAYS_S = (0.25, 0.5, 1.0, 2.0, 4.0)

CONFLICT_CODE = "InvalidNonceException"
NOT_ATTEMPTED = "NotAttempted"
DEADLINE_EXCEEDED = "DeadlineExceeded"
# Problems with one job. Any other code (throttling after retries, access denied, no endpoint, no secret,
# no time) is systemic: when it stops every call of an invocation, the invocation fails so alarms fire.
JOB_ERROR_CODES = frozenset(
    {
        "InvalidNonceException",
        "JobNotFoundException",
        "InvalidClientTokenException",
        "ValidationException",
        "InvalidJobException",
        "ClientTokenNotFound",
        "NonceUnavailable",
        "InvalidServiceResponse",
        "ClientIdRequired",
    }
)
EXPLANATIONS = {
    "InvalidNonceException": "another worker claimed the job, or the nonce is stale",
    "JobNotFoundException": "CodePipeline has no such job, or it has already completed",
    "InvalidClientTokenException": "the clientToken does not belong to this job's clientId",
    "ValidationException": "CodePipeline rejected the request as malformed",
    "InvalidJobException": "the job is not in a state that allows this call",
    "ClientTokenNotFound": "the client-token secret has no entry for the job's clientId",
    "ClientTokenNotConfigured": "the job has no clientToken and CLIENT_TOKEN_SECRET_ID is not set",
    "ClientTokenUnavailable": "the client-token secret could not be read",
    "ClientTokenSecretInvalid": "the client-token secret is not a JSON object mapping clientId to clientToken",
    "NonceUnavailable": "GetThirdPartyJobDetails returned no nonce",
    "InvalidServiceResponse": "CodePipeline's answer did not match its API",
    "ClientIdRequired": (
        "a partner job handed to the work queue needs its clientId, by which the work side reads the token;"
        " the job was not claimed"
    ),
    NOT_ATTEMPTED: "time ran out before the call was made; CodePipeline will dispatch the job again",
    DEADLINE_EXCEEDED: "the call had not answered when time ran out; whether it claimed the job is unknown",
}
_STATUSES = frozenset(get_args(JobStatus))
OUTCOME_METRICS = {
    Outcome.ACKNOWLEDGED: "JobsAcknowledged",
    Outcome.NOT_CLAIMED: "JobsNotClaimed",
    Outcome.CONFLICT: "JobConflicts",
    Outcome.FAILED: "JobsFailed",
}


@dataclass
class _PollState:
    target: PollTarget
    retry_delays: Iterator[float]
    polls: int = 0
    jobs_found: int = 0
    error: str | None = None

    def summary(self) -> PollSummary:
        return PollSummary(action_type=str(self.target), polls=self.polls, jobs_found=self.jobs_found, error=self.error)


# The failure reported to CodePipeline for a job claimed but refused by the work queue.
HANDOFF_FAILURE_MESSAGE = (
    "The job worker claimed this job but could not put it on its work queue ({code}). Nothing ran; retry the action."
)


@dataclass(frozen=True)
class _Found:
    """A job a poll returned, with the queue message built from what the poll said about it."""

    job: JobEvent
    message: JobMessage | None


@dataclass(frozen=True)
class _Claimed:
    status: str
    token: SecretStr | None  # a partner job's client token, kept to report a failed hand-off; None for custom
    message: JobMessage | None


class _Claims:
    """One invocation's calls: a pool of ACK_CONCURRENCY threads, and the claims it runs, in order.

    Leaving the block never waits for a thread: a call that hangs must not hold the invocation past its
    deadline (ThreadPoolExecutor's own `with` would wait). Calls not started by then are cancelled.
    """

    def __init__(self, workers: int, deadline: Deadline) -> None:
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="codepipeline")
        self.deadline = deadline
        self.submitted: list[tuple[Future[JobResult], JobEvent, str | None]] = []

    def __enter__(self) -> _Claims:
        return self

    def __exit__(self, *_: object) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


PolledItem = _Found | JobResult


def create_work_queue(settings: Settings) -> WorkQueue | None:
    """The work queue the acknowledger hands claimed jobs to, or None when JOB_QUEUE_URL is not set."""
    if settings.job_queue_url is None:
        return None
    return open_work_queue(settings.job_queue_url, settings, settings.ack_concurrency)


class JobService:
    """Acknowledges direct job events and polls the configured action types."""

    def __init__(
        self,
        settings: Settings,
        codepipeline: CodePipelineAdapter,
        tokens: ClientTokenStore | None = None,
        *,
        queue: WorkQueue | None = None,
        started_retry_delays: Sequence[float] = STARTED_RETRY_DELAYS_S,
    ) -> None:
        self._settings = settings
        self._codepipeline = codepipeline
        self._tokens = tokens
        self._queue = queue
        self._started_retry_delays = tuple(started_retry_delays)
        self._worst_case_call_s = worst_case_call_s(settings.max_attempts)

    @classmethod
    def from_settings(cls, settings: Settings) -> JobService:
        """The service of one execution environment: clients built, and the token secret checked, once."""
        client = create_codepipeline_client(settings, settings.ack_concurrency)
        return cls(
            settings, CodePipelineAdapter(client), checked_token_store(settings), queue=create_work_queue(settings)
        )

    def handle(self, event: Event, deadline: Deadline) -> dict[str, Any]:
        """Do what the event asks and return the JSON-serializable result."""
        if isinstance(event, CustomJobEvent | ThirdPartyJobEvent):
            return self.acknowledge(event, deadline)
        if isinstance(event, JobBatchEvent):
            return self.acknowledge_batch(event.jobs, deadline).to_json()
        if isinstance(event, ScheduledEvent):
            return self.poll(self._settings.action_types, deadline, trigger="scheduled").to_json()
        return self.on_action_state_change(event, deadline)

    # -- direct events ---------------------------------------------------------------------------------

    def acknowledge(self, job: JobEvent, deadline: Deadline) -> dict[str, Any]:
        """One job. A conflict or failure raises an error named after its code, so the caller sees it.

        When even a call that hangs, with all its retries, would end before the deadline, the job is claimed
        inline: a thread costs more than the claim's own work. Otherwise it goes through the pool, which never
        waits past the deadline."""
        calls = 1 if isinstance(job, CustomJobEvent) else 3  # a partner job may read the secret and the details
        if self._queue is not None:
            calls += 2  # the hand-off, and the failure report if the queue refuses it
        if deadline.remaining() > calls * self._worst_case_call_s:
            result = self._claim(job, None, deadline)
        else:
            [result] = self._claim_all([job], deadline)
        self._record_one(result)
        if result.outcome in (Outcome.CONFLICT, Outcome.FAILED):
            code = result.error or "JobError"
            raise job_error_class(code)(_explain(result), job_id=result.job_id)
        return result.to_json()

    def acknowledge_batch(self, jobs: Sequence[JobEvent], deadline: Deadline) -> BatchResult:
        results = self._claim_all(jobs, deadline)
        self._record(results)
        _raise_if_systemic(results, [])
        return BatchResult(results=results, counts=Counts.of(results))

    def _claim_all(self, jobs: Sequence[JobEvent], deadline: Deadline) -> list[JobResult]:
        with _Claims(self._settings.ack_concurrency, deadline) as claims:
            for job in jobs:
                self._submit_claim(claims, job, None, None)
            return self._collect(claims)

    # -- polling ---------------------------------------------------------------------------------------

    def on_action_state_change(self, event: ActionStateChangeEvent, deadline: Deadline) -> dict[str, Any]:
        detail = event.detail
        name = str(detail.action_type)
        context = {"pipeline": detail.pipeline, "stage": detail.stage, "action": detail.action, "action_type": name}
        if detail.state != "STARTED":
            return self._ignored(f"the action's state is {detail.state}, not STARTED", context)
        target = next((t for t in self._settings.action_types if str(t) == name), None)
        if target is None:
            return self._ignored(f"action type {name} is not in ACTION_TYPES", context)
        logger.info("action started: polling its action type", extra=context)
        return self.poll([target], deadline, trigger="actionStarted", retry_when_empty=True).to_json()

    def poll(
        self,
        targets: Sequence[PollTarget],
        deadline: Deadline,
        *,
        trigger: Literal["scheduled", "actionStarted"],
        retry_when_empty: bool = False,
    ) -> PollResult:
        """Poll every target, acknowledge each job as soon as its poll returns, and poll again while full
        batches come back (or, after STARTED, while nothing has come back yet) and time remains."""
        delays = self._started_retry_delays if retry_when_empty else ()
        states = [_PollState(target, iter(delays)) for target in targets]
        unusable: list[JobResult] = []
        with _Claims(self._settings.ack_concurrency, deadline) as claims:
            pending = {claims.pool.submit(self._poll_once, s.target, 0.0): s for s in states}
            while pending:
                done, _ = wait(pending, timeout=deadline.remaining(), return_when=FIRST_COMPLETED)
                if not done:
                    break
                for future in [f for f in pending if f in done]:  # in submission order: deterministic
                    state = pending.pop(future)
                    delay = self._take_poll(future, state, claims, unusable)
                    if delay is not None:
                        pending[claims.pool.submit(self._poll_once, state.target, delay)] = state
            for future, state in pending.items():
                future.cancel()
                state.error = DEADLINE_EXCEEDED
                logger.error("poll did not finish in time", action_type=str(state.target))
            results = unusable + self._collect(claims)
        summaries = [s.summary() for s in states]
        self._record(results, summaries)
        _raise_if_systemic(results, summaries)
        return PollResult(trigger=trigger, polls=summaries, results=results, counts=Counts.of(results))

    def _take_poll(
        self,
        future: Future[list[PolledItem]],
        state: _PollState,
        claims: _Claims,
        unusable: list[JobResult],
    ) -> float | None:
        """Claim what a poll found; return the pause before polling this target again, or None to stop."""
        try:
            found = future.result()
        except AwsCallError as exc:
            state.error = exc.code
            logger.error("poll failed", action_type=str(state.target), operation=exc.operation, error=exc.code)
            return None
        state.polls += 1
        state.jobs_found += len(found)
        logger.info("polled", action_type=str(state.target), jobs_found=len(found))
        for item in found:
            if isinstance(item, JobResult):
                unusable.append(item)
            else:
                self._submit_claim(claims, item.job, str(state.target), item.message)
        remaining = claims.deadline.remaining()
        if remaining < MIN_POLL_TIME_S:
            return None
        if len(found) >= self._settings.max_batch_size:
            return 0.0
        if not found:
            delay = next(state.retry_delays, None)
            if delay is not None and remaining >= delay + MIN_POLL_TIME_S:
                return delay
        return None

    def _poll_once(self, target: PollTarget, delay: float) -> list[PolledItem]:
        if delay:
            time.sleep(delay)
        name = str(target)
        if target.owner == "Custom":
            jobs = self._codepipeline.poll_for_jobs(
                target, self._settings.max_batch_size, self._settings.poll_query_param
            )
            hand_off = self._queue is not None
            return [_custom_from_poll(job, name, hand_off) for job in jobs]
        partner_jobs = self._codepipeline.poll_for_third_party_jobs(target, self._settings.max_batch_size)
        return [_third_party_from_poll(job, name) for job in partner_jobs]

    # -- claiming one job ------------------------------------------------------------------------------

    def _submit_claim(
        self, claims: _Claims, job: JobEvent, action_type: str | None, message: JobMessage | None
    ) -> None:
        future = claims.pool.submit(self._claim, job, action_type, claims.deadline, message)
        claims.submitted.append((future, job, action_type))

    def _collect(self, claims: _Claims) -> list[JobResult]:
        """Every submitted job's result, in submission order; what time ran out for is reported, not lost."""
        wait([f for f, _, _ in claims.submitted], timeout=claims.deadline.remaining())
        results = []
        for future, job, action_type in claims.submitted:
            if future.cancel():
                results.append(_failed(job, NOT_ATTEMPTED, action_type))
            elif future.done():
                results.append(future.result())
            else:
                results.append(_failed(job, DEADLINE_EXCEEDED, action_type))
        for result in results:
            if result.error in (NOT_ATTEMPTED, DEADLINE_EXCEEDED):
                logger.error("job not acknowledged in time", job_id=result.job_id, error=result.error)
        return results

    def _claim(
        self, job: JobEvent, action_type: str | None, deadline: Deadline, message: JobMessage | None = None
    ) -> JobResult:
        refused = self._refuse(job, deadline)
        if refused is not None:
            failed = _failed(job, refused, action_type)
            return failed if refused == NOT_ATTEMPTED else _log(failed)  # time-outs are logged by _collect
        try:
            claimed = self._acknowledge(job, message)
        except AwsCallError as exc:
            return _log(_failed(job, exc.code, action_type, conflict=exc.code == CONFLICT_CODE))
        except ClientTokenError as exc:
            return _log(_failed(job, exc.code, action_type))
        except Exception as exc:  # noqa: BLE001 - one job's surprise must not lose the other jobs' results
            # Only the type is logged: an unknown exception's message may hold anything.
            logger.error("unexpected error", job_id=job.job_id, error_type=type(exc).__name__)
            return _failed(job, "InternalError", action_type)
        status = claimed.status
        if status not in _STATUSES:
            return _log(_failed(job, "InvalidServiceResponse", action_type))
        outcome = Outcome.ACKNOWLEDGED if status == "InProgress" else Outcome.NOT_CLAIMED
        result = JobResult(
            job_id=job.job_id,
            job_type=job.job_type,
            outcome=outcome,
            status=cast("JobStatus", status),
            action_type=action_type,
        )
        if outcome is Outcome.ACKNOWLEDGED and self._queue is not None:
            result = self._hand_off(self._queue, job, result, claimed)
        return _log(result)

    def _refuse(self, job: JobEvent, deadline: Deadline) -> str | None:
        """Why a job is not even tried: no time left, or a partner job the work side could not report on."""
        if deadline.remaining() <= 0:
            return NOT_ATTEMPTED
        if self._queue is not None and isinstance(job, ThirdPartyJobEvent) and job.client_id is None:
            return "ClientIdRequired"
        return None

    def _acknowledge(self, job: JobEvent, message: JobMessage | None) -> _Claimed:
        if isinstance(job, CustomJobEvent):
            return _Claimed(self._codepipeline.acknowledge_job(job.job_id, job.nonce), None, message)
        token = job.client_token or self._token_for(job.client_id)
        nonce = job.nonce
        if nonce is None:
            nonce, data = self._codepipeline.third_party_job_details(job.job_id, token)
            if self._queue is not None and job.client_id is not None:
                message = JobMessage.from_job_data(job.job_id, "thirdParty", data, client_id=job.client_id)
        if nonce is None:
            raise ClientTokenError("NonceUnavailable", EXPLANATIONS["NonceUnavailable"])
        return _Claimed(self._codepipeline.acknowledge_third_party_job(job.job_id, nonce, token), token, message)

    # -- hand-off --------------------------------------------------------------------------------------

    def _hand_off(self, queue: WorkQueue, job: JobEvent, result: JobResult, claimed: _Claimed) -> JobResult:
        """Put a claimed job on the work queue. If the queue refuses it, fail the job back to CodePipeline at
        once, rather than leave its pipeline waiting for the action's timeout."""
        message = claimed.message or JobMessage(
            job_id=job.job_id, job_type=job.job_type, client_id=getattr(job, "client_id", None)
        )
        try:
            queue.send(message.to_body())
        except AwsCallError as exc:
            error = exc.code
        else:
            return result.model_copy(update={"handoff": Handoff.QUEUED})
        failure = {"type": "SystemUnavailable", "message": HANDOFF_FAILURE_MESSAGE.format(code=error)}
        try:
            if claimed.token is None:  # a custom job
                self._codepipeline.put_job_failure_result(job.job_id, failure)
            else:
                self._codepipeline.put_third_party_job_failure_result(job.job_id, claimed.token, failure)
        except AwsCallError as exc:
            logger.error("hand-off failed and the job could not be failed back", job_id=job.job_id, error=exc.code)
            return result.model_copy(update={"handoff": Handoff.LOST, "handoff_error": error})
        logger.error("hand-off failed: the job was failed back to CodePipeline", job_id=job.job_id, error=error)
        return result.model_copy(update={"handoff": Handoff.FAILED_BACK, "handoff_error": error})

    def _token_for(self, client_id: str | None) -> SecretStr:
        if self._tokens is None or client_id is None:
            raise ClientTokenError("ClientTokenNotConfigured", EXPLANATIONS["ClientTokenNotConfigured"])
        return self._tokens.token_for(client_id)

    # -- reporting -------------------------------------------------------------------------------------

    def _ignored(self, reason: str, context: dict[str, str]) -> dict[str, Any]:
        logger.info("event ignored", extra={"reason": reason, **context})
        metrics.add_metric(name="EventsIgnored", unit=MetricUnit.Count, value=1)
        return IgnoredResult(reason=reason).to_json()

    def _record(self, results: list[JobResult], summaries: Sequence[PollSummary] = ()) -> None:
        """Metrics for a batch or a poll: every counter, zeros included, so that dashboards and alarms see
        each run; and one summary line."""
        counts = Counts.of(results)
        if summaries:
            metrics.add_metric(name="JobsPolled", unit=MetricUnit.Count, value=sum(s.jobs_found for s in summaries))
            metrics.add_metric(name="PollFailures", unit=MetricUnit.Count, value=sum(1 for s in summaries if s.error))
        by_outcome = counts.to_json()  # keyed by the outcomes' own names: acknowledged, notClaimed, ...
        for outcome, name in OUTCOME_METRICS.items():
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=by_outcome[outcome.value])
        if self._queue is not None:
            metrics.add_metric(name="JobsQueued", unit=MetricUnit.Count, value=counts.queued or 0)
            metrics.add_metric(name="HandoffFailures", unit=MetricUnit.Count, value=counts.handoff_failed or 0)
        acknowledged = [r.job_id for r in results if r.outcome is Outcome.ACKNOWLEDGED]
        logger.info("jobs done", extra={**counts.model_dump(exclude_none=True), "acknowledged_job_ids": acknowledged})

    @staticmethod
    def _record_one(result: JobResult) -> None:
        """Metrics for a single job: the counters that moved; and, when it was claimed, the invocation's line."""
        metrics.add_metric(name=OUTCOME_METRICS[result.outcome], unit=MetricUnit.Count, value=1)
        if result.handoff is not None:
            name = "JobsQueued" if result.handoff is Handoff.QUEUED else "HandoffFailures"
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
        if result.outcome is Outcome.ACKNOWLEDGED:
            logger.info(
                "job acknowledged", extra={"status": result.status, "handoff": result.handoff, **_log_fields(result)}
            )


def _failed(job: JobEvent, code: str, action_type: str | None, *, conflict: bool = False) -> JobResult:
    return JobResult(
        job_id=job.job_id,
        job_type=job.job_type,
        outcome=Outcome.CONFLICT if conflict else Outcome.FAILED,
        error=code,
        action_type=action_type,
    )


def _log_fields(result: JobResult) -> dict[str, Any]:
    return {"job_id": result.job_id, "job_type": result.job_type, "action_type": result.action_type}


def _log(result: JobResult) -> JobResult:
    """One job's line. A claimed job's is DEBUG: a batch or a poll logs one INFO line with the claimed jobs' ids
    (`_record`), a single job one of its own (`_record_one`); each INFO line costs about 45 µs of CPU, a disabled
    DEBUG line about 1 µs. A job not claimed is logged at WARNING or ERROR, each on its own line."""
    fields = _log_fields(result)
    if result.outcome is Outcome.ACKNOWLEDGED:
        logger.debug("job acknowledged", extra={"status": result.status, **fields})
    elif result.outcome is Outcome.NOT_CLAIMED:
        logger.warning("job not claimed", extra={"status": result.status, **fields})
    elif result.outcome is Outcome.CONFLICT:
        logger.warning("job claimed by another worker", extra={"error": result.error, **fields})
    else:
        logger.error("job acknowledgement failed", extra={"error": result.error, **fields})
    return result


def _explain(result: JobResult) -> str:
    code = result.error or "JobError"
    reason = EXPLANATIONS.get(code, "CodePipeline could not be reached or refused the call")
    return f"job {result.job_id} ({result.job_type}) was not acknowledged: {code}: {reason}"


def _custom_from_poll(job: JobTypeDef, action_type: str, hand_off: bool) -> PolledItem:
    try:
        event = CustomJobEvent.model_validate({"jobId": job.get("id"), "nonce": job.get("nonce")})
        message = (
            JobMessage.from_job_data(event.job_id, "custom", job.get("data"), account_id=job.get("accountId"))
            if hand_off
            else None
        )
    except ValidationError:
        return _unusable(str(job.get("id", "")), "custom", action_type)
    return _Found(event, message)


def _third_party_from_poll(job: ThirdPartyJobTypeDef, action_type: str) -> PolledItem:
    try:
        event = ThirdPartyJobEvent.model_validate({"jobId": job.get("jobId"), "clientId": job.get("clientId")})
    except ValidationError:
        return _unusable(str(job.get("jobId", "")), "thirdParty", action_type)
    return _Found(event, None)  # its message is built from GetThirdPartyJobDetails, when the nonce is fetched


def _unusable(job_id: str, job_type: JobType, action_type: str) -> JobResult:
    logger.error("poll returned a job that does not match the API", job_id=job_id[:512], action_type=action_type)
    return JobResult(
        job_id=job_id[:512],
        job_type=job_type,
        outcome=Outcome.FAILED,
        error="InvalidServiceResponse",
        action_type=action_type,
    )


def _raise_if_systemic(results: list[JobResult], summaries: list[PollSummary]) -> None:
    """Fail the invocation, so that alarms fire, when no call of it got through to a job."""
    if summaries and all(s.polls == 0 for s in summaries):  # no poll of any action type got an answer
        codes = Counter(s.error or "" for s in summaries)
    elif results and all(r.outcome is Outcome.FAILED and r.error not in JOB_ERROR_CODES for r in results):
        codes = Counter(r.error or "" for r in results)
    else:
        return
    code = next(iter(codes)) if len(codes) == 1 else "SystemicFailure"
    detail = ", ".join(f"{c} x{n}" for c, n in codes.most_common())
    logger.error("no call succeeded", errors=detail)
    raise job_error_class(code)(f"no CodePipeline call succeeded: {detail}")
