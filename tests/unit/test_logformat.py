"""The project's log formatter writes exactly Powertools' line: the same record through both formatters, configured
alike, gives the same text, for the lines the fast path writes and for the ones it hands to Powertools."""

from __future__ import annotations

import logging
import sys
from typing import Any

import pytest
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from codepipeline_worker.shared.logformat import FastFormatter
from codepipeline_worker.shared.observability import logger

LAMBDA_KEYS = {
    "cold_start": False,
    "function_name": "worker",
    "function_memory_size": 128,
    "function_arn": "arn:aws:lambda:us-east-1:123456789012:function:worker",
    "function_request_id": "00000000-0000-0000-0000-000000000000",
}


class Unserializable:
    def __str__(self) -> str:
        return "unserializable"


def record(msg: object, *args: object, extra: dict[str, Any] | None = None, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            exc_info = sys.exc_info()
    return logging.getLogger("test").makeRecord(
        "test", logging.INFO, __file__, 42, msg, args, exc_info, "a_function", extra
    )


RECORDS = {
    "plain": lambda: record("job acknowledged"),
    "extras": lambda: record("job acknowledged", extra={"job_id": "j", "handoff": None, "n": 3, "ids": ["a", "b"]}),
    "unicode": lambda: record("naïve ✓", extra={"ünïcode": "✓"}),
    "not serializable": lambda: record("odd", extra={"value": Unserializable()}),
    "JSON message": lambda: record('{"a": 1}'),
    "number message": lambda: record("123"),
    "true message": lambda: record("true"),
    "null-like message": lambda: record("no call succeeded"),
    "whitespace message": lambda: record(" [1]"),
    "empty message": lambda: record(""),
    "dict message": lambda: record({"a": 1}),
    "args": lambda: record("%s jobs", 3),
    "exception": lambda: record("failed", exc=True),
    "exception extras": lambda: record("x", extra={"exception": "mine", "stack_trace": "s", "xray_trace_id": "t"}),
    "reserved extras": lambda: record("x", extra={"level": "ignored", "location": "ignored", "timestamp": 1}),
}


def formatters(**options: Any) -> tuple[LambdaPowertoolsFormatter, FastFormatter]:
    """Powertools' formatter as Logger makes it, and ours as Logger(logger_formatter=...) configures it."""
    keys: dict[str, Any] = {"service": "worker", "sampling_rate": None}
    theirs = LambdaPowertoolsFormatter(**options, **keys)
    ours = FastFormatter(**options)
    ours.append_keys(**keys)
    for formatter in (theirs, ours):
        formatter.append_keys(**LAMBDA_KEYS)
    return theirs, ours


@pytest.mark.parametrize("name", RECORDS)
@pytest.mark.parametrize(
    "options",
    [{}, {"utc": True}, {"use_rfc3339": True}, {"log_record_order": ["message", "level"]}, {"datefmt": "%H:%M"}],
    ids=["default", "utc", "rfc3339", "order", "datefmt"],
)
def test_the_same_line_as_powertools(name: str, options: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    theirs, ours = formatters(**options)
    one = RECORDS[name]()
    assert ours.format(one) == theirs.format(one)
    monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8")
    assert ours.format(one) == theirs.format(one)


def test_the_same_line_with_appended_and_context_keys() -> None:
    theirs, ours = formatters()
    for formatter in (theirs, ours):
        formatter.append_keys(process_id="%(process)d", tenant="t1", dropped=None)
    one = record("job acknowledged", extra={"job_id": "j"})
    assert ours.format(one) == theirs.format(one)
    with (
        ours.append_context_keys(request="r1", at="%(asctime)s"),
        theirs.append_context_keys(request="r1", at="%(asctime)s"),
    ):
        assert ours.format(one) == theirs.format(one)
    # The thread's keys (Powertools' context variable, shared by every formatter), a reserved one among them.
    ours.thread_safe_append_keys(request="r2", location="%(module)s")
    try:
        assert '"request":"r2"' in ours.format(one)
        assert ours.format(one) == theirs.format(one)
    finally:
        ours.thread_safe_clear_keys()


def test_the_project_logger_uses_it() -> None:
    assert isinstance(logger.registered_formatter, FastFormatter)
