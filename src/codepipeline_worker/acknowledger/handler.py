"""The acknowledger's Lambda entry point: validate the event, hand it to the service, return its result.

Configuration is read and the SDK client built here, once, at cold start; a bad setting fails the cold start.
An invalid event is answered with a result naming the error, not raised: no retry can make it valid, and a failed
invocation's event, nonces and client tokens included, would be kept in the failure destination.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from ..shared.startup import collector_paused

# The init: imports, configuration and clients, with the cyclic garbage collector paused (shared/startup.py).
with collector_paused():
    from aws_lambda_powertools.metrics import MetricUnit

    from ..shared.deadline import Deadline
    from ..shared.errors import InvalidJobEvent
    from ..shared.observability import instrument, logger, metrics
    from .config import get_settings
    from .events import parse_event, redact_event
    from .results import RejectedResult
    from .service import JobService

    settings = get_settings()
    default_service = JobService.from_settings(settings)

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


# The acknowledger appends no logging key (a test checks its code): see `instrument`.
@partial(instrument, appends_keys=False)
def lambda_handler(event: Any, context: LambdaContext, service: JobService | None = None) -> dict[str, Any]:
    if settings.log_event:
        logger.info("event received", event=redact_event(event))
    try:
        parsed = parse_event(event)
    except InvalidJobEvent as exc:
        logger.warning("invalid event", error=str(exc))
        metrics.add_metric(name="InvalidEvents", unit=MetricUnit.Count, value=1)
        return RejectedResult(message=str(exc)).to_json()
    return (service or default_service).handle(parsed, Deadline.from_context(context))
