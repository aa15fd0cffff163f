"""The reconciler: finishes the hand-offs that earlier invocations left in the job table.

It runs on every poll (scheduled or STARTED), and so on Lambda's retry of a poll that failed for a pending
hand-off. It reads the records whose lease has ended (the invocation that wrote them has returned, or was
killed), leases each to itself, and settles it:

- `claiming` (the claim's outcome was never learnt): ask CodePipeline whether the job is this worker's. A custom
  job: AcknowledgeJob with the nonce the poll handed out answers its status (InProgress: ours; another status,
  or InvalidNonceException: not ours). A partner job with its nonce: the same with AcknowledgeThirdPartyJob;
  without it: GetThirdPartyJobDetails, whose nonce means the job still waits to be claimed (it is claimed now),
  and whose absence means the job is InProgress, claimed by the worker that wrote the record.
- `claimed`, or found to be ours: send the message again (a copy that did land is dropped by the FIFO queue
  within 5 minutes and by the work side's once-only record after).

A record is deleted once its job is queued or found not to be ours; anything else releases it for the next poll:
throttling, the network, an unknown outcome again, and a re-send the queue certainly refuses. That last is never
failed back: a record the reconciler settles is one whose earlier send may have landed (its answer was lost, or
its invocation died after sending and before deleting the record), so a copy may be on the queue, waiting for the
work side, and failing the job back would let its work run after CodePipeline failed it. The job stays pending,
its `HandoffsPending` alarmed, until a re-send goes through or CodePipeline's own job timeout ends it.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from ..shared.adapter import AwsCallError, ClientTokenError, HandoffLedger, HandoffRecord
from ..shared.messages import InvalidJobMessage, JobMessage
from ..shared.observability import logger
from .claims import JOB_ERROR_CODES, Claimer, Handoffs, lease_ms
from .results import Handoff

if TYPE_CHECKING:
    from pydantic import SecretStr

    from ..shared.adapter import CodePipelineAdapter
    from ..shared.deadline import Deadline

# Records settled per invocation, at most: a backlog drains over the next polls.
RECONCILE_LIMIT = 100


class Settled(StrEnum):
    QUEUED = "queued"
    DROPPED = "dropped"
    PENDING = "pending"
    SKIPPED = "skipped"


class _Verdict(StrEnum):
    OURS = "ours"
    NOT_OURS = "notOurs"
    UNKNOWN = "unknown"


@dataclass
class Reconciler:
    claimer: Claimer
    codepipeline: CodePipelineAdapter
    handoffs: Handoffs

    @property
    def ledger(self) -> HandoffLedger:
        return self.handoffs.ledger

    def stale(self) -> list[HandoffRecord]:
        """The records whose lease has ended. Raises AwsCallError when the table cannot be read."""
        return self.ledger.stale(int(time.time() * 1000), RECONCILE_LIMIT)

    def settle(self, record: HandoffRecord, deadline: Deadline) -> Settled:
        if not self._lease(record, deadline):
            return Settled.SKIPPED
        try:
            message = JobMessage.from_body(record.message)
        except InvalidJobMessage:
            logger.error("a hand-off record holds no job message: dropped", job_id=record.job_id[:512])
            return self._delete(record, Settled.DROPPED)
        return self._settle(record, message)

    def _lease(self, record: HandoffRecord, deadline: Deadline) -> bool:
        """Take the record for this invocation, if its worst case fits and no other invocation took it first."""
        if deadline.remaining() < self.claimer.budget.reconcile_s(record):
            return False
        try:
            return self.ledger.take(record, lease_ms(deadline))
        except AwsCallError:
            return False

    def _settle(self, record: HandoffRecord, message: JobMessage) -> Settled:
        token: SecretStr | None = None
        if record.job_type == "thirdParty":
            try:
                token = self.claimer.token_for(record.client_id)
            except ClientTokenError as exc:
                return self._release(record, exc.code)
        if record.state == "claiming":
            verdict = self._verify(record, token)
            if verdict is not _Verdict.OURS:
                unknown = verdict is _Verdict.UNKNOWN
                return self._release(record, "ClaimUnknown") if unknown else self._delete(record, Settled.DROPPED)
        sent = self.claimer.send(self.handoffs, record.job_id, message, token, fail_back=False)
        if sent.kind is Handoff.QUEUED:
            logger.info("hand-off settled by the reconciler", job_id=record.job_id, handoff=sent.kind)
            return self._delete(record, Settled.QUEUED)
        return self._release(record._replace(state="claimed", nonce=None), sent.error)

    def _verify(self, record: HandoffRecord, token: SecretStr | None) -> _Verdict:
        """Whether CodePipeline holds the job InProgress for this worker."""
        try:
            nonce = record.nonce
            if nonce is None and token is not None:  # a partner job claimed from a poll
                nonce, _ = self.codepipeline.third_party_job_details(record.job_id, token)
                if nonce is None:  # InProgress: claimed by the invocation that wrote the record
                    return _Verdict.OURS
            if nonce is None:
                return _Verdict.NOT_OURS
            if token is None:
                status = self.codepipeline.acknowledge_job(record.job_id, nonce)
            else:
                status = self.codepipeline.acknowledge_third_party_job(record.job_id, nonce, token)
        except AwsCallError as exc:
            if exc.certain and exc.code in JOB_ERROR_CODES:
                return _Verdict.NOT_OURS
            return _Verdict.UNKNOWN
        return _Verdict.OURS if status == "InProgress" else _Verdict.NOT_OURS

    def _delete(self, record: HandoffRecord, settled: Settled) -> Settled:
        try:
            self.ledger.delete(record.key)
        except AwsCallError as exc:  # left leased: settled again, harmlessly, after this invocation's deadline
            logger.warning("a settled hand-off record could not be deleted", job_id=record.job_id, error=exc.code)
        return settled

    def _release(self, record: HandoffRecord, error: str | None) -> Settled:
        logger.warning("hand-off still pending", job_id=record.job_id, error=error)
        with contextlib.suppress(AwsCallError):  # if not released, still leased: free again after the deadline
            self.ledger.put(record._replace(lease_ms=0))  # the same key: this record, no other
        return Settled.PENDING
