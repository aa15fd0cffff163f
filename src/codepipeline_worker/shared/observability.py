"""Logger, Metrics and, only when tracing is on, Tracer: created once per execution environment.

Configured by environment variables, validated in `config`:
POWERTOOLS_SERVICE_NAME, POWERTOOLS_LOG_LEVEL, POWERTOOLS_METRICS_NAMESPACE, POWERTOOLS_LOGGER_LOG_EVENT and
POWERTOOLS_TRACE_DISABLED.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.logging import Logger
from aws_lambda_powertools.metrics import Metrics

from .config import observability_settings
from .logformat import FastFormatter

if TYPE_CHECKING:
    from aws_lambda_powertools.tracing import Tracer

_settings = observability_settings()

logger = Logger(service=_settings.service_name, level=_settings.log_level, logger_formatter=FastFormatter())
metrics = Metrics(namespace=_settings.metrics_namespace, service=_settings.service_name)

# The SDK's DEBUG logs print every request and response body, nonces and client tokens with them, and
# Lambda's runtime lets them through once AWS_LAMBDA_LOG_LEVEL is DEBUG. Nothing below WARNING leaves them.
for _name in ("botocore", "boto3", "urllib3"):
    logging.getLogger(_name).setLevel(logging.WARNING)

# The standard library's logger that Logger writes through: its level is Powertools' and Lambda's log level.
_writes_through = logging.getLogger(logger.name)


def debug_on() -> bool:
    """Whether a DEBUG line would be written. A per-job path checks it before a DEBUG line: a disabled line still
    costs its call through Powertools and its arguments, about 2.6 % of a warm direct job's CPU for three lines
    (docs/benchmarks.md)."""
    return _writes_through.isEnabledFor(logging.DEBUG)


def _create_tracer() -> Tracer | None:
    # Importing the X-Ray SDK costs a cold start ~0.35 s and ~20 MB: only a function that traces pays it.
    if _settings.tracing_disabled:
        return None
    from aws_lambda_powertools.tracing import Tracer  # noqa: PLC0415 - cold start

    return Tracer(service=_settings.service_name)


tracer = _create_tracer()

Handler = Callable[..., Any]


def instrument(handler: Handler, *, appends_keys: bool = True) -> Handler:
    """The one decorator stack: Logger context (outermost), then Metrics, then Tracer when enabled.

    Powertools' own event logging is forced off: it would print nonces and client tokens. The handler logs
    a redacted copy instead when POWERTOOLS_LOGGER_LOG_EVENT is true.

    Each invocation's lines carry its Lambda context. A function whose code may append keys to the logger
    (`appends_keys`: the work function runs a user's action, which may) has every key of the invocation before
    cleared first (`clear_state`). One that appends none (the acknowledger) skips the clearing: its keys are the
    context's alone either way, and the clearing costs about 1.5 % of a warm direct job's CPU (docs/benchmarks.md).
    """
    wrapped = handler
    if tracer is not None:
        wrapped = tracer.capture_lambda_handler(wrapped, capture_response=False)
    wrapped = metrics.log_metrics(wrapped, capture_cold_start_metric=True)
    return logger.inject_lambda_context(wrapped, log_event=False, clear_state=appends_keys)
