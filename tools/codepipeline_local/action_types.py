"""Action types as CodePipeline keeps them: configuration properties (at most one queryable), settings, artifact
counts, and the operations that manage them (CreateCustomActionType, DeleteCustomActionType, ListActionTypes,
GetActionType).

A type is *declared* when CreateCustomActionType or the control API defined it, and only *implied* when a seeded
job named it: an implied type has no properties, so its jobs' configuration is not checked against any.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from .model import ServiceError, shape_problems

ActionTypeKey = tuple[str, str, str, str]  # owner, category, provider, version
OPEN_ARTIFACTS = {"minimumCount": 0, "maximumCount": 5}  # an implied type's: what ArtifactDetails allows
# The user guide's rule for the one queryable property's values (the API takes up to 50 characters in a poll).
QUERYABLE_VALUE_MAX = 20
LIST_PAGE_SIZE = 50


def action_type_key(value: str | dict[str, str] | ActionTypeKey) -> ActionTypeKey:
    """Owner/Category/Provider/Version, CodePipeline's ActionTypeId dict, or a key already."""
    if isinstance(value, tuple):
        return value
    if isinstance(value, str):
        parts = value.split("/")
        if len(parts) != 4:
            raise ValueError(f"action type {value!r} is not Owner/Category/Provider/Version")
        return (parts[0], parts[1], parts[2], parts[3])
    return (value["owner"], value["category"], value["provider"], value["version"])


def action_type_name(key: ActionTypeKey) -> str:
    return "/".join(key)


def action_type_id(key: ActionTypeKey) -> dict[str, str]:
    return {"owner": key[0], "category": key[1], "provider": key[2], "version": key[3]}


def _refuse(problems: list[str]) -> None:
    if problems:
        raise ValueError("; ".join(problems))


@dataclass
class ActionType:
    key: ActionTypeKey
    properties: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)
    input_artifacts: dict[str, int] = field(default_factory=lambda: dict(OPEN_ARTIFACTS))
    output_artifacts: dict[str, int] = field(default_factory=lambda: dict(OPEN_ARTIFACTS))
    tags: list[dict[str, str]] = field(default_factory=list)
    timeout_s: float | None = None  # this type's job timeout; None: the endpoint's action timeout
    declared: bool = False

    def __post_init__(self) -> None:
        """Refuse what CodePipeline would: the model's constraints, then the user guide's rules."""
        problems = shape_problems("ActionTypeId", action_type_id(self.key), "actionType")
        problems += shape_problems("ActionConfigurationPropertyList", self.properties, "configurationProperties")
        problems += shape_problems("ActionTypeSettings", self.settings, "settings")
        problems += shape_problems("ArtifactDetails", self.input_artifacts, "inputArtifactDetails")
        problems += shape_problems("ArtifactDetails", self.output_artifacts, "outputArtifactDetails")
        problems += shape_problems("TagList", self.tags, "tags")
        _refuse(problems)
        names = [p["name"] for p in self.properties]
        if len(set(names)) != len(names):
            problems.append("configuration property names must be unique")
        queryable = [p for p in self.properties if p.get("queryable")]
        if len(queryable) > 1:
            problems.append("an action type can have at most one queryable configuration property")
        if any(not p["required"] or p["secret"] for p in queryable):
            problems.append("a queryable configuration property must be required and not secret")
        for name, details in (("input", self.input_artifacts), ("output", self.output_artifacts)):
            if details["minimumCount"] > details["maximumCount"]:
                problems.append(f"{name}ArtifactDetails: minimumCount is greater than maximumCount")
        if self.timeout_s is not None and not 60 <= self.timeout_s <= 43200:
            problems.append("the job timeout of an action type is 60 to 43200 seconds")
        _refuse(problems)

    @property
    def name(self) -> str:
        return action_type_name(self.key)

    @property
    def queryable(self) -> str | None:
        """The configuration property PollForJobs' queryParam must name, if the type has one."""
        return next((p["name"] for p in self.properties if p.get("queryable")), None)

    def configuration_problems(self, configuration: dict[str, str]) -> list[str]:
        """Why a pipeline could not declare an action of this type with this configuration."""
        if not self.declared:
            return []
        known = {p["name"]: p for p in self.properties}
        problems = [
            f"configuration key {key!r} is not a configuration property of {self.name}"
            for key in configuration
            if key not in known
        ]
        problems += [
            f"configuration property {name!r} of {self.name} is required"
            for name, prop in known.items()
            if prop["required"] and name not in configuration
        ]
        value = configuration.get(self.queryable or "")
        if value is not None and not (
            len(value) <= QUERYABLE_VALUE_MAX and value.replace("_", "").replace("-", "").isalnum() and value.isascii()
        ):
            problems.append(
                f"the queryable property {self.queryable!r} takes up to {QUERYABLE_VALUE_MAX} letters, digits, "
                "underscores and hyphens"
            )
        return problems

    def artifact_problems(self, inputs: int, outputs: int) -> list[str]:
        problems = []
        counted = (("input", inputs, self.input_artifacts), ("output", outputs, self.output_artifacts))
        for name, count, details in counted:
            if not details["minimumCount"] <= count <= details["maximumCount"]:
                problems.append(
                    f"{self.name} takes {details['minimumCount']} to {details['maximumCount']} {name} artifacts, "
                    f"not {count}"
                )
        return problems

    def default_artifact_count(self, kind: str) -> int:
        """How many artifacts of this kind a job of this type has by default: one if it may have any."""
        details = self.input_artifacts if kind == "input" else self.output_artifacts
        return max(details["minimumCount"], min(1, details["maximumCount"]))

    def shape(self) -> dict[str, Any]:
        """The ActionType shape: what CreateCustomActionType and ListActionTypes answer."""
        answer: dict[str, Any] = {
            "id": action_type_id(self.key),
            "actionConfigurationProperties": [dict(p) for p in self.properties],
            "inputArtifactDetails": dict(self.input_artifacts),
            "outputArtifactDetails": dict(self.output_artifacts),
        }
        if self.settings:
            answer["settings"] = dict(self.settings)
        return answer

    def declaration(self, account_id: str, timeout_s: float) -> dict[str, Any]:
        """The ActionTypeDeclaration shape GetActionType answers: a job-worker executor polled from one account."""
        declaration: dict[str, Any] = {
            "executor": {
                "configuration": {"jobWorkerExecutorConfiguration": {"pollingAccounts": [account_id]}},
                "type": "JobWorker",
                "jobTimeout": int(min(max(timeout_s, 60), 43200)),
            },
            "id": action_type_id(self.key),
            "inputArtifactDetails": dict(self.input_artifacts),
            "outputArtifactDetails": dict(self.output_artifacts),
            "properties": [
                {
                    "name": p["name"],
                    "optional": not p["required"],
                    "key": p["key"],
                    "noEcho": p["secret"],
                    "queryable": bool(p.get("queryable")),
                    **({"description": p["description"]} if "description" in p else {}),
                }
                for p in self.properties
            ],
        }
        urls = {
            "configurationUrl": self.settings.get("thirdPartyConfigurationUrl"),
            **{name: self.settings.get(name) for name in ("entityUrlTemplate", "executionUrlTemplate")},
            "revisionUrlTemplate": self.settings.get("revisionUrlTemplate"),
        }
        if any(urls.values()):
            declaration["urls"] = {name: url for name, url in urls.items() if url}
        return declaration


def definition_from(request: dict[str, Any], key: ActionTypeKey, *, declared: bool = True) -> ActionType:
    """An ActionType from CreateCustomActionType's parameters (or the control API's, which add timeoutSeconds)."""
    try:
        return ActionType(
            key=key,
            properties=[dict(p) for p in request.get("configurationProperties") or []],
            settings=dict(request.get("settings") or {}),
            input_artifacts=dict(request.get("inputArtifactDetails") or OPEN_ARTIFACTS),
            output_artifacts=dict(request.get("outputArtifactDetails") or OPEN_ARTIFACTS),
            tags=[dict(t) for t in request.get("tags") or []],
            timeout_s=request.get("timeoutSeconds"),
            declared=declared,
        )
    except (TypeError, AttributeError) as error:
        raise ValueError(f"not an action type definition: {error}") from None


class ActionTypes:
    """The action types one endpoint knows. Not thread-safe on its own: the job store's lock covers it."""

    def __init__(self) -> None:
        self._types: dict[ActionTypeKey, ActionType] = {}
        self._deleted: set[ActionTypeKey] = set()

    def get(self, key: ActionTypeKey) -> ActionType | None:
        return self._types.get(key)

    def usable(self, key: ActionTypeKey) -> ActionType:
        """The type a new job of this key would have: the declared one, or an implied one not yet kept."""
        if key in self._deleted:
            raise ValueError(f"action type {action_type_name(key)} was deleted")
        return self._types.get(key) or ActionType(key)

    def implied(self, key: ActionTypeKey) -> ActionType:
        """The type a seeded job names: the declared one, or a new implied one."""
        if key in self._deleted:
            raise ValueError(f"action type {action_type_name(key)} was deleted")
        known = self._types.get(key)
        if known is None:
            known = self._types[key] = ActionType(key)
        return known

    def define(self, definition: ActionType) -> ActionType:
        """Declare a type through the control API: any owner, replacing an earlier definition."""
        if definition.key in self._deleted:
            raise ValueError(f"action type {definition.name} was deleted: a new one needs a new version")
        self._types[definition.key] = definition
        return definition

    def clear(self) -> None:
        self._types.clear()
        self._deleted.clear()

    # -- the operations (parameters already checked against the model) ----------------------------------

    def create_custom_action_type(self, params: dict[str, Any]) -> tuple[ActionType, dict[str, Any]]:
        key: ActionTypeKey = ("Custom", params["category"], params["provider"], params["version"])
        if key in self._deleted:
            raise ServiceError(
                "ValidationException",
                f"Action type {action_type_name(key)} was deleted; a custom action type is created again with a "
                "version that was never used",
            )
        known = self._types.get(key)
        if known is not None and known.declared:
            raise ServiceError("ValidationException", f"Action type {action_type_name(key)} already exists")
        try:
            definition = definition_from({k: v for k, v in params.items() if k != "timeoutSeconds"}, key)
        except ValueError as error:
            raise ServiceError("ValidationException", str(error)) from None
        self._types[key] = definition
        answer: dict[str, Any] = {"actionType": definition.shape()}
        if definition.tags:
            answer["tags"] = [dict(t) for t in definition.tags]
        return definition, answer

    def delete_custom_action_type(self, params: dict[str, Any]) -> dict[str, Any]:
        key: ActionTypeKey = ("Custom", params["category"], params["provider"], params["version"])
        if self._types.pop(key, None) is None:
            raise ServiceError("ValidationException", f"Action type {action_type_name(key)} does not exist")
        self._deleted.add(key)
        return {}

    def list_action_types(self, params: dict[str, Any]) -> dict[str, Any]:
        owner = params.get("actionOwnerFilter")
        listed = sorted(k for k in self._types if owner is None or k[0] == owner)
        start = _page_start(params.get("nextToken"), owner)
        page = listed[start : start + LIST_PAGE_SIZE]
        answer: dict[str, Any] = {"actionTypes": [self._types[k].shape() for k in page]}
        if start + LIST_PAGE_SIZE < len(listed):
            answer["nextToken"] = _page_token(start + LIST_PAGE_SIZE, owner)
        return answer

    def get_action_type(self, params: dict[str, Any], account_id: str, timeout_s: float) -> dict[str, Any]:
        key: ActionTypeKey = (params["owner"], params["category"], params["provider"], params["version"])
        known = self._types.get(key)
        if known is None:
            raise ServiceError("ActionTypeNotFoundException", f"Action type {action_type_name(key)} not found")
        return {"actionType": known.declaration(account_id, known.timeout_s or timeout_s)}


def _page_token(start: int, owner: str | None) -> str:
    return base64.urlsafe_b64encode(json.dumps({"start": start, "owner": owner}).encode()).decode()


def _page_start(token: str | None, owner: str | None) -> int:
    if token is None:
        return 0
    try:
        page = json.loads(base64.urlsafe_b64decode(token.encode()))
        if page["owner"] == owner and isinstance(page["start"], int) and page["start"] >= 0:
            return int(page["start"])
    except (ValueError, KeyError, TypeError):
        pass
    raise ServiceError("InvalidNextTokenException", "The next token was specified in an invalid format")
