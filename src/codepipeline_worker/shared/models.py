"""The types both functions share: CodePipeline's identifiers and their constraints, and the result base.

Every constraint of CodePipeline's API is enforced here, anchored (`^...$`), because botocore checks only
minimum lengths on the client side. Nonces and client tokens are `SecretStr` from the moment they are parsed,
so no repr, log line or error message can show them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"

CustomJobId = Annotated[str, Field(pattern=UUID_PATTERN)]
ThirdPartyJobId = Annotated[str, Field(min_length=1, max_length=512)]


def _length(minimum: int, maximum: int) -> BeforeValidator:
    """Length bounds for a secret, checked before it becomes a SecretStr, worded as for any string."""

    def check(value: Any) -> Any:
        if isinstance(value, str) and len(value) < minimum:
            raise PydanticCustomError("string_too_short", f"String should have at least {minimum} character")
        if isinstance(value, str) and len(value) > maximum:
            raise PydanticCustomError("string_too_long", f"String should have at most {maximum} characters")
        return value

    return BeforeValidator(check)


Nonce = Annotated[SecretStr, _length(1, 50)]
ClientToken = Annotated[SecretStr, _length(1, 256)]
ClientId = Annotated[str, Field(pattern=UUID_PATTERN)]
AccountId = Annotated[str, Field(pattern=r"^[0-9]{12}$")]
ActionOwner = Literal["AWS", "ThirdParty", "Custom"]
PollableOwner = Literal["ThirdParty", "Custom"]
ActionCategory = Literal["Source", "Build", "Deploy", "Test", "Invoke", "Approval", "Compute"]
ActionProvider = Annotated[str, Field(pattern=r"^[0-9A-Za-z_-]{1,35}$")]
ActionVersion = Annotated[str, Field(pattern=r"^[0-9A-Za-z_-]{1,9}$")]
JobStatus = Literal["Created", "Queued", "Dispatched", "InProgress", "TimedOut", "Succeeded", "Failed"]
JobType = Literal["custom", "thirdParty"]


class EnvelopeModel(BaseModel):
    """Part of an EventBridge event: AWS adds fields over time, so extra keys are ignored. Built at first use: an
    acknowledger that gets only direct job events never builds the EventBridge models."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True, defer_build=True)


class ActionTypeId(EnvelopeModel):
    """An action type as CodePipeline names it (ActionTypeId)."""

    owner: ActionOwner
    category: ActionCategory
    provider: ActionProvider
    version: ActionVersion

    def __str__(self) -> str:
        """Owner/Category/Provider/Version: the order of the IAM action-type ARN and of ACTION_TYPES."""
        return f"{self.owner}/{self.category}/{self.provider}/{self.version}"

    def as_request(self) -> dict[str, str]:
        return {
            "owner": self.owner,
            "category": self.category,
            "provider": self.provider,
            "version": self.version,
        }


class ResultModel(BaseModel):
    """A result a function returns: camelCase JSON, None fields left out. Built at first use: a direct job's
    invocation builds its JobResult only, never the batch's, the poll's or the rejected event's."""

    model_config = ConfigDict(frozen=True, alias_generator=to_camel, populate_by_name=True, defer_build=True)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class QueryParam(BaseModel):
    """PollForJobs' queryParam: one queryable action-configuration property and the value to match."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: Annotated[str, Field(min_length=1, max_length=50)]
    value: Annotated[str, Field(pattern=r"^[a-zA-Z0-9_-]{1,50}$")]
