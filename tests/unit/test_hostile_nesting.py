"""Hostile events: nesting thousands deep, and events of thousands of jobs or a megabyte. Parsing and event
logging must answer InvalidJobEvent (or a redacted copy) without recursion, in time linear in the event's size:
the work is counted here, not timed."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from codepipeline_worker.acknowledger import events
from codepipeline_worker.acknowledger.events import SecretMatcher, parse_event, redact_event, secret_values
from codepipeline_worker.acknowledger.handler import lambda_handler
from codepipeline_worker.shared.errors import InvalidJobEvent
from tests.conftest import FakeLambdaContext
from tests.unit.conftest import make_service

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.unit.conftest import Stubbed

JOB = "11111111-abcd-1111-abcd-111111abcdef"


def nested(depth: int, leaf: Any = "x") -> Any:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def deep_nonce_event(depth: int = 2000) -> dict[str, Any]:
    """A 2,000-deep array under `nonce`: about 4 KB, and json.loads accepts it."""
    event = {"jobId": JOB, "nonce": nested(depth, "secret-at-the-bottom")}
    assert json.loads(json.dumps(event)) == event
    return event


def test_a_deeply_nested_nonce_is_an_invalid_event_not_a_recursion_error() -> None:
    with pytest.raises(InvalidJobEvent) as caught:
        parse_event(deep_nonce_event())

    assert str(caught.value) == "invalid event, 1 error: nonce: Input should be a valid string"
    assert "secret-at-the-bottom" not in str(caught.value)
    assert secret_values(deep_nonce_event()) == {"secret-at-the-bottom"}


@pytest.mark.parametrize("key", ["nonce", "jobs", "detail", "unknown"])
def test_event_logging_copies_any_depth_and_cuts_it_short(key: str) -> None:
    event = {"jobId": JOB, key: nested(2000, "secret-at-the-bottom")}

    copy = redact_event(event)

    text = json.dumps(copy)  # the log line's own encoding meets no recursion limit
    assert "secret-at-the-bottom" not in text
    assert text.count("[") <= 20


def test_the_handler_answers_a_deep_event_with_event_logging_on(
    codepipeline: Stubbed, monkeypatch: pytest.MonkeyPatch, emitted: Callable[[], str]
) -> None:
    from codepipeline_worker.acknowledger import handler
    from tests.unit.conftest import make_settings

    client, _ = codepipeline
    monkeypatch.setattr(handler, "settings", make_settings(POWERTOOLS_LOGGER_LOG_EVENT="true"))

    result = lambda_handler(deep_nonce_event(), FakeLambdaContext(), service=make_service(client))

    assert result["error"] == "InvalidJobEvent"
    output = emitted()
    assert '"message":"event received"' in output
    assert "secret-at-the-bottom" not in output


def big_events() -> list[dict[str, Any]]:
    """8,000 jobs, each with its own nonce; and a 1 MB event of unknown keys and long values."""
    jobs = {"jobs": [{"jobId": f"{n:08x}-abcd-1111-abcd-111111abcdef", "nonce": f"nonce-{n:06d}"} for n in range(8000)]}
    wide = {"jobId": JOB, "nonce": "n-1", **{f"key{n}": "v" * 100 for n in range(10_000)}}
    return [jobs, wide]


class Scanned:
    """Counts the characters the secret matcher reads, and the secrets it is built from."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.text = 0
        self.secrets = 0
        counter = self
        original_init, original_found = SecretMatcher.__init__, SecretMatcher.found_in

        def init(matcher: SecretMatcher, secrets: set[str]) -> None:
            counter.secrets += sum(len(s) for s in secrets)
            original_init(matcher, secrets)

        def found_in(matcher: SecretMatcher, text: str) -> bool:
            counter.text += len(text)
            return original_found(matcher, text)

        monkeypatch.setattr(events.SecretMatcher, "__init__", init)
        monkeypatch.setattr(events.SecretMatcher, "found_in", found_in)


@pytest.mark.parametrize("event", big_events(), ids=["8000-jobs", "1-mb"])
def test_parsing_and_redacting_a_big_event_reads_it_a_bounded_number_of_times(
    event: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    size = len(json.dumps(event))
    scanned = Scanned(monkeypatch)

    with pytest.raises(InvalidJobEvent):
        parse_event(event)
    copy = redact_event(event)

    # Every secret is read once to build the matcher, every shown value once against all of them: linear work,
    # where checking each value against each secret grew with their product (8,000 jobs: 64 million checks)
    assert scanned.secrets + scanned.text <= 2 * size
    assert "nonce-000001" not in json.dumps(copy)
    assert len(json.dumps(copy)) <= 2 * size


def test_the_matcher_finds_any_secret_inside_a_text() -> None:
    matcher = SecretMatcher({"abc", "bcd", "x", "aab"})

    assert matcher.found_in("zzbcdz")
    assert matcher.found_in("aaab")  # a secret that starts inside another's partial match
    assert matcher.found_in("-x-")
    assert not matcher.found_in("ab-cd-zz")
    assert not SecretMatcher(set()).found_in("anything")
