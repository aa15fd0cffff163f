"""One job's claim and hand-off: AcknowledgeJob (or the partner's reads and AcknowledgeThirdPartyJob), then one
message on the work queue: sent alone (SendMessage) for a job event, in a batch of up to 10 (SendMessageBatch,
`send_batch`) for a poll's jobs, each entry's outcome read as a single send's would be.

A claim starts only when its worst case fits before the deadline (`Budget.claim_s`); otherwise it is reported
`NotAttempted` and CodePipeline dispatches the job again. Once started it ends with the job's fate known or
recorded:

- claimed and queued: `handoff: queued`;
- claimed, and the queue certainly refused the message (every attempt answered 4xx, or never connected): the job
  is failed back to CodePipeline at once, `failedBack`;
- claimed, and the send's outcome is unknown (a read timeout, a connection closed after sending, a 5xx): the
  message may be on the queue, so the job is not failed back. A `claimed` record goes to the job table and the
  reconciler sends the message again (the FIFO queue drops a copy within 5 minutes, the work side's once-only
  record any later one): `pending`;
- the claim's own answer was lost (AcknowledgeJob timed out): a `claiming` record, with the nonce that can ask
  CodePipeline whether the claim happened: `pending`.

Nothing on the hot path is written to the table: a job claimed and queued costs exactly the claim and the send.

In a batch, an entry SQS lists as failed is a certain refusal; a batch call that failed as a whole is each job's
send failing so, certainly or not. A polled job is always recorded before its claim (`claiming`, leased to the
invocation), so a step of its hand-off left undone for want of time leaves it `pending`, held by that record.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, NamedTuple, cast, get_args

from ..shared.adapter import (
    AwsCallError,
    ClientTokenError,
    ClientTokenStore,
    CodePipelineAdapter,
    HandoffLedger,
    HandoffRecord,
    HandoffState,
    WorkQueue,
    handoff_key,
)
from ..shared.ids_message import IdsMessage
from ..shared.models import JobStatus
from ..shared.observability import debug_on, logger
from .events import CustomJobEvent, ThirdPartyJobEvent
from .results import Handoff, JobResult, Outcome

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pydantic import SecretStr

    from ..shared.deadline import Deadline
    from ..shared.messages import JobMessage
    from .budget import Budget

    # A job's message: a polled job's with what the poll said of it, or a direct job's with its ids only.
    Message = JobMessage | IdsMessage

JobEvent = CustomJobEvent | ThirdPartyJobEvent

CONFLICT_CODE = "InvalidNonceException"
NOT_ATTEMPTED = "NotAttempted"
DEADLINE_EXCEEDED = "DeadlineExceeded"
# Problems with one job. Any other code (throttling after retries, access denied, no endpoint, no secret,
# no time) is systemic: when it stops every call of a poll, the invocation fails so alarms fire.
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
    NOT_ATTEMPTED: "too little time was left for the claim's worst case; CodePipeline will dispatch the job again",
    DEADLINE_EXCEEDED: "the claim had not ended when time ran out",
    "DuplicateInBatch": "the batch names this job more than once; it was claimed once, as its first entry",
}
_STATUSES = frozenset(get_args(JobStatus))

# The failure reported to CodePipeline for a job claimed but certainly refused by the work queue.
HANDOFF_FAILURE_MESSAGE = (
    "The job worker claimed this job but could not put it on its work queue ({code}). Nothing ran; retry the action."
)


def explain(code: str) -> str:
    return EXPLANATIONS.get(code, "CodePipeline could not be reached or refused the call")


def lease_ms(deadline: Deadline) -> int:
    """The epoch milliseconds at which this invocation's records become others' to settle: the Lambda deadline."""
    return int(time.time() * 1000 + deadline.lambda_remaining_s() * 1000)


# The small immutable records here are NamedTuples, not frozen dataclasses: defining a dataclass compiles the
# methods it generates, about 0.4 ms each at every cold start (docs/benchmarks.md), a NamedTuple's a tenth of it.
class Handoffs(NamedTuple):
    """Where claimed jobs go: the work queue, and the job table for what is not certainly there."""

    queue: WorkQueue
    ledger: HandoffLedger


class _ClaimedAlready(Exception):
    """GetThirdPartyJobDetails gave no nonce: the job is InProgress."""


class Sent(NamedTuple):
    """What became of a message sent to the work queue."""

    kind: Handoff
    error: str | None = None


class Claimed:
    """A job claimed (InProgress) whose message is not sent yet: what its hand-off needs, and its result so far.
    `record`: the record written before the claim, if any. Not changed once made; a plain class with slots (its
    body made once, at first use), not a dataclass: see Handoffs."""

    __slots__ = ("_body", "job", "message", "record", "result", "token")

    def __init__(
        self, job: JobEvent, result: JobResult, message: Message, token: SecretStr | None, record: HandoffRecord | None
    ) -> None:
        self.job = job
        self.result = result
        self.message = message
        self.token = token
        self.record = record
        self._body: str | None = None

    @property
    def body(self) -> str:
        if self._body is None:
            self._body = self.message.to_body()
        return self._body

    def finish(self, sent: Sent, written: bool) -> JobResult:
        """The job's result once its send's outcome is known; `written`: a pending job's record was rewritten."""
        if sent.kind is not Handoff.PENDING:
            return self.result.model_copy(update={"handoff": sent.kind, "handoff_error": sent.error})
        return Claimer.keep(self.result, written, self.record, sent.error)


class _Ready(NamedTuple):
    """What the claim call needs: the nonce (the event's, or GetThirdPartyJobDetails'), a partner job's token,
    and the message the job will be queued with."""

    nonce: SecretStr
    token: SecretStr | None
    message: Message | None


class Claimer:
    """Claims one job and hands it off; every call within the claim's budget."""

    def __init__(
        self,
        codepipeline: CodePipelineAdapter,
        tokens: ClientTokenStore | None,
        handoffs: Handoffs | None,
        budget: Budget,
    ) -> None:
        self._codepipeline = codepipeline
        self._tokens = tokens
        self.handoffs = handoffs
        self.budget = budget

    def claim(
        self,
        job: JobEvent,
        action_type: str | None,
        deadline: Deadline,
        message: Message | None = None,
        *,
        record: HandoffRecord | None = None,
    ) -> JobResult:
        """Claim the job and hand it off. `record`: the `claiming` record of this job written before the claim (a
        polled job), so the claim's fate is never lost, even if the process is killed; what the claim learns later
        rewrites that record (its key), never another invocation's. A partner job event without a nonce is
        recorded here, before its details are read, for the same reason: its nonce comes from a call, so a retried
        event could not repeat the claim."""
        recorded = record is not None
        refused = self._refuse(job, deadline, recorded)
        if refused is not None:
            return failed(job, refused, action_type)
        if self.handoffs is not None and not recorded and self.needs_record(job):
            return self._claim_recorded(self.handoffs, job, action_type, deadline)
        return cast("JobResult", self._claim_guarded(job, action_type, message, record, send=True))

    def claim_unsent(
        self, job: JobEvent, action_type: str, deadline: Deadline, message: Message | None, *, record: HandoffRecord
    ) -> JobResult | Claimed:
        """A polled job's claim, its hand-off left to `send_batch`: the job's result if it ended without being
        claimed (or without a work queue), else what sending its message needs."""
        refused = self._refuse(job, deadline, recorded=True)
        if refused is not None:
            return failed(job, refused, action_type)
        return self._claim_guarded(job, action_type, message, record, send=False)

    def _claim_guarded(
        self,
        job: JobEvent,
        action_type: str | None,
        message: Message | None,
        record: HandoffRecord | None,
        *,
        send: bool,
    ) -> JobResult | Claimed:
        try:
            claimed = self._claim(job, action_type, message, record)
            if send and isinstance(claimed, Claimed):
                claimed = self._hand_off(cast("Handoffs", self.handoffs), claimed)
        except Exception as exc:  # noqa: BLE001 - one job's surprise must not lose the other jobs' results
            # Only the type is logged: an unknown exception's message may hold anything.
            logger.error("unexpected error", job_id=job.job_id, error_type=type(exc).__name__)
            result = failed(job, "InternalError", action_type)
            return result.model_copy(update={"handoff": Handoff.PENDING}) if record is not None else result
        return claimed if isinstance(claimed, Claimed) else _log(claimed)

    @staticmethod
    def needs_record(job: JobEvent) -> bool:
        """A job event whose nonce only a call can give: a partner job's without a nonce."""
        return isinstance(job, ThirdPartyJobEvent) and job.nonce is None

    def _claim_recorded(
        self, handoffs: Handoffs, job: JobEvent, action_type: str | None, deadline: Deadline
    ) -> JobResult:
        record = new_record(job, "claiming", cast("IdsMessage", self._message(job)).to_body(), lease_ms(deadline))
        try:
            handoffs.ledger.put(record)
        except AwsCallError as exc:  # nothing claimed: CodePipeline dispatches the job again
            logger.error("the hand-off record could not be written: the job is not claimed", job_id=job.job_id)
            return _log(failed(job, exc.code, action_type))
        result = self.claim(job, action_type, deadline, record=record)
        if result.handoff is not Handoff.PENDING:
            try:
                handoffs.ledger.delete(record.key)
            except AwsCallError as exc:  # left leased: settled again, harmlessly, after this invocation's deadline
                logger.warning("a hand-off record could not be deleted", job_id=job.job_id, error=exc.code)
        return result

    def _claim(
        self,
        job: JobEvent,
        action_type: str | None,
        message: Message | None,
        record: HandoffRecord | None,
    ) -> JobResult | Claimed:
        """The claim, up to its hand-off: the job's result if it ended there, else the job claimed (with a work
        queue), its message still to send."""
        try:
            ready = self._prepare(job, message)
        except _ClaimedAlready:
            # The details give no nonce: the job is InProgress, claimed by an invocation that recorded it (this
            # event's earlier delivery, or a poll) and may have died before its hand-off: the reconciler sends it
            written = self._record(job, "claimed", cast("IdsMessage", self._message(job)), record)
            result = failed(job, "NonceUnavailable", action_type)
            return self.keep(result, written, record, "NonceUnavailable")
        except (AwsCallError, ClientTokenError) as exc:
            return failed(job, exc.code, action_type)
        try:
            status = self._acknowledge(job, ready)
        except AwsCallError as exc:
            result = failed(job, exc.code, action_type, conflict=exc.code == CONFLICT_CODE)
            if exc.certain or self.handoffs is None:
                return result
            # The claim's answer was lost: whether CodePipeline holds the job for this worker is unknown.
            message = cast("Message", ready.message)
            written = self._record(job, "claiming", message, record, nonce=ready.nonce)
            return self.keep(result, written, record, exc.code)
        if status not in _STATUSES:
            return failed(job, "InvalidServiceResponse", action_type)
        outcome = Outcome.ACKNOWLEDGED if status == "InProgress" else Outcome.NOT_CLAIMED
        result = JobResult(
            job_id=job.job_id,
            job_type=job.job_type,
            outcome=outcome,
            status=cast("JobStatus", status),
            action_type=action_type,
        )
        to_hand_off = outcome is Outcome.ACKNOWLEDGED and self.handoffs is not None
        return Claimed(job, result, cast("Message", ready.message), ready.token, record) if to_hand_off else result

    def _refuse(self, job: JobEvent, deadline: Deadline, recorded: bool) -> str | None:
        """Why a job is not even tried: too little time for its worst case, or a partner job the work side could
        not report on."""
        if deadline.remaining() < self.budget.claim_s(job, self.handoffs is not None, recorded=recorded):
            return NOT_ATTEMPTED
        if self.handoffs is not None and isinstance(job, ThirdPartyJobEvent) and job.client_id is None:
            return "ClientIdRequired"
        return None

    def _prepare(self, job: JobEvent, message: Message | None) -> _Ready:
        if isinstance(job, CustomJobEvent):
            if debug_on():
                logger.debug("acknowledging a custom job", job_id=job.job_id)
            return _Ready(job.nonce, None, message or self._message(job))
        if debug_on():
            logger.debug(
                "acknowledging a partner job",
                job_id=job.job_id,
                client_token_from="event" if job.client_token else "secret",
                nonce_from="event" if job.nonce else "GetThirdPartyJobDetails",
            )
        token = job.client_token or self.token_for(job.client_id)
        nonce = job.nonce
        if nonce is None:
            nonce, data = self._codepipeline.third_party_job_details(job.job_id, token)
            if self.handoffs is not None and job.client_id is not None:
                # Only a job's details need the full message model: a direct job with its nonce never imports it.
                from ..shared.messages import JobMessage  # noqa: PLC0415

                message = JobMessage.from_job_data(job.job_id, "thirdParty", data, client_id=job.client_id)
        if nonce is None and self.handoffs is not None:
            raise _ClaimedAlready
        if nonce is None:
            raise ClientTokenError("NonceUnavailable", EXPLANATIONS["NonceUnavailable"])
        return _Ready(nonce, token, message or self._message(job))

    def _message(self, job: JobEvent) -> IdsMessage | None:
        """The message of a job known by its ids only (a direct event): the work side reads the rest."""
        if self.handoffs is None:
            return None
        return IdsMessage(job.job_id, job.job_type, getattr(job, "client_id", None))

    def _acknowledge(self, job: JobEvent, ready: _Ready) -> str:
        if ready.token is None:
            return self._codepipeline.acknowledge_job(job.job_id, ready.nonce)
        return self._codepipeline.acknowledge_third_party_job(job.job_id, ready.nonce, ready.token)

    def token_for(self, client_id: str | None) -> SecretStr:
        if self._tokens is None or client_id is None:
            raise ClientTokenError("ClientTokenNotConfigured", EXPLANATIONS["ClientTokenNotConfigured"])
        return self._tokens.token_for(client_id)

    # -- hand-off --------------------------------------------------------------------------------------

    def _hand_off(self, handoffs: Handoffs, claimed: Claimed) -> JobResult:
        sent = self.send(handoffs, claimed.job.job_id, claimed.message, claimed.token)
        written = sent.kind is Handoff.PENDING and self._record(claimed.job, "claimed", claimed.message, claimed.record)
        return claimed.finish(sent, written)

    def send(
        self, handoffs: Handoffs, job_id: str, message: Message, token: SecretStr | None, *, fail_back: bool = True
    ) -> Sent:
        """Queue the message; fail the job back only when the queue certainly refused it. PENDING: it may be on
        the queue, or the failure report failed: the caller records it. `fail_back` False (the reconciler's
        re-send, an earlier copy of which may be on the queue): a certain refusal is PENDING too."""
        try:
            message_id = handoffs.queue.send(message.to_body(), message.dedup_id)
        except AwsCallError as exc:
            return self._not_sent(job_id, token, exc, fail_back=fail_back)
        if debug_on():
            logger.debug("job handed off", job_id=job_id, message_id=message_id, with_context=message.has_context)
        return Sent(Handoff.QUEUED)

    def send_batch(self, handoffs: Handoffs, batch: Sequence[Claimed], deadline: Deadline) -> list[JobResult]:
        """Send the claimed jobs' messages in one SendMessageBatch (`WorkQueue.send_batch`: up to 10, within its
        payload limit) and finish each job from its entry's outcome, as `send` finishes a single send: queued;
        certainly refused: failed back, or pending if that report fails; unknown: pending. The pending jobs'
        records are rewritten `claimed`, free to settle at once, in one BatchWriteItem. Every step starts only
        if its worst case fits: a job whose step does not is left pending, held by the record written before its
        claim (`record`: a batch is a poll's jobs, each recorded before its claim)."""
        if deadline.remaining() < self.budget.call_s:
            logger.warning("no time left to send the claimed jobs: their records hold them", jobs=len(batch))
            return [_log(claimed.finish(Sent(Handoff.PENDING, DEADLINE_EXCEEDED), False)) for claimed in batch]
        outcomes = handoffs.queue.send_batch([(claimed.body, claimed.message.dedup_id) for claimed in batch])
        sents: list[Sent] = []
        for claimed, outcome in zip(batch, outcomes, strict=True):
            job_id = claimed.job.job_id
            if isinstance(outcome, str):
                if debug_on():
                    logger.debug(
                        "job handed off", job_id=job_id, message_id=outcome, with_context=claimed.message.has_context
                    )
                sents.append(Sent(Handoff.QUEUED))
            elif outcome.certain and deadline.remaining() < 2 * self.budget.call_s:  # the report, then the record
                logger.error("hand-off refused, no time left to fail the job back", job_id=job_id, error=outcome.code)
                sents.append(Sent(Handoff.PENDING, outcome.code))
            else:
                sents.append(self._not_sent(job_id, claimed.token, outcome))
        pending = [claimed for claimed, sent in zip(batch, sents, strict=True) if sent.kind is Handoff.PENDING]
        written = self._rewrite_claimed(handoffs, pending, deadline)
        return [
            _log(claimed.finish(sent, claimed.record is not None and claimed.record.key in written))
            for claimed, sent in zip(batch, sents, strict=True)
        ]

    def _rewrite_claimed(self, handoffs: Handoffs, pending: list[Claimed], deadline: Deadline) -> set[str]:
        """Rewrite the pending jobs' records `claimed` (their keys kept, their nonces dropped), free to settle at
        once, in one BatchWriteItem; the keys of the records written."""
        records = [_rewrite(claimed.record, "claimed", claimed.body) for claimed in pending if claimed.record]
        if not records or deadline.remaining() < self.budget.call_s:
            return set()
        try:
            unprocessed = handoffs.ledger.write(records)
        except AwsCallError as exc:
            logger.error("the hand-off records could not be rewritten", jobs=len(records), error=exc.code)
            return set()
        return {record.key for record in records} - set(unprocessed)

    def _not_sent(self, job_id: str, token: SecretStr | None, refusal: AwsCallError, *, fail_back: bool = True) -> Sent:
        """A send that failed: PENDING when its outcome is unknown, or when it was certainly refused but the job
        must not be failed back (`fail_back` False: a re-send, an earlier copy of which may be on the queue);
        else the job failed back (PENDING if that report fails too)."""
        error = refusal.code
        if not refusal.certain:
            logger.warning("hand-off outcome unknown: recorded for the reconciler", job_id=job_id, error=error)
            return Sent(Handoff.PENDING, error)
        if not fail_back:
            logger.error(
                "the work queue refused the message again: an earlier copy may be on it, so the job is not "
                "failed back; the next poll sends it again",
                job_id=job_id,
                error=error,
            )
            return Sent(Handoff.PENDING, error)
        failure = {"type": "SystemUnavailable", "message": HANDOFF_FAILURE_MESSAGE.format(code=error)}
        try:
            if token is None:  # a custom job
                self._codepipeline.put_job_failure_result(job_id, failure)
            else:
                self._codepipeline.put_third_party_job_failure_result(job_id, token, failure)
        except AwsCallError as exc:
            logger.error("hand-off refused and the job could not be failed back", job_id=job_id, error=exc.code)
            return Sent(Handoff.PENDING, error)
        logger.error("hand-off refused: the job was failed back to CodePipeline", job_id=job_id, error=error)
        return Sent(Handoff.FAILED_BACK, error)

    def _record(
        self,
        job: JobEvent,
        state: HandoffState,
        message: Message,
        recorded: HandoffRecord | None,
        *,
        nonce: SecretStr | None = None,
    ) -> bool:
        """Write the job's record for the reconciler, free to settle at once (lease 0): the record written before
        the claim rewritten (its key, its job's ids kept), or a new one of this invocation's own. `nonce`: only a
        `claiming` record's, the one that asks CodePipeline whether the claim happened. False if it could not."""
        body = message.to_body()
        if recorded is None:
            return self._write(new_record(job, state, body, 0, nonce))
        return self._write(_rewrite(recorded, state, body, nonce))

    def _write(self, record: HandoffRecord) -> bool:
        try:
            cast("Handoffs", self.handoffs).ledger.put(record)
        except AwsCallError as exc:
            logger.error("the hand-off record could not be written", job_id=record.job_id, error=exc.code)
            return False
        return True

    @staticmethod
    def keep(result: JobResult, written: bool, recorded: HandoffRecord | None, error: str | None) -> JobResult:
        """PENDING when a record holds the job (this one, or the one written before the claim), else LOST."""
        handoff = Handoff.PENDING if written or recorded is not None else Handoff.LOST
        return result.model_copy(update={"handoff": handoff, "handoff_error": error})


def new_record(
    job: JobEvent, state: HandoffState, message: str, lease: int, nonce: SecretStr | None = None
) -> HandoffRecord:
    """A new record of `job`, under a key of its own (drawn here); `lease`: epoch milliseconds, 0 when free to
    settle at once. A record's later versions are `_replace` of it, which keeps that key."""
    return HandoffRecord(
        key=handoff_key(job.job_type, job.job_id),
        job_id=job.job_id,
        job_type=job.job_type,
        state=state,
        message=message,
        lease_ms=lease,
        nonce=nonce,
        client_id=getattr(job, "client_id", None),
    )


def _rewrite(record: HandoffRecord, state: HandoffState, body: str, nonce: SecretStr | None = None) -> HandoffRecord:
    """The record written earlier, rewritten (its key, its job's ids kept), free to settle at once (lease 0)."""
    return record._replace(state=state, message=body, lease_ms=0, nonce=nonce)


def failed(job: JobEvent, code: str, action_type: str | None, *, conflict: bool = False) -> JobResult:
    return JobResult(
        job_id=job.job_id,
        job_type=job.job_type,
        outcome=Outcome.CONFLICT if conflict else Outcome.FAILED,
        error=code,
        action_type=action_type,
        reason=explain(code),
    )


def _log(result: JobResult) -> JobResult:
    """One job's line. A claimed job whose message is on the queue (or that has no queue) is logged at DEBUG, the
    line built only when DEBUG is on (`debug_on`): a batch or a poll logs one INFO line naming the claimed jobs, a
    single job's invocation names it in its metrics line (service); each INFO line costs about 45 µs of CPU. A
    claimed job whose hand-off is pending is logged at WARNING, one whose hand-off failed at ERROR; a job not
    claimed at WARNING or ERROR."""
    if result.outcome is Outcome.ACKNOWLEDGED and result.handoff in (None, Handoff.QUEUED):
        if debug_on():
            logger.debug(
                "job acknowledged",
                job_id=result.job_id,
                job_type=result.job_type,
                action_type=result.action_type,
                status=result.status,
                handoff=result.handoff,
            )
        return result
    fields = {"job_id": result.job_id, "job_type": result.job_type, "action_type": result.action_type}
    if result.outcome is Outcome.ACKNOWLEDGED and result.handoff is Handoff.PENDING:
        logger.warning("job acknowledged, its hand-off pending", extra={"status": result.status, **fields})
    elif result.outcome is Outcome.ACKNOWLEDGED:
        logger.error("job acknowledged, its hand-off failed", extra={"handoff": result.handoff, **fields})
    elif result.outcome is Outcome.NOT_CLAIMED:
        logger.warning("job not claimed", extra={"status": result.status, **fields})
    elif result.outcome is Outcome.CONFLICT:
        logger.warning("job claimed by another worker", extra={"error": result.error, **fields})
    else:
        logger.error("job acknowledgement failed", extra={"error": result.error, "handoff": result.handoff, **fields})
    return result
