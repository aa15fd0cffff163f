"""The decorator stack every function's entry point wears (shared/observability.py `instrument`): each invocation's
lines carry its own Lambda context, and no key appended in one invocation reaches the next one's lines."""

from __future__ import annotations

import ast
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from codepipeline_worker.shared.observability import instrument, logger, metrics
from codepipeline_worker.work.handler import lambda_handler as work_handler
from tests.conftest import FakeLambdaContext, log_lines
from tests.unit.test_worker_handler import record

if TYPE_CHECKING:
    from collections.abc import Callable

pytestmark = pytest.mark.usefixtures("clean_metrics")

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "codepipeline_worker"
# Powertools' calls that add a key to every later line of the logger.
APPENDING = {"append_keys", "thread_safe_append_keys", "append_context_keys", "set_correlation_id"}


def test_a_key_appended_in_one_invocation_is_not_in_the_next(emitted: Callable[[], str]) -> None:
    """What the work function's user action may do: append a key and leave it."""

    @instrument
    def handler(event: dict[str, str], context: Any) -> dict[str, str]:
        logger.info("working")
        metrics.add_metric(name="Worked", unit=MetricUnit.Count, value=1)
        logger.append_keys(customer=event["customer"])
        return {}

    handler({"customer": "A"}, FakeLambdaContext(aws_request_id="request-1"))
    handler({"customer": "B"}, FakeLambdaContext(aws_request_id="request-2"))

    first, second = log_lines(emitted())
    assert (first["function_request_id"], second["function_request_id"]) == ("request-1", "request-2")
    assert "customer" not in first
    assert "customer" not in second


def test_without_clearing_each_invocation_still_carries_its_own_context(emitted: Callable[[], str]) -> None:
    @instrument
    def clearing(event: Any, context: Any) -> dict[str, str]:
        logger.info("clearing")
        metrics.add_metric(name="Cleared", unit=MetricUnit.Count, value=1)
        return {}

    @partial(instrument, appends_keys=False)
    def appending(event: Any, context: Any) -> dict[str, str]:
        logger.info("not clearing")
        metrics.add_metric(name="NotCleared", unit=MetricUnit.Count, value=1)
        return {}

    clearing({}, FakeLambdaContext(aws_request_id="request-1"))
    appending({}, FakeLambdaContext(aws_request_id="request-2"))
    appending({}, FakeLambdaContext(aws_request_id="request-3"))

    keys = [(line["function_request_id"], line["cold_start"]) for line in log_lines(emitted())]
    assert [request for request, _ in keys] == ["request-1", "request-2", "request-3"]
    assert [cold for _, cold in keys[1:]] == [False, False]


def test_the_work_function_clears_what_an_earlier_invocation_appended(emitted: Callable[[], str]) -> None:
    logger.append_keys(customer="A")  # left by a user's action in the invocation before
    try:
        with pytest.raises(BatchProcessingError):  # its one record is not a job message
            work_handler({"Records": [record("m1", "not a job")]}, FakeLambdaContext(aws_request_id="request-2"))
    finally:
        logger.remove_keys(["customer"])

    written = log_lines(emitted())
    assert "batch received" in [line["message"] for line in written]
    assert all("customer" not in line for line in written)


def appending_calls(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        f"{path.relative_to(PACKAGE)}:{node.lineno}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in APPENDING
    ]


def test_the_acknowledger_appends_no_logging_key() -> None:
    """Its entry point skips Powertools' clearing (`appends_keys=False`), which is safe only while neither its own
    code nor the shared code it runs appends a key: a key appended would then reach the next invocation's lines."""
    found = [
        call
        for folder in ("acknowledger", "shared")
        for path in sorted((PACKAGE / folder).glob("*.py"))
        for call in appending_calls(path)
    ]
    assert found == []
    # The scan finds such a call where there is one.
    assert appending_calls(PACKAGE / "work" / "runner.py")
