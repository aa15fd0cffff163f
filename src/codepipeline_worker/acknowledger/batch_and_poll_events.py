"""The acknowledger's events other than a single job's: batches of job events, EventBridge schedules and action
state changes. `events.parse_event` imports this module at the first such event: a direct job's execution
environment never defines these models (each is built at its first use too, as every event model is).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Discriminator, Field, Tag

from ..shared.models import AccountId, ActionTypeId, EnvelopeModel
from .events import CustomJobEvent, DirectEvent, ThirdPartyJobEvent, job_kind

JobEvent = Annotated[
    Annotated[CustomJobEvent, Tag("custom")] | Annotated[ThirdPartyJobEvent, Tag("thirdParty")],
    Discriminator(
        job_kind,
        custom_error_type="invalid_job_type",
        custom_error_message="jobType must be 'custom' or 'thirdParty'",
    ),
]


class JobBatchEvent(DirectEvent):
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


EVENT_MODELS: dict[str, type[JobBatchEvent | ScheduledEvent | ActionStateChangeEvent]] = {
    "batch": JobBatchEvent,
    "scheduled": ScheduledEvent,
    "actionStateChange": ActionStateChangeEvent,
}
