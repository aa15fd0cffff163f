"""Hypothesis profiles: `ci` (what `make test` runs: thousands of examples in well under a few minutes) and
`long` (`make fuzz`, for local runs). HYPOTHESIS_PROFILE picks one; `ci` is the default.

In a long run, each property reports its progress every PROGRESS_EVERY_S seconds: examples run and time spent."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, settings

if TYPE_CHECKING:
    from collections.abc import Callable

settings.register_profile(
    "ci", max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.register_profile(
    "long", max_examples=50000, deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

PROGRESS_EVERY_S = 30.0
# Runs shorter than this many examples finish before a report would be due.
REPORTED_FROM = 10_000


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    """Wrap a property's per-example function (Hypothesis calls `.hypothesis.inner_test` once per example) with
    a counter that writes a progress line to the terminal now and then."""
    hypothesis = getattr(getattr(item, "obj", None), "hypothesis", None)
    if hypothesis is None or settings().max_examples < REPORTED_FROM:
        return
    reporter = item.config.pluginmanager.get_plugin("terminalreporter")
    capture = item.config.pluginmanager.get_plugin("capturemanager")
    inner: Callable[..., Any] = hypothesis.inner_test
    started = last = time.monotonic()
    examples = 0

    def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal examples, last
        examples += 1
        now = time.monotonic()
        if reporter is not None and capture is not None and now - last >= PROGRESS_EVERY_S:
            last = now
            planned = settings().max_examples
            left_min = (planned - examples) * (now - started) / examples / 60
            with capture.global_and_fixture_disabled():  # the test's output is captured meanwhile
                reporter.write_line(
                    f"  {item.name}: {examples:,} examples of {planned:,} in {now - started:.0f} s; "
                    f"about {max(left_min, 0):.0f} min left at this pace"
                )
        return inner(*args, **kwargs)

    hypothesis.inner_test = counted
