"""The example action: a deployment gate that waits until a URL answers as expected.

Action configuration:
- `Url` (required): http:// or https:// address to check, e.g. the health page of what the pipeline deployed.
- `ExpectedStatus` (default 200): the HTTP status that passes.
- `MaxChecks` (default 10): how many rounds to try before the job fails.

Each round checks once. If the answer is not yet the expected one, it returns StillRunning with the round
count in the continuation token, so CodePipeline creates a follow-up job and the check runs again at the next
claim (the schedule spaces the rounds). It succeeds with output variables `StatusCode` and `Checks` (custom
actions only), or fails after MaxChecks rounds, or at once on a configuration error. Messages show the URL
without its query string, which may hold a token.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from ..work import ConfigurationProperty, Failure, Job, Outcome, StillRunning, Success

TIMEOUT_S = 5.0

# Registered with the custom action type by the stack (RegisterCustomActionType=true).
CONFIGURATION_PROPERTIES = [
    ConfigurationProperty(
        name="Url",
        description="The http:// or https:// address to check",
        required=True,
        example="https://example.com/health",
    ),
    ConfigurationProperty(
        name="ExpectedStatus", description="The HTTP status that passes (default 200)", type="Number"
    ),
    ConfigurationProperty(
        name="MaxChecks", description="How many checks, one per claim, before the job fails (default 10)", type="Number"
    ),
]


def check_url(job: Job) -> Outcome:
    config = job.configuration
    url = config.get("Url", "")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return Failure(type="ConfigurationError", message="Url must be an http:// or https:// address")
    shown = f"{parts.scheme}://{parts.netloc}{parts.path}"
    try:
        expected = int(config.get("ExpectedStatus", "200"))
        max_checks = int(config.get("MaxChecks", "10"))
    except ValueError:
        return Failure(type="ConfigurationError", message="ExpectedStatus and MaxChecks must be whole numbers")
    if max_checks < 1:
        return Failure(type="ConfigurationError", message="MaxChecks must be at least 1")

    checks = _checks_so_far(job.continuation_token) + 1
    status = _status(url)
    if status == expected:
        return Success(
            summary=f"{shown} answered {status} at check {checks}",
            # Output variables exist for custom actions only.
            output_variables={"StatusCode": str(status), "Checks": str(checks)} if job.type == "custom" else None,
        )
    answered = f"answered {status}" if status else "did not answer"
    if checks >= max_checks:
        rounds = "1 check" if checks == 1 else f"{checks} checks"
        return Failure(message=f"{shown} {answered} ({expected} expected) after {rounds}")
    return StillRunning(
        continuation_token=json.dumps({"checks": checks}),
        percent_complete=100 * checks // max_checks,
        summary=f"{shown} {answered} ({expected} expected); check {checks} of {max_checks}",
    )


def _checks_so_far(token: str | None) -> int:
    if not token:
        return 0
    try:
        return int(json.loads(token)["checks"])
    except (ValueError, KeyError, TypeError):
        return 0


def _status(url: str) -> int:
    """The HTTP status of a GET, or 0 when there was no answer. Redirects are followed."""
    request = urllib.request.Request(url, headers={"User-Agent": "codepipeline-job-worker-example"})  # noqa: S310 - scheme checked above
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except (urllib.error.URLError, TimeoutError, OSError):
        return 0
