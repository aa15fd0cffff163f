"""The exceptions the function raises. Lambda reports an exception's class name as the errorType.

None of these messages ever contains a nonce, a client token or an artifact credential: they are built from
error codes and job ids only, never from an SDK or service message (AWS validation messages echo values).
"""

from __future__ import annotations

import re
from functools import cache


class InvalidJobEvent(ValueError):
    """The event failed validation; nothing was sent to AWS."""


class ConfigurationError(RuntimeError):
    """An environment variable is missing or malformed; raised at cold start."""


class HandoffPending(RuntimeError):
    """A poll claimed jobs whose hand-off is not certainly done: recorded for the reconciler. The invocation fails
    once its results and metrics are recorded, so that the alarm fires and Lambda's retry settles them."""


class JobError(RuntimeError):
    """A job could not be claimed. Subclasses are named after the error code, so Lambda's errorType is
    exactly what CodePipeline (or this worker) answered: InvalidNonceException, JobNotFoundException..."""

    code = "JobError"

    def __init__(self, message: str, *, job_id: str | None = None) -> None:
        super().__init__(message)
        self.job_id = job_id


_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,99}$")


@cache
def job_error_class(code: str) -> type[JobError]:
    """The JobError subclass named after an error code; one class per code, so `except` and `is` work."""
    if not _IDENTIFIER.match(code):
        return JobError
    return type(code, (JobError,), {"code": code, "__module__": __name__})
