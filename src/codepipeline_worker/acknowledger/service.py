"""The acknowledger's service: claims CodePipeline jobs, concurrently, within the invocation's time.

A job is claimed when AcknowledgeJob / AcknowledgeThirdPartyJob answers InProgress; nothing else counts.
Every job handed to or found by an invocation ends in exactly one JobResult: acknowledged, notClaimed,
conflict (another worker holds it), failed (with the error code) or duplicate (a batch named it again).

Which invocations fail: only polls (scheduled or STARTED), whose events hold no secret, and only when a retry can
help: no call of the poll got through (a systemic error), or a claimed job's hand-off is pending. Direct job
events and batches carry nonces and client tokens, which Lambda would copy into the failure destination with a
failed invocation's event: they always return their results, errors named in them.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, cast

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import ValidationError

from ..shared.adapter import (
    SEND_BATCH_BYTES,
    SQS_BATCH_ENTRIES,
    AwsCallError,
    CodePipelineAdapter,
    HandoffLedger,
    HandoffRecord,
    create_codepipeline_client,
    create_dynamodb_client,
    open_work_queue,
)
from ..shared.errors import HandoffPending, job_error_class
from ..shared.observability import debug_on, logger, metrics
from ..shared.tokens import checked_token_store
from .budget import Budget
from .claims import (
    DEADLINE_EXCEEDED,
    JOB_ERROR_CODES,
    NOT_ATTEMPTED,
    Claimed,
    Claimer,
    Handoffs,
    explain,
    failed,
    lease_ms,
    new_record,
)
from .events import CustomJobEvent, ThirdPartyJobEvent
from .results import Handoff, JobResult, Outcome

# What only batches, polls and EventBridge events use (their events, results, the reconciler, the full hand-off
# message) is imported where they first need it: a direct job's execution environment never imports it.
if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from mypy_boto3_codepipeline.type_defs import JobTypeDef, ThirdPartyJobTypeDef

    from ..shared.adapter import ClientTokenStore
    from ..shared.deadline import Deadline
    from ..shared.messages import JobMessage
    from ..shared.models import JobType
    from .batch_and_poll_events import ActionStateChangeEvent
    from .batch_and_poll_results import BatchResult, PollResult, PollSummary, ReconcileSummary
    from .config import PollTarget, Settings
    from .events import Event
    from .reconcile import Reconciler, Settled

JobEvent = CustomJobEvent | ThirdPartyJobEvent

# After an action STARTED event, the job may not be pollable yet: poll again after these pauses.
STARTED_RETRY_DELAYS_S = (0.25, 0.5, 1.0, 2.0, 4.0)
OUTCOME_METRICS = {
    Outcome.ACKNOWLEDGED: "JobsAcknowledged",
    Outcome.NOT_CLAIMED: "JobsNotClaimed",
    Outcome.CONFLICT: "JobConflicts",
    Outcome.FAILED: "JobsFailed",
    Outcome.DUPLICATE: "JobsDuplicated",
}
HANDOFF_METRICS = {
    Handoff.QUEUED: "JobsQueued",
    Handoff.PENDING: "HandoffsPending",
    Handoff.FAILED_BACK: "HandoffFailures",
    Handoff.LOST: "HandoffFailures",
}


class _PollState:
    """One target's polls in an invocation. This module's mutable records are plain classes with slots, not
    dataclasses: defining a dataclass compiles its generated methods at import, at every cold start (see
    claims.Handoffs)."""

    __slots__ = ("error", "jobs_found", "polls", "retry_delays", "seen", "target")

    def __init__(self, target: PollTarget, retry_delays: Iterator[float]) -> None:
        self.target = target
        self.retry_delays = retry_delays
        self.polls = 0
        self.jobs_found = 0
        self.error: str | None = None
        # The jobs this invocation's polls of the target returned: a job dispatched again before its claim landed
        # (its dispatch timed out while the claim waited for a thread or a slow answer) is not news.
        self.seen: set[str] = set()

    def summary(self) -> PollSummary:
        from .batch_and_poll_results import PollSummary  # noqa: PLC0415 - see the imports

        return PollSummary(action_type=str(self.target), polls=self.polls, jobs_found=self.jobs_found, error=self.error)


class _Found(NamedTuple):  # NamedTuples, not frozen dataclasses: see claims.Handoffs
    """A job a poll returned, with the queue message built from what the poll said about it."""

    job: JobEvent
    message: JobMessage | None


PolledItem = _Found | JobResult


class _Reconciling(NamedTuple):
    settling: list[Future[Settled]]
    error: str | None = None


# DynamoDB's BatchWriteItem takes at most 25 requests
_RECORDS_PER_WRITE = 25


class _Claims:
    """One invocation's claims: a pool of ACK_CONCURRENCY threads, and what was submitted to it, in order.

    Leaving the block never waits for a thread: a call that hangs must not hold the invocation past its
    deadline (ThreadPoolExecutor's own `with` would wait). Calls not started by then are cancelled.
    """

    __slots__ = ("deadline", "found", "lock", "pool", "recording", "submitted", "workers")

    def __init__(self, workers: int, deadline: Deadline) -> None:
        self.workers = workers
        self.deadline = deadline
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="codepipeline")
        # each claim, with the record written before it (a polled job's) or None
        self.submitted: list[tuple[Future[JobResult], JobEvent, str | None, HandoffRecord | None]] = []
        self.recording: list[Future[None]] = []  # records written before claims, then the claims
        self.found: list[JobResult] = []  # polled jobs that could not be claimed
        self.lock = threading.Lock()

    def __enter__(self) -> _Claims:
        return self

    def __exit__(self, *_: object) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


class _Batches:
    """The claims of one records write (a poll's jobs, up to 25): their claimed jobs gathered into SendMessageBatch
    calls of up to 10 messages, within the batch payload limit. The thread whose claim fills a batch, or ends the
    last of the claims, sends it: no thread ever waits for another's claim."""

    __slots__ = ("lock", "open", "ready", "size")

    def __init__(self, open_claims: int) -> None:
        self.open = open_claims  # claims not ended yet
        self.ready: list[tuple[Claimed, Future[JobResult]]] = []
        self.size = 0  # the ready messages' bytes
        self.lock = threading.Lock()

    def ended(self, claimed: tuple[Claimed, Future[JobResult]] | None) -> list[list[tuple[Claimed, Future[JobResult]]]]:
        """A claim ended, with its job to send (or None); the batches now due."""
        due = []
        size = len(claimed[0].body.encode()) if claimed is not None else 0
        with self.lock:
            self.open -= 1
            if claimed is not None:
                if self.ready and self.size + size > SEND_BATCH_BYTES:
                    due.append(self._take())
                self.ready.append(claimed)
                self.size += size
                if len(self.ready) == SQS_BATCH_ENTRIES:
                    due.append(self._take())
            if self.open == 0 and self.ready:
                due.append(self._take())
        return due

    def _take(self) -> list[tuple[Claimed, Future[JobResult]]]:
        batch, self.ready, self.size = self.ready, [], 0
        return batch


def create_handoffs(settings: Settings) -> Handoffs | None:
    """The work queue and the job table claimed jobs go to, or None when JOB_QUEUE_URL is not set."""
    if settings.job_queue_url is None or settings.job_table_name is None:
        return None
    queue = open_work_queue(settings.job_queue_url, settings, settings.ack_concurrency, validated=True)
    ledger = HandoffLedger(
        create_dynamodb_client(settings, settings.ack_concurrency, lazy=True, validated=True), settings.job_table_name
    )
    return Handoffs(queue, ledger)


class JobService:
    """Acknowledges direct job events and polls the configured action types."""

    def __init__(
        self,
        settings: Settings,
        codepipeline: CodePipelineAdapter,
        tokens: ClientTokenStore | None = None,
        *,
        handoffs: Handoffs | None = None,
        started_retry_delays: Sequence[float] = STARTED_RETRY_DELAYS_S,
    ) -> None:
        self._settings = settings
        self._codepipeline = codepipeline
        self._handoffs = handoffs
        self._started_retry_delays = tuple(started_retry_delays)
        self._budget = Budget.of(settings)
        self._claimer = Claimer(codepipeline, tokens, handoffs, self._budget)
        self._reconciler: Reconciler | None = None  # made at the first poll with a work queue

    @classmethod
    def from_settings(cls, settings: Settings) -> JobService:
        """The service of one execution environment: clients built, and the token secret checked, once."""
        # Every value the acknowledger's clients are called with comes from its validated events, settings and
        # records: botocore's own parameter validation is skipped (shared/adapter.py `_config`).
        client = create_codepipeline_client(settings, settings.ack_concurrency, validated=True)
        return cls(
            settings, CodePipelineAdapter(client), checked_token_store(settings), handoffs=create_handoffs(settings)
        )

    def handle(self, event: Event, deadline: Deadline) -> dict[str, Any]:
        """Do what the event asks and return the JSON-serializable result."""
        if debug_on():
            logger.debug(
                "handling the event", event_type=type(event).__name__, seconds_left=round(deadline.remaining(), 3)
            )
        if isinstance(event, CustomJobEvent | ThirdPartyJobEvent):
            return self.acknowledge(event, deadline)
        from .batch_and_poll_events import JobBatchEvent, ScheduledEvent  # noqa: PLC0415 - see the imports

        if isinstance(event, JobBatchEvent):
            return self.acknowledge_batch(event.jobs, deadline).to_json()
        if isinstance(event, ScheduledEvent):
            return self.poll(self._settings.action_types, deadline, trigger="scheduled").to_json()
        return self.on_action_state_change(event, deadline)

    # -- direct events ---------------------------------------------------------------------------------

    def acknowledge(self, job: JobEvent, deadline: Deadline) -> dict[str, Any]:
        """One job, claimed inline: a thread costs more than the claim's own work, and the claim starts only if
        its worst case fits before the deadline. Whatever happened is the result, never an exception."""
        result = self._claimer.claim(job, None, deadline)
        self._record_one(result)
        return result.to_json()

    def acknowledge_batch(self, jobs: Sequence[JobEvent], deadline: Deadline) -> BatchResult:
        """Up to 100 jobs, concurrently; a job the batch names again is claimed once, as its first entry."""
        from .batch_and_poll_results import BatchResult, Counts  # noqa: PLC0415 - see the imports

        first: dict[tuple[JobType, str], int] = {}
        with _Claims(self._settings.ack_concurrency, deadline) as claims:
            for position, job in enumerate(jobs):
                if first.setdefault((job.job_type, job.job_id), position) == position:
                    self._submit(claims, job, None, None, record=None)
            claimed = iter(self._collect(claims))
        results = [
            next(claimed) if first[(job.job_type, job.job_id)] == position else _duplicate(job)
            for position, job in enumerate(jobs)
        ]
        self._record(results)
        return BatchResult(results=results, counts=Counts.of(results))

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
        """Settle the hand-offs earlier invocations left; poll every target, each in its own thread, claiming each
        job as soon as its poll returns; poll again while full batches come back (or, after STARTED, while
        nothing has come back yet) and a poll's worst case still fits."""
        from .batch_and_poll_results import Counts, PollResult  # noqa: PLC0415 - see the imports

        delays = self._started_retry_delays if retry_when_empty else ()
        states = [_PollState(target, iter(delays)) for target in targets]
        # The polls' own threads: a poll never waits behind claims for a thread.
        polls = ThreadPoolExecutor(len(states), thread_name_prefix="poll")
        try:
            with _Claims(self._settings.ack_concurrency, deadline) as claims:
                reconciling = self._start_reconciling(claims)
                polling = {polls.submit(self._poll_target, state, claims): state for state in states}
                # A poll starts only if its worst case fits, so each loop ends before the deadline; one that has
                # not (a call outliving its budget) is reported, not waited for.
                wait(polling, timeout=deadline.remaining())
                for future, state in polling.items():
                    if not future.done():
                        state.error = DEADLINE_EXCEEDED
                        logger.error("poll did not finish in time", action_type=str(state.target))
                    elif future.exception() is not None:
                        raise cast("BaseException", future.exception())
                self._wait_recording(claims)
                collected = self._collect(claims)
                results = claims.found + collected
                self._delete_records(claims, collected)
                reconciled = self._finish_reconciling(reconciling, deadline)
        finally:
            polls.shutdown(wait=False, cancel_futures=True)
        summaries = [s.summary() for s in states]
        self._record(results, summaries, reconciled)
        _raise_if_systemic(results, summaries)
        _raise_if_pending(results, reconciled)
        return PollResult(
            trigger=trigger, polls=summaries, results=results, counts=Counts.of(results), reconciled=reconciled
        )

    def _poll_target(self, state: _PollState, claims: _Claims) -> None:
        """Poll one action type until it has nothing more to give, or too little time is left for a poll's worst
        case at the moment the poll would start. A full batch of jobs this invocation's polls already returned
        (dispatched again because their claims have not landed yet) ends the loop: polling on would only hand the
        same jobs out again, each time with a nonce that makes the claim before it stale."""
        hand_off = self._handoffs is not None
        min_poll_time_s = self._budget.poll_s(state.target.owner, hand_off)
        delay = 0.0
        while True:
            if delay:
                if claims.deadline.remaining() < delay + min_poll_time_s:
                    return
                time.sleep(delay)
            if claims.deadline.remaining() < min_poll_time_s:  # at the moment the poll would start
                return
            try:
                found = self._poll_once(state.target)
            except AwsCallError as exc:
                state.error = exc.code
                logger.error("poll failed", action_type=str(state.target), operation=exc.operation, error=exc.code)
                return
            state.polls += 1
            state.jobs_found += len(found)
            logger.info("polled", action_type=str(state.target), jobs_found=len(found))
            job_ids = [item.job_id if isinstance(item, JobResult) else item.job.job_id for item in found]
            if debug_on():
                logger.debug("poll answered", action_type=str(state.target), job_ids=job_ids)
            news = not state.seen.issuperset(job_ids)
            state.seen.update(job_ids)
            self._claim_found(found, str(state.target), claims)
            if len(found) >= self._settings.max_batch_size and news:
                delay = 0.0
            elif found:
                return
            else:
                next_delay = next(state.retry_delays, None)
                if next_delay is None:
                    return
                delay = next_delay

    def _claim_found(self, found: list[PolledItem], action_type: str, claims: _Claims) -> None:
        """Claim the jobs a poll found. With a hand-off, a `claiming` record of each job is written before its
        claim: only the poll knows its nonce, so if the process ends between the claim and the hand-off, the
        record is how the job is found again. The records are written in the claims' pool, 25 per call, each
        call's claims submitted when it returns: the poll's own thread goes on to its next poll at once."""
        usable = [item for item in found if isinstance(item, _Found)]
        with claims.lock:
            claims.found.extend(item for item in found if isinstance(item, JobResult))
        if self._handoffs is None:
            for item in usable:
                self._submit(claims, item.job, action_type, item.message, record=None)
            return
        ledger = self._handoffs.ledger
        for start in range(0, len(usable), _RECORDS_PER_WRITE):
            chunk = usable[start : start + _RECORDS_PER_WRITE]
            future = claims.pool.submit(self._record_then_claim, ledger, chunk, action_type, claims)
            with claims.lock:
                claims.recording.append(future)

    def _record_then_claim(self, ledger: HandoffLedger, chunk: list[_Found], action_type: str, claims: _Claims) -> None:
        """Write the chunk's records, then submit its claims; their messages go out in batches (`_Batches`)."""
        records = [_claiming_record(item, claims.deadline) for item in chunk]
        refused = self._write_records(ledger, records)
        with claims.lock:
            claims.found.extend(
                failed(item.job, refused[item.job.job_id], action_type) for item in chunk if item.job.job_id in refused
            )
        to_claim = [(i, r) for i, r in zip(chunk, records, strict=True) if i.job.job_id not in refused]
        batches = _Batches(len(to_claim))
        for item, record in to_claim:
            # The job's result, set by its claim, or by the send of the batch its message went in
            result: Future[JobResult] = Future()
            claims.pool.submit(self._claim_into_batch, item, action_type, record, result, batches, claims.deadline)
            with claims.lock:
                claims.submitted.append((result, item.job, action_type, record))

    def _claim_into_batch(  # noqa: PLR0917 - one pool task's arguments
        self,
        item: _Found,
        action_type: str,
        record: HandoffRecord,
        result: Future[JobResult],
        batches: _Batches,
        deadline: Deadline,
    ) -> None:
        claimed: tuple[Claimed, Future[JobResult]] | None = None
        try:
            if not result.set_running_or_notify_cancel():  # cancelled by `_collect`: too late to start
                return
            outcome = self._claimer.claim_unsent(item.job, action_type, deadline, item.message, record=record)
            if isinstance(outcome, Claimed):
                claimed = (outcome, result)
            else:
                result.set_result(outcome)
        finally:
            for batch in batches.ended(claimed):
                self._send_batch(batch, deadline)

    def _send_batch(self, batch: list[tuple[Claimed, Future[JobResult]]], deadline: Deadline) -> None:
        handoffs = cast("Handoffs", self._handoffs)
        try:
            results = self._claimer.send_batch(handoffs, [claimed for claimed, _ in batch], deadline)
        except Exception as exc:  # noqa: BLE001 - the batch's jobs must still end: their records hold them
            logger.error("unexpected error sending a batch", jobs=len(batch), error_type=type(exc).__name__)
            update = {"handoff": Handoff.PENDING, "handoff_error": "InternalError"}
            results = [claimed.result.model_copy(update=update) for claimed, _ in batch]
        for (_, future), result in zip(batch, results, strict=True):
            future.set_result(result)

    @staticmethod
    def _wait_recording(claims: _Claims) -> None:
        """Wait until every record write has submitted its claims. A write fits the poll's budget; one that has
        not returned by the deadline leaves its jobs unclaimed (its records, if written, are settled later)."""
        with claims.lock:
            recording = list(claims.recording)
        wait(recording, timeout=claims.deadline.remaining())
        for future in recording:
            if future.done() and future.exception() is not None:
                raise cast("BaseException", future.exception())

    @staticmethod
    def _write_records(ledger: HandoffLedger, records: list[HandoffRecord]) -> dict[str, str]:
        """Write the records of the jobs a poll found; returns the jobs not to claim, with the error that kept their
        record out."""
        try:
            unprocessed = ledger.write(records)
        except AwsCallError as exc:
            logger.error(
                "hand-off records not written: the polled jobs are left to be dispatched again", error=exc.code
            )
            return {record.job_id: exc.code for record in records}
        keys = {record.key: record.job_id for record in records}
        return {keys[key]: "HandoffRecordUnprocessed" for key in unprocessed if key in keys}

    def _poll_once(self, target: PollTarget) -> list[PolledItem]:
        name = str(target)
        hand_off = self._handoffs is not None
        if target.owner == "Custom":
            jobs = self._codepipeline.poll_for_jobs(
                target, self._settings.max_batch_size, self._settings.poll_query_param
            )
            return [_custom_from_poll(job, name, hand_off) for job in jobs]
        partner_jobs = self._codepipeline.poll_for_third_party_jobs(target, self._settings.max_batch_size)
        return [_third_party_from_poll(job, name, hand_off) for job in partner_jobs]

    # -- claims in the pool ----------------------------------------------------------------------------

    def _submit(
        self,
        claims: _Claims,
        job: JobEvent,
        action_type: str | None,
        message: JobMessage | None,
        *,
        record: HandoffRecord | None,
    ) -> None:
        future = claims.pool.submit(self._claimer.claim, job, action_type, claims.deadline, message, record=record)
        with claims.lock:
            claims.submitted.append((future, job, action_type, record))

    @staticmethod
    def _collect(claims: _Claims) -> list[JobResult]:
        """Every submitted job's result, in submission order. A claim starts only if its worst case fits, so
        every started claim ends before the deadline; one that has not is reported, not lost."""
        with claims.lock:
            submitted = list(claims.submitted)
        wait([f for f, _, _, _ in submitted], timeout=claims.deadline.remaining())
        results = []
        for future, job, action_type, record in submitted:
            if future.done():
                results.append(future.result())
                continue
            late = failed(job, NOT_ATTEMPTED if future.cancel() else DEADLINE_EXCEEDED, action_type)
            if record is not None:  # the record written before the claim settles it later
                late = late.model_copy(update={"handoff": Handoff.PENDING})
            logger.error("claim not ended in time", job_id=job.job_id)
            results.append(late)
        return results

    def _delete_records(self, claims: _Claims, collected: list[JobResult]) -> None:
        """Delete the records written before the claims (`collected`: the claims' results, in submission order),
        of every job whose fate is now known; a pending job's record stays for the reconciler. Only this
        invocation's own records, by their keys: another invocation's record of the same job is its own to settle.
        Best effort: a record left behind is settled again, harmlessly."""
        if self._handoffs is None:
            return
        with claims.lock:
            submitted = claims.submitted[: len(collected)]
        keys = [
            record.key
            for (_, _, _, record), result in zip(submitted, collected, strict=True)
            if record is not None and result.handoff is not Handoff.PENDING
        ]
        if not keys or claims.deadline.remaining() < self._budget.call_s:
            return
        ledger = self._handoffs.ledger
        chunks = [keys[start : start + 25] for start in range(0, len(keys), 25)]
        futures = [claims.pool.submit(ledger.write, [], chunk) for chunk in chunks]
        wait(futures, timeout=claims.deadline.remaining())
        for future in futures:
            if future.done() and future.exception() is not None:
                logger.warning(
                    "hand-off records not deleted: settled again later", error=type(future.exception()).__name__
                )

    # -- reconciling -----------------------------------------------------------------------------------

    def _start_reconciling(self, claims: _Claims) -> Future[_Reconciling] | None:
        """Read the stale hand-off records and settle each, in the claims' pool, beside the polls."""
        if self._handoffs is None:
            return None
        if self._reconciler is None:
            from .reconcile import Reconciler  # noqa: PLC0415 - see the imports

            self._reconciler = Reconciler(self._claimer, self._codepipeline, self._handoffs)
        return claims.pool.submit(self._reconcile, self._reconciler, claims)

    @staticmethod
    def _reconcile(reconciler: Reconciler, claims: _Claims) -> _Reconciling:
        try:
            records = reconciler.stale()
        except AwsCallError as exc:
            logger.error("hand-off records could not be read", error=exc.code)
            return _Reconciling([], exc.code)
        return _Reconciling([claims.pool.submit(reconciler.settle, record, claims.deadline) for record in records])

    @staticmethod
    def _finish_reconciling(started: Future[_Reconciling] | None, deadline: Deadline) -> ReconcileSummary | None:
        if started is None:
            return None
        from .batch_and_poll_results import ReconcileSummary  # noqa: PLC0415 - see the imports
        from .reconcile import Settled  # noqa: PLC0415

        try:
            reconciling = started.result(timeout=max(0.0, deadline.remaining()))
        except TimeoutError:
            reconciling = _Reconciling([], DEADLINE_EXCEEDED)
        wait(reconciling.settling, timeout=deadline.remaining())
        tally = Counter(
            f.result() if f.done() and f.exception() is None else Settled.SKIPPED for f in reconciling.settling
        )
        return ReconcileSummary(
            found=len(reconciling.settling),
            queued=tally[Settled.QUEUED],
            dropped=tally[Settled.DROPPED],
            pending=tally[Settled.PENDING],
            skipped=tally[Settled.SKIPPED],
            error=reconciling.error,
        )

    # -- reporting -------------------------------------------------------------------------------------

    def _ignored(self, reason: str, context: dict[str, str]) -> dict[str, Any]:
        logger.info("event ignored", extra={"reason": reason, **context})
        metrics.add_metric(name="EventsIgnored", unit=MetricUnit.Count, value=1)
        from .batch_and_poll_results import IgnoredResult  # noqa: PLC0415 - see the imports

        return IgnoredResult(reason=reason).to_json()

    def _record(
        self,
        results: list[JobResult],
        summaries: Sequence[PollSummary] = (),
        reconciled: ReconcileSummary | None = None,
    ) -> None:
        """Metrics for a batch or a poll: every counter, zeros included, so that dashboards and alarms see
        each run; and one summary line."""
        from .batch_and_poll_results import Counts  # noqa: PLC0415 - see the imports

        counts = Counts.of(results)
        if summaries:
            metrics.add_metric(name="JobsPolled", unit=MetricUnit.Count, value=sum(s.jobs_found for s in summaries))
            metrics.add_metric(name="PollFailures", unit=MetricUnit.Count, value=sum(1 for s in summaries if s.error))
        outcomes = Counter(r.outcome for r in results)
        for outcome, name in OUTCOME_METRICS.items():
            if outcome is not Outcome.DUPLICATE or outcomes[outcome]:
                metrics.add_metric(name=name, unit=MetricUnit.Count, value=outcomes[outcome])
        if self._handoffs is not None:
            handoffs = Counter(HANDOFF_METRICS[r.handoff] for r in results if r.handoff is not None)
            pending = handoffs["HandoffsPending"] + (reconciled.pending if reconciled else 0)
            metrics.add_metric(name="JobsQueued", unit=MetricUnit.Count, value=handoffs["JobsQueued"])
            metrics.add_metric(name="HandoffFailures", unit=MetricUnit.Count, value=handoffs["HandoffFailures"])
            metrics.add_metric(name="HandoffsPending", unit=MetricUnit.Count, value=pending)
        if reconciled is not None:
            metrics.add_metric(name="HandoffsReconciled", unit=MetricUnit.Count, value=reconciled.queued)
        extra = {
            **counts.model_dump(exclude_none=True),
            "acknowledged_job_ids": [r.job_id for r in results if r.outcome is Outcome.ACKNOWLEDGED],
        }
        if reconciled is not None and reconciled.found:
            extra["reconciled"] = reconciled.model_dump(exclude_none=True)
        logger.info("jobs done", extra=extra)

    @staticmethod
    def _record_one(result: JobResult) -> None:
        """A single job's invocation: the counters that moved, and the job named in the same line, as Powertools'
        metadata (in the log line, searchable, not a dimension): that line is the invocation's summary. The job's
        own line is claims' `_log`: DEBUG when it was claimed and handed off, WARNING or ERROR otherwise. A second
        INFO line per event cost about 8 % of a warm direct job's CPU (docs/benchmarks.md)."""
        metrics.add_metric(name=OUTCOME_METRICS[result.outcome], unit=MetricUnit.Count, value=1)
        if result.handoff is not None:
            metrics.add_metric(name=HANDOFF_METRICS[result.handoff], unit=MetricUnit.Count, value=1)
        job = {"job_id": result.job_id, "job_type": result.job_type, "outcome": result.outcome.value}
        for key, value in (("status", result.status), ("handoff", result.handoff), ("action_type", result.action_type)):
            if value is not None:
                job[key] = str(value)
        metrics.add_metadata(key="job", value=job)


def _claiming_record(item: _Found, deadline: Deadline) -> HandoffRecord:
    """The record of a polled job, written before its claim, leased to this invocation until its deadline."""
    return new_record(
        item.job, "claiming", item.message.to_body() if item.message else "", lease_ms(deadline), item.job.nonce
    )


def _duplicate(job: JobEvent) -> JobResult:
    return JobResult(
        job_id=job.job_id,
        job_type=job.job_type,
        outcome=Outcome.DUPLICATE,
        error="DuplicateInBatch",
        reason=explain("DuplicateInBatch"),
    )


def _custom_from_poll(job: JobTypeDef, action_type: str, hand_off: bool) -> PolledItem:
    from ..shared.messages import JobMessage  # noqa: PLC0415 - see the imports

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


def _third_party_from_poll(job: ThirdPartyJobTypeDef, action_type: str, hand_off: bool) -> PolledItem:
    from ..shared.messages import JobMessage  # noqa: PLC0415 - see the imports

    try:
        event = ThirdPartyJobEvent.model_validate({"jobId": job.get("jobId"), "clientId": job.get("clientId")})
    except ValidationError:
        return _unusable(str(job.get("jobId", "")), "thirdParty", action_type)
    # Its full message is built from GetThirdPartyJobDetails, when the nonce is fetched; until then, its ids.
    message = JobMessage(job_id=event.job_id, job_type="thirdParty", client_id=event.client_id) if hand_off else None
    return _Found(event, message)


def _unusable(job_id: str, job_type: JobType, action_type: str) -> JobResult:
    logger.error("poll returned a job that does not match the API", job_id=job_id[:512], action_type=action_type)
    return JobResult(
        job_id=job_id[:512],
        job_type=job_type,
        outcome=Outcome.FAILED,
        error="InvalidServiceResponse",
        action_type=action_type,
        reason=explain("InvalidServiceResponse"),
    )


def _raise_if_systemic(results: list[JobResult], summaries: list[PollSummary]) -> None:
    """Fail the invocation, so that alarms fire, when no call of it got through to a job."""
    if summaries and all(s.polls == 0 and s.error for s in summaries):  # no poll of any action type got an answer
        codes = Counter(s.error or "" for s in summaries)
    elif results and all(r.outcome is Outcome.FAILED and r.error not in JOB_ERROR_CODES for r in results):
        codes = Counter(r.error or "" for r in results)
    else:
        return
    code = next(iter(codes)) if len(codes) == 1 else "SystemicFailure"
    detail = ", ".join(f"{c} x{n}" for c, n in codes.most_common())
    logger.error("no call succeeded", errors=detail)
    raise job_error_class(code)(f"no CodePipeline call succeeded: {detail}")


def _raise_if_pending(results: list[JobResult], reconciled: ReconcileSummary | None) -> None:
    """Fail the invocation, once its results and metrics are recorded, when a claimed job is not certainly on the
    work queue: the alarm fires, and Lambda's retry (a poll, so a reconciliation) or the next tick finishes it."""
    pending = sum(1 for r in results if r.handoff is Handoff.PENDING) + (reconciled.pending if reconciled else 0)
    lost = sum(1 for r in results if r.handoff is Handoff.LOST)
    if pending or lost:
        raise HandoffPending(
            f"{pending} hand-off(s) pending in the job table, {lost} lost: the next poll sends them again"
        )
