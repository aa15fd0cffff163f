"""The acknowledger's events: direct job events here; batches, EventBridge schedules and action state changes in
`batch_and_poll_events`.

`parse_event` validates a Lambda event into one of them or raises `InvalidJobEvent` naming every bad field,
never a value; `redact_event` is the copy of an event that event logging may print.

The event's kind is read from its keys first, then only that kind's model validates it: every model is built at
its first use (`defer_build`), and the batch, schedule and state-change models are defined at the first such
event, so an execution environment that only ever gets direct job events never defines or builds them (about
5 ms of a cold start to build, about 2 ms more to define).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from ..shared.errors import InvalidJobEvent
from ..shared.models import ClientId, ClientToken, CustomJobId, Nonce, ThirdPartyJobId  # noqa: TC001 - pydantic's

if TYPE_CHECKING:
    from collections.abc import Iterator

    from .batch_and_poll_events import ActionStateChangeEvent, JobBatchEvent, ScheduledEvent

ACTION_STATE_CHANGE = "CodePipeline Action Execution State Change"
LAMBDA_INVOKE_KEY = "CodePipeline.job"


class DirectEvent(BaseModel):
    """A job event written by a person or a program: unknown keys are typos, not AWS additions."""

    model_config = ConfigDict(
        extra="forbid", strict=True, frozen=True, alias_generator=to_camel, populate_by_name=True, defer_build=True
    )


class CustomJobEvent(DirectEvent):
    """A custom-action job, in AcknowledgeJob's request syntax."""

    job_type: Literal["custom"] = "custom"
    job_id: CustomJobId
    nonce: Nonce


class ThirdPartyJobEvent(DirectEvent):
    """A partner-action job. Without a nonce, GetThirdPartyJobDetails supplies one; without a clientToken,
    the token is looked up by clientId in the configured secret."""

    job_type: Literal["thirdParty"] = "thirdParty"
    job_id: ThirdPartyJobId
    nonce: Nonce | None = None
    client_token: ClientToken | None = None
    client_id: ClientId | None = None

    @model_validator(mode="after")
    def _has_token_source(self) -> ThirdPartyJobEvent:
        if self.client_token is None and self.client_id is None:
            raise ValueError("a partner job needs clientToken, or clientId to look the token up")
        return self


def job_kind(value: Any) -> str | None:
    """A job event's kind, from its keys: custom, thirdParty, or None for a jobType that is neither."""
    if not isinstance(value, dict):
        return "custom"  # lets the model report "Input should be a valid dictionary"
    if "jobType" in value:
        job_type = value["jobType"]
        return job_type if job_type in ("custom", "thirdParty") else None
    if "clientToken" in value or "clientId" in value:
        return "thirdParty"
    return "custom"


def _event_kind(value: Any) -> str | None:
    if "jobs" in value:
        return "batch"
    if "detail-type" in value or "source" in value:
        return {"Scheduled Event": "scheduled", ACTION_STATE_CHANGE: "actionStateChange"}.get(
            str(value.get("detail-type"))
        )
    return job_kind(value)


# Evaluated only by type checkers: the last three are defined at the first such event.
type Event = CustomJobEvent | ThirdPartyJobEvent | JobBatchEvent | ScheduledEvent | ActionStateChangeEvent


def _model(kind: str | None) -> type[Event] | None:
    """The model of an event's kind. The batch, schedule and state-change models are defined at the first such
    event (`batch_and_poll_events`): a direct job's execution environment never defines them."""
    if kind == "custom":
        return CustomJobEvent
    if kind == "thirdParty":
        return ThirdPartyJobEvent
    if kind is None:
        return None
    from .batch_and_poll_events import EVENT_MODELS  # noqa: PLC0415 - see above

    return EVENT_MODELS[kind]


UNSUPPORTED_EVENT = (
    "not a supported event: expected a job ({jobId, nonce}), a partner job ({jobId, clientToken or clientId}), a"
    " batch ({jobs: [...]}), an EventBridge Scheduled Event or a"
    f" '{ACTION_STATE_CHANGE}' event; jobType, when given, must be 'custom' or 'thirdParty'"
)
_UNION_TAGS = frozenset({"custom", "thirdParty", "batch", "scheduled", "actionStateChange"})
_SECRET_KEYS = frozenset(
    {"nonce", "clienttoken", "artifactcredentials", "accesskeyid", "secretaccesskey", "sessiontoken"}
)
# Keys whose values event logging may show: ids, names and EventBridge envelope fields, never a secret.
_LOGGABLE_KEYS = frozenset(
    {
        "jobId",
        "jobType",
        "clientId",
        "jobs",
        "version",
        "id",
        "detail-type",
        "source",
        "account",
        "time",
        "region",
        "resources",
        "detail",
        "pipeline",
        "execution-id",
        "stage",
        "action",
        "state",
        "type",
        "owner",
        "category",
        "provider",
        "pipeline-execution-attempt",
        "CodePipeline.job",
        "accountId",
    }
)
_MAX_REPORTED_ERRORS = 50
_MAX_KEY_CHARS = 64


def parse_event(raw: Any) -> Event:
    """Validate a Lambda event, or raise `InvalidJobEvent` naming every bad field without echoing a value."""
    if not isinstance(raw, dict):
        raise InvalidJobEvent(f"the event must be a JSON object, not {_json_type(raw)}")
    if LAMBDA_INVOKE_KEY in raw:
        raise InvalidJobEvent(
            "a Lambda-invoke action event (CodePipeline.job) carries no nonce and cannot be acknowledged:"
            " the function that CodePipeline invokes completes its job with PutJobSuccessResult or"
            " PutJobFailureResult. This worker serves custom and partner actions."
        )
    model = _model(_event_kind(raw))
    if model is None:
        raise InvalidJobEvent(f"invalid event, 1 error: event: {UNSUPPORTED_EVENT}")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        error = InvalidJobEvent(_describe(exc, SecretMatcher(secret_values(raw))))
    # Raised outside the except block so that the ValidationError, which holds the input, is not its context.
    raise error


def _describe(exc: ValidationError, secrets: SecretMatcher) -> str:
    # include_input=False: pydantic's own str() would echo the offending values, secrets among them.
    # The messages are pydantic's fixed texts and ours; the only input they show is a key name, in `loc`.
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    lines = [
        f"{_location(err['loc'], secrets)}: {err['msg'].removeprefix('Value error, ')}"
        for err in errors[:_MAX_REPORTED_ERRORS]
    ]
    if len(errors) > _MAX_REPORTED_ERRORS:
        lines.append(f"... and {len(errors) - _MAX_REPORTED_ERRORS} more")
    noun = "error" if len(errors) == 1 else "errors"
    return f"invalid event, {len(errors)} {noun}: " + "; ".join(lines)


def _location(loc: tuple[int | str, ...], secrets: SecretMatcher) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part not in _UNION_TAGS:
            name = "***" if secrets.found_in(part) else part[:_MAX_KEY_CHARS]
            text += f".{name}" if text else name
    return text or "event"


def _json_type(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def secret_values(value: Any) -> set[str]:
    """Every non-empty string held under a secret-bearing key anywhere in a JSON value. Iterative: an event nested
    thousands deep costs its size, not Python's stack."""
    found: set[str] = set()
    stack: list[tuple[Any, bool]] = [(value, False)]
    while stack:
        item, secret = stack.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                stack.append((child, secret or (isinstance(key, str) and key.lower() in _SECRET_KEYS)))
        elif isinstance(item, list):
            stack.extend((child, secret) for child in item)
        elif secret and isinstance(item, str) and item:
            found.add(item)
    return found


class SecretMatcher:
    """Whether a text contains any of a set of secrets, in time linear in the text (Aho-Corasick): an event with
    thousands of nonces is checked as fast as one with a single nonce. Built in time linear in the secrets."""

    def __init__(self, secrets: set[str]) -> None:
        self._goto: list[dict[str, int]] = [{}]
        self._fail: list[int] = [0]
        self._match: list[bool] = [False]
        for secret in secrets:
            state = 0
            for char in secret:
                state = self._goto[state].get(char) or self._add(state, char)
            self._match[state] = True
        queue = deque(self._goto[0].values())
        while queue:
            state = queue.popleft()
            for char, child in self._goto[state].items():
                queue.append(child)
                fallback = self._fail[state]
                while fallback and char not in self._goto[fallback]:
                    fallback = self._fail[fallback]
                self._fail[child] = self._goto[fallback].get(char, 0) if state else 0
                self._match[child] = self._match[child] or self._match[self._fail[child]]

    def _add(self, state: int, char: str) -> int:
        self._goto.append({})
        self._fail.append(0)
        self._match.append(False)
        self._goto[state][char] = len(self._goto) - 1
        return len(self._goto) - 1

    def found_in(self, text: str) -> bool:
        if len(self._goto) == 1:
            return False
        goto, fail, match = self._goto, self._fail, self._match
        state = 0
        for char in text:
            while state and char not in goto[state]:
                state = fail[state]
            state = goto[state].get(char, 0)
            if match[state]:
                return True
        return False


_MASK = "***"
_TOO_DEEP = "<nested too deep>"
# Event logging shows this many levels of an event; deeper values are replaced, so that the log line's own JSON
# encoding never meets Python's recursion limit.
_MAX_LOGGED_DEPTH = 16


def redact_event(event: Any) -> Any:
    """A copy of an event that is safe to log, for POWERTOOLS_LOGGER_LOG_EVENT.

    Only keys this worker knows keep their values; a secret field (nonce, clientToken, credentials) shows `***`.
    Any other key, of a typo or of a hostile event, is shown as `<key N>` and its value as `***`, since either
    may be a secret; so is any value that repeats a secret. Iterative, depth-bounded and linear in the event's size.
    """
    secrets = SecretMatcher(secret_values(event))
    counter = iter(range(1, 1_000_000_000))
    root: list[Any] = [None]
    # Each entry: a value to copy, whether its key is known, its depth, and where its copy goes.
    stack: list[tuple[Any, bool, int, list[Any] | dict[Any, Any], int | Any]] = [
        (event, isinstance(event, dict), 0, root, 0)
    ]
    while stack:
        value, known_key, depth, parent, slot = stack.pop()
        copy: Any
        if depth > _MAX_LOGGED_DEPTH and isinstance(value, dict | list):
            copy = _TOO_DEEP
        elif isinstance(value, dict):
            copy = {}
            children = []
            for key, child in value.items():
                name = _loggable_key(key, counter)
                copy[name] = None  # the keys keep the event's order; their values are filled in as they are copied
                children.append((child, key in _LOGGABLE_KEYS, depth + 1, copy, name))
            stack.extend(reversed(children))
        elif not known_key:
            copy = _MASK
        elif isinstance(value, list):
            copy = [None] * len(value)
            stack.extend((child, known_key, depth + 1, copy, n) for n, child in reversed(list(enumerate(value))))
        elif isinstance(value, str) and secrets.found_in(value):
            copy = _MASK
        else:
            copy = value
        parent[slot] = copy
    return root[0]


def _loggable_key(key: Any, counter: Iterator[int]) -> Any:
    """A known key, or a secret field's name (its value is hidden), or a stand-in for any other key."""
    if key in _LOGGABLE_KEYS or (isinstance(key, str) and key.lower() in _SECRET_KEYS):
        return key
    return f"<key {next(counter)}>"
