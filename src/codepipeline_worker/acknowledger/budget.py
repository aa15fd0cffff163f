"""How long the acknowledger's work can take at worst, from the client configuration: a claim starts only when
its worst case fits before the deadline, and a poll only when the worst case of the claims it leads to fits too.

One call's worst case (`worst_case_call_s`) is every attempt connecting and waiting until the timeouts, with
standard mode's longest pause before each retry: 12 s with the defaults (3 attempts, 1 s connect, 2 s read).
The SDK guard refuses any retry that would end past it, so no call takes longer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from ..shared.adapter import worst_case_call_s
from .events import ThirdPartyJobEvent

if TYPE_CHECKING:
    from ..shared.adapter import HandoffRecord
    from ..shared.config import CommonSettings
    from .events import CustomJobEvent

# A partner token read may take two reads of the secret: the cached copy has expired, and it lacks the clientId.
TOKEN_READ_CALLS = 2
# The hand-off of a claimed job: the send (a poll's jobs: their batch's SendMessageBatch); if the queue certainly
# refused it, the failure report; if that failed too, or the send's outcome is unknown, the record for the
# reconciler. A batch's steps each start only if they fit when they come (claims.Claimer.send_batch).
HANDOFF_CALLS = 3


class Budget(NamedTuple):
    """Worst cases, in seconds, of the acknowledger's units of work. A NamedTuple: see claims.Handoffs."""

    call_s: float

    @classmethod
    def of(cls, settings: CommonSettings) -> Budget:
        return cls(worst_case_call_s(settings.max_attempts, settings.connect_timeout_s, settings.read_timeout_s))

    @staticmethod
    def _claim_calls(*, needs_token: bool, needs_nonce: bool, hand_off: bool) -> int:
        calls = 1  # AcknowledgeJob or AcknowledgeThirdPartyJob
        calls += TOKEN_READ_CALLS if needs_token else 0
        calls += 1 if needs_nonce else 0  # GetThirdPartyJobDetails
        return calls + (HANDOFF_CALLS if hand_off else 0)

    def claim_s(self, job: CustomJobEvent | ThirdPartyJobEvent, hand_off: bool, *, recorded: bool = False) -> float:
        """One job's claim and hand-off; `recorded`: with the deletion of the record written before it (a polled
        job's), which follows the claims of a poll."""
        partner = isinstance(job, ThirdPartyJobEvent)
        needs_nonce = partner and job.nonce is None
        calls = self._claim_calls(
            needs_token=partner and job.client_token is None,  # type: ignore[union-attr]
            needs_nonce=needs_nonce,
            hand_off=hand_off,
        )
        # A polled job's record is deleted after the claims; a partner job event without a nonce writes its own
        # record before the claim and deletes it after
        records = 1 if recorded else 2 if needs_nonce and hand_off else 0
        return (calls + records) * self.call_s

    def poll_s(self, owner: str, hand_off: bool) -> float:
        """A poll, the claim of a job it returns (a custom job comes with its nonce; a partner job needs its token
        and GetThirdPartyJobDetails), and with a hand-off, the records written before the claims and deleted
        after: the least time left with which a poll of that owner's action type starts."""
        partner = owner != "Custom"
        claim = self._claim_calls(needs_token=partner, needs_nonce=partner, hand_off=hand_off)
        records = 2 if hand_off else 0  # written before the claims, deleted after
        return (1 + records + claim) * self.call_s

    def reconcile_s(self, record: HandoffRecord) -> float:
        """Leasing a record, learning whether the job is this worker's (a `claiming` record), the hand-off, and
        deleting the record."""
        check = 0
        if record.state == "claiming":
            check = 1 if record.job_type == "custom" else TOKEN_READ_CALLS + (1 if record.nonce is not None else 2)
        return (1 + check + HANDOFF_CALLS) * self.call_s
