"""Property-based tests over the handler: arbitrary JSON, and mutations of every valid event in events/.

For every example: the outcome is a JSON result or InvalidJobEvent, never another exception; an invalid event
makes no AWS call; no secret value appears in the error or the result. The worker is the real one, with a real
botocore client whose requests are answered in-process (no network), so botocore's own checks run too."""

from __future__ import annotations

import copy
import json
import secrets
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
from botocore.awsrequest import AWSPreparedRequest, AWSResponse, HTTPHeaders
from hypothesis import event as note_event
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from codepipeline_worker.acknowledger.events import secret_values
from codepipeline_worker.acknowledger.handler import lambda_handler
from codepipeline_worker.acknowledger.service import JobService
from codepipeline_worker.shared.adapter import CodePipelineAdapter
from codepipeline_worker.shared.errors import InvalidJobEvent
from tests.conftest import EVENTS, FakeLambdaContext
from tests.unit.conftest import make_settings

ANSWERS = {
    "AcknowledgeJob": {"status": "InProgress"},
    "AcknowledgeThirdPartyJob": {"status": "InProgress"},
    "GetThirdPartyJobDetails": {"jobDetails": {"id": "j", "nonce": "answered-nonce"}},
    "PollForJobs": {"jobs": []},
    "PollForThirdPartyJobs": {"jobs": []},
}
OUTCOMES: Counter[str] = Counter()


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Any:
        yield self.data


class InProcessCodePipeline:
    """Answers every request the client sends, in-process, and counts them."""

    def __init__(self) -> None:
        self.calls = 0
        self.client = boto3.client("codepipeline", region_name="us-east-1")
        self.client.meta.events.register("before-send.codepipeline", self.answer)  # type: ignore[arg-type]

    def answer(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        self.calls += 1
        target = request.headers["X-Amz-Target"]
        name = (target.decode() if isinstance(target, bytes) else target).rsplit(".", 1)[1]
        body = json.dumps(ANSWERS[name]).encode()
        headers = HTTPHeaders()
        headers["Content-Type"] = "application/x-amz-json-1.1"
        return AWSResponse(request.url, 200, headers, _Body(body))


class AnyClientTokens:
    """A token for every clientId, so that a valid partner event is claimed rather than failed."""

    def token_for(self, client_id: str) -> SecretStr:
        return SecretStr(f"token-for-{client_id}")


def handle(event: Any) -> tuple[str, str, int]:
    """Run the handler on one event: (outcome, text to search for secrets, AWS calls made)."""
    aws = InProcessCodePipeline()
    service = JobService(
        make_settings(ACK_CONCURRENCY="4"),
        CodePipelineAdapter(aws.client),
        AnyClientTokens(),  # type: ignore[arg-type]
        started_retry_delays=(0.0,),
    )
    try:
        result = lambda_handler(event, FakeLambdaContext(), service=service)
    except InvalidJobEvent as error:
        return "invalid", str(error), aws.calls
    return "result", json.dumps(result), aws.calls


SECRET_KEYS = {"nonce", "clienttoken", "accesskeyid", "secretaccesskey", "sessiontoken"}


def marked(value: Any) -> Any:
    """The value with every string of 8 or more characters under a secret key replaced by a unique marker of
    the same length: lengths still probe the limits, and a marker can only be in the output if it leaked."""
    if isinstance(value, dict):
        return {
            k: (_marker(v) if isinstance(k, str) and k.lower() in SECRET_KEYS and isinstance(v, str) else marked(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [marked(item) for item in value]
    return value


def _marker(text: str) -> str:
    return text if len(text) < 8 else ("S3CR3T" + secrets.token_hex(len(text)))[: len(text)]


def check(event: Any) -> None:
    event = marked(event)
    secrets_in_event = {s for s in secret_values(event) if s.startswith("S3CR3T")}
    outcome, text, calls = handle(event)
    OUTCOMES[outcome] += 1
    note_event(outcome)
    if outcome == "invalid":
        assert calls == 0, "an invalid event made an AWS call"
    leaked = [s for s in secrets_in_event if s in text]
    assert not leaked, f"secret in the {outcome}: {leaked}"


# -- arbitrary JSON ------------------------------------------------------------------------------------------

KEYS = st.sampled_from(
    [
        "jobId",
        "nonce",
        "clientToken",
        "clientId",
        "jobType",
        "jobs",
        "source",
        "detail-type",
        "detail",
        "state",
        "type",
        "owner",
        "category",
        "provider",
        "version",
        "CodePipeline.job",
        "account",
    ]
) | st.text(max_size=12)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=60)
    | st.sampled_from(["custom", "thirdParty", "aws.events", "Scheduled Event", "STARTED", "Custom", "Build", "1"])
)
JSON = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=6) | st.dictionaries(KEYS, children, max_size=6),
    max_leaves=40,
)


@given(JSON)
def test_arbitrary_json_is_a_result_or_invalid_job_event(value: Any) -> None:
    check(value)


# -- mutations of the valid events -------------------------------------------------------------------------

VALID = [p.name for p in sorted(EVENTS.glob("*.json")) if not p.name.startswith("invalid-")]


def long_nonces(value: Any) -> Any:
    """The events' nonces ("3", "7") are too short to search for: give them 12 digits, as a poll might."""
    if isinstance(value, dict):
        return {k: (secrets.token_hex(6) if k == "nonce" else long_nonces(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [long_nonces(item) for item in value]
    return value


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Where a mutation may land: the first 12 levels, so that nesting grows by one deep value at a time and
    stays far from Python's recursion limit (which would make generation depend on the stack's depth)."""
    found = [prefix]
    if len(prefix) >= 12:
        return found
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value[:5]):
            found += paths(child, (*prefix, index))
    return found


def deep(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"nested": [value]}
    return value


REPLACEMENTS = st.one_of(
    JSON,
    st.text(min_size=51, max_size=600),  # over every length limit
    st.sampled_from(["", "f4f4ff82-2d11-EXAMPLE", "11111111-ABCD-1111-ABCD-111111ABCDEF", "x" * 513, "1.0", "aws.s3"]),
    st.sampled_from(["custom", "thirdParty", "partner", "Scheduled Event", "Object Created", "SUCCEEDED"]),
    st.integers(min_value=1, max_value=60).map(deep),  # deep nesting: up to 120 levels of object and array
)
MUTATION = st.sampled_from(["delete", "replace", "add", "grow"])


@st.composite
def mutated_events(draw: st.DrawFn) -> Any:
    event = long_nonces(json.loads((EVENTS / draw(st.sampled_from(VALID))).read_text()))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        event = mutate(event, draw)
    return event


def mutate(event: Any, draw: st.DrawFn) -> Any:
    event = copy.deepcopy(event)
    path = draw(st.sampled_from(paths(event)))
    kind = draw(MUTATION)
    if not path:  # the whole event
        return draw(REPLACEMENTS) if kind == "replace" else event
    parent = event
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if kind == "delete":
        del parent[last]
    elif kind == "replace":
        parent[last] = draw(REPLACEMENTS)
    elif kind == "add" and isinstance(parent, dict):
        parent[draw(KEYS)] = draw(REPLACEMENTS)
    elif kind == "grow" and isinstance(parent, list):
        parent.extend(copy.deepcopy(parent[:1]) * draw(st.integers(min_value=1, max_value=150)))  # huge batches
    return event


@given(mutated_events())
def test_mutations_of_every_valid_event_are_a_result_or_invalid_job_event(event: Any) -> None:
    check(event)


def test_the_valid_events_themselves_are_claimed() -> None:
    # The mutations start from events the worker accepts: the starting points are valid
    for name in VALID:
        outcome, _, calls = handle(marked(json.loads(Path(EVENTS / name).read_text())))
        assert outcome == "result", name
        assert calls > 0, name
