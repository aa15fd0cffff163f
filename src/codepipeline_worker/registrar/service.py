"""Register the stack's custom action type with the properties its work function declares; remove it with the stack.

The resource's physical id is the action type, Custom/Category/Provider/Version. CodePipeline never changes a
registered version: a new version (ActionTypes) registers a new action type, and CloudFormation then deletes the
old one. An update that would give the same version other properties fails, naming the way out.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..shared.errors import ConfigurationError
from ..shared.models import ActionTypeId
from ..shared.observability import logger
from ..work.properties import ConfigurationProperty, declared_properties, validate_properties

if TYPE_CHECKING:
    from ..shared.adapter import ActionTypeRegistry

# What the stack's action type accepts, as the template registered it before: 0 to 5 of each.
MAX_ARTIFACTS = 5
# The physical id of a resource whose Create failed: its Delete has nothing to remove.
NOT_REGISTERED = "not-registered"
ENTRY_POINT = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"


class RegistrationError(Exception):
    """The action type cannot be registered as asked; the message is CloudFormation's reason, one line."""


class ActionTypeResource(BaseModel):
    """The resource's properties in template.yaml (CloudFormation passes every value as text)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    action_type: Annotated[str, Field(min_length=1, max_length=200)] = Field(alias="ActionType")
    work_entry_point: Annotated[str, Field(pattern=ENTRY_POINT)] = Field(alias="WorkEntryPoint")
    poll_query_param: str = Field("", alias="PollQueryParam")

    def target(self) -> ActionTypeId:
        return parse_action_type(self.action_type)


def parse_action_type(text: str) -> ActionTypeId:
    """Custom/Category/Provider/Version, the first entry of ActionTypes: only owner Custom can be registered."""
    parts = text.strip().split("/")
    problem = "must be Custom/Category/Provider/Version"
    if len(parts) == 4:
        try:
            target = ActionTypeId.model_validate(
                dict(zip(("owner", "category", "provider", "version"), parts, strict=True))
            )
        except ValidationError:
            pass
        else:
            if target.owner == "Custom":
                return target
            problem = f"owner {target.owner} cannot be registered: only Custom action types are yours to register"
    raise RegistrationError(f"ActionTypes: the first action type ({text}) {problem}")


def requested_properties(resource: ActionTypeResource) -> list[dict[str, Any]]:
    """The work function's declared properties, with PollQueryParam's key as the queryable one."""
    try:
        declared = list(declared_properties(resource.work_entry_point))
    except ConfigurationError as exc:
        problem = str(exc).removeprefix("invalid configuration: WORK_FUNCTION: ")
        raise RegistrationError(f"WorkEntryPoint: {problem}") from None
    key = resource.poll_query_param.partition("=")[0].strip()
    if key:
        names = [p.name for p in declared]
        if key in names:
            at = names.index(key)
            declared[at] = replace(declared[at], queryable=True)
        else:
            declared.append(
                ConfigurationProperty(
                    name=key,
                    description="The property PollForJobs filters on (PollQueryParam)",
                    required=True,
                    key=True,
                    queryable=True,
                )
            )
    try:
        checked = validate_properties(declared)
    except ValueError as exc:
        raise RegistrationError(f"WorkEntryPoint {resource.work_entry_point} with PollQueryParam: {exc}") from None
    return [p.as_request() for p in checked]


def _normal(properties: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    """Properties in a form that compares what was registered with what is asked, whatever defaults the
    answer leaves out."""
    return {
        (
            p["name"],
            bool(p.get("required")),
            bool(p.get("key")),
            bool(p.get("secret")),
            bool(p.get("queryable")),
            p.get("description"),
            p.get("type", "String"),
        )
        for p in properties
    }


class Registrar:
    """Create, Update and Delete of the stack's custom action type."""

    def __init__(self, registry: ActionTypeRegistry) -> None:
        self._registry = registry

    def create(self, resource: ActionTypeResource) -> str:
        """Register the action type, on Create and on Update: one already registered with the same properties
        is kept (an update that changed something else), one registered with other properties is refused. An
        update to a new action type registers it, and CloudFormation deletes the old one by its physical id."""
        target = resource.target()
        properties = requested_properties(resource)
        registered = self._registry.registered(target)
        if registered is None:
            self._registry.create(target, properties, MAX_ARTIFACTS)
            logger.info("custom action type registered", action_type=str(target), properties=len(properties))
        elif _normal(registered) != _normal(properties):
            raise self._changed(target)
        else:
            logger.info("custom action type already registered as asked", action_type=str(target))
        return str(target)

    def delete(self, physical_id: str) -> None:
        """Remove the action type this resource registered; nothing when it registered none."""
        try:
            target = parse_action_type(physical_id)
        except RegistrationError:
            logger.info("nothing registered to delete", physical_id=physical_id)
            return
        if self._registry.registered(target) is None:
            logger.info("custom action type already gone", action_type=str(target))
            return
        self._registry.delete(target)
        logger.info("custom action type deleted", action_type=str(target))

    @staticmethod
    def _changed(target: ActionTypeId) -> RegistrationError:
        bumped = f"{target.owner}/{target.category}/{target.provider}/{_next_version(target.version)}"
        return RegistrationError(
            f"{target} is registered with other configuration properties, and CodePipeline never changes a "
            f"registered version: give ActionTypes a new version (for example {bumped})"
        )


def _next_version(version: str) -> str:
    following = str(int(version) + 1) if version.isdigit() else "2"
    return following if len(following) <= 9 else "2"
