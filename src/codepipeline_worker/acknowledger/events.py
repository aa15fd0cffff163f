"""The acknowledger's events: direct job events, batches, EventBridge schedules and action state changes.

`parse_event` validates a Lambda event into one of them or raises `InvalidJobEvent` naming every bad field,
never a value; `redact_event` is the copy of an event that event logging may print.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel

from ..shared.errors import InvalidJobEvent
from ..shared.models import (
    AccountId,
    ActionTypeId,
    ClientId,
    ClientToken,
    CustomJobId,
    EnvelopeModel,
    Nonce,
    ThirdPartyJobId,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

ACTION_STATE_CHANGE = "CodePipeline Action Execution State Change"
LAMBDA_INVOKE_KEY = "CodePipeline.job"


class _DirectEvent(BaseModel):
    """A job event written by a person or a program: unknown keys are typos, not AWS additions."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, alias_generator=to_camel, populate_by_name=True)


class CustomJobEvent(_DirectEvent):
    """A custom-action job, in AcknowledgeJob's request syntax."""

    job_type: Literal["custom"] = "custom"
    job_id: CustomJobId
    nonce: Nonce


class ThirdPartyJobEvent(_DirectEvent):
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


def _job_kind(value: Any) -> str | None:
    if not isinstance(value, dict):
        return "custom"  # lets the model report "Input should be a valid dictionary"
    if "jobType" in value:
        job_type = value["jobType"]
        return job_type if job_type in ("custom", "thirdParty") else None
    if "clientToken" in value or "clientId" in value:
        return "thirdParty"
    return "custom"


JobEvent = Annotated[
    Annotated[CustomJobEvent, Tag("custom")] | Annotated[ThirdPartyJobEvent, Tag("thirdParty")],
    Discriminator(
        _job_kind,
        custom_error_type="invalid_job_type",
        custom_error_message="jobType must be 'custom' or 'thirdParty'",
    ),
]


class JobBatchEvent(_DirectEvent):
    """Up to 100 job events, acknowledged concurrently."""

    jobs: Annotated[list[JobEvent], Field(min_length=1, max_length=100)]


class ScheduledEvent(EnvelopeModel):
    """EventBridge Scheduler / rule tick: poll every configured action type."""

    source: Literal["aws.events"]
    detail_type: Literal["Scheduled Event"] = Field(alias="detail-type")


class ActionExecutionDetail(EnvelopeModel):
    pipeline: Annotated[str, Field(min_length=1, max_length=100)]
    stage: Annotated[str, Field(min_length=1, max_length=100)]
    action: Annotated[str, Field(min_length=1, max_length=100)]
    state: Annotated[str, Field(pattern=r"^[A-Z_]{1,32}$")]
    action_type: ActionTypeId = Field(alias="type")


class ActionStateChangeEvent(EnvelopeModel):
    """EventBridge `CodePipeline Action Execution State Change`: on STARTED, poll that action type at once."""

    source: Literal["aws.codepipeline"]
    detail_type: Literal["CodePipeline Action Execution State Change"] = Field(alias="detail-type")
    account: AccountId | None = None
    detail: ActionExecutionDetail


def _event_kind(value: Any) -> str | None:
    if "jobs" in value:
        return "batch"
    if "detail-type" in value or "source" in value:
        return {"Scheduled Event": "scheduled", ACTION_STATE_CHANGE: "actionStateChange"}.get(
            str(value.get("detail-type"))
        )
    return _job_kind(value)


Event = Annotated[
    Annotated[CustomJobEvent, Tag("custom")]
    | Annotated[ThirdPartyJobEvent, Tag("thirdParty")]
    | Annotated[JobBatchEvent, Tag("batch")]
    | Annotated[ScheduledEvent, Tag("scheduled")]
    | Annotated[ActionStateChangeEvent, Tag("actionStateChange")],
    Discriminator(
        _event_kind,
        custom_error_type="unsupported_event",
        custom_error_message=(
            "not a supported event: expected a job ({jobId, nonce}), a partner job ({jobId, clientToken"
            " or clientId}), a batch ({jobs: [...]}), an EventBridge Scheduled Event or a"
            f" '{ACTION_STATE_CHANGE}' event; jobType, when given, must be 'custom' or 'thirdParty'"
        ),
    ),
]
_EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
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
    try:
        return _EVENT_ADAPTER.validate_python(raw)
    except ValidationError as exc:
        error = InvalidJobEvent(_describe(exc, secret_values(raw)))
    # Raised outside the except block so that the ValidationError, which holds the input, is not its context.
    raise error


def _describe(exc: ValidationError, secrets: set[str]) -> str:
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


def _location(loc: tuple[int | str, ...], secrets: set[str]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part not in _UNION_TAGS:
            name = "***" if any(secret in part for secret in secrets) else part[:_MAX_KEY_CHARS]
            text += f".{name}" if text else name
    return text or "event"


def _json_type(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def secret_values(value: Any) -> set[str]:
    """Every non-empty string held under a secret-bearing key anywhere in a JSON value."""
    found: set[str] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str) and key.lower() in _SECRET_KEYS:
                    found.update(_strings(child))
                else:
                    stack.append(child)
        elif isinstance(item, list):
            stack.extend(item)
    found.discard("")
    return found


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for child in value.values() for s in _strings(child)]
    if isinstance(value, list):
        return [s for child in value for s in _strings(child)]
    return []


def redact_event(event: Any) -> Any:
    """A copy of an event that is safe to log, for POWERTOOLS_LOGGER_LOG_EVENT.

    Only keys this worker knows keep their values; a secret field (nonce, clientToken, credentials) shows `***`.
    Any other key, of a typo or of a hostile event, is shown as `<key N>` and its value as `***`, since either
    may be a secret; so is any value that repeats a secret.
    """
    secrets = secret_values(event)
    counter = iter(range(1, 1_000_000))

    def walk(value: Any, known_key: bool) -> Any:
        if isinstance(value, dict):
            return {_loggable_key(key, counter): walk(child, key in _LOGGABLE_KEYS) for key, child in value.items()}
        if not known_key:
            return "***"
        if isinstance(value, list):
            return [walk(child, known_key) for child in value]
        if isinstance(value, str) and any(secret in value for secret in secrets):
            return "***"
        return value

    return walk(event, known_key=isinstance(event, dict))


def _loggable_key(key: Any, counter: Iterator[int]) -> Any:
    """A known key, or a secret field's name (its value is hidden), or a stand-in for any other key."""
    if key in _LOGGABLE_KEYS or (isinstance(key, str) and key.lower() in _SECRET_KEYS):
        return key
    return f"<key {next(counter)}>"
