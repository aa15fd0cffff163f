"""When an invocation's work must stop: the Lambda deadline less a margin, on the monotonic clock."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

# Time kept back from the Lambda deadline to report, log and flush metrics.
DEADLINE_MARGIN_S = 1.0


class Deadline(NamedTuple):
    """When work must stop (`expires_at`: the Lambda deadline less a margin) and when Lambda ends the invocation
    (`lambda_expires_at`), both on the monotonic clock. A NamedTuple, not a frozen dataclass: defining a dataclass
    compiles the methods it generates, about 0.4 ms of every cold start (docs/benchmarks.md)."""

    expires_at: float
    lambda_expires_at: float | None = None

    @classmethod
    def from_context(cls, context: LambdaContext, margin_s: float = DEADLINE_MARGIN_S) -> Deadline:
        ends = time.monotonic() + context.get_remaining_time_in_millis() / 1000
        return cls(ends - margin_s, ends)

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    def remaining(self) -> float:
        return max(0.0, self.expires_at - time.monotonic())

    def lambda_remaining_s(self) -> float:
        """Seconds until Lambda ends the invocation (without a context: until `expires_at`)."""
        ends = self.expires_at if self.lambda_expires_at is None else self.lambda_expires_at
        return max(0.0, ends - time.monotonic())
