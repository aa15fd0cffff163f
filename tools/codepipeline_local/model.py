"""CodePipeline's API as botocore describes it: request checks and response shaping from the service model.

botocore's client checks little (types, required members, minimum lengths); the real service checks every
constraint in the model. This module walks the same model and checks them all, with the messages AWS gives, so
a request the real service would reject is rejected here too. Responses are checked against the output shapes,
so the endpoint cannot answer in a shape the real service would not.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import botocore.session

if TYPE_CHECKING:
    from botocore.model import OperationModel, ServiceModel, Shape

TARGET_PREFIX = "CodePipeline_20150709."


@cache
def service_model() -> ServiceModel:
    return botocore.session.get_session().get_service_model("codepipeline")


class ServiceError(Exception):
    """An error answer: HTTP status, `__type` code and message, as CodePipeline sends them."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass
class _Problems:
    constraint: list[str]
    serialization: list[str]


def operation(name: str) -> OperationModel:
    """An operation of the service's model (the server answers names the model lacks before asking)."""
    return service_model().operation_model(name)


def check_request(op: OperationModel, params: Any) -> None:
    """Raise the ServiceError the real service would answer for these parameters, if any."""
    if not isinstance(params, dict):
        raise ServiceError("SerializationException", "Start of list or scalar found where a structure was expected")
    problems = _Problems([], [])
    if op.input_shape is not None:
        _walk(op.input_shape, params, "", problems)
    if problems.serialization:
        raise ServiceError("SerializationException", problems.serialization[0])
    if problems.constraint:
        count = len(problems.constraint)
        noun = "error" if count == 1 else "errors"
        raise ServiceError(
            "ValidationException", f"{count} validation {noun} detected: " + "; ".join(problems.constraint)
        )


def shape_problems(shape_name: str, value: Any, path: str = "") -> list[str]:
    """What the service could not answer about this value as the named output shape: every problem, with the
    model's messages. Used on what the control API is given (seeded jobs, action types) before it is kept."""
    problems = _Problems([], [])
    _walk(service_model().shape_for(shape_name), value, path, problems, output=True)
    return problems.serialization + problems.constraint


def check_response(op: OperationModel, body: dict[str, Any]) -> dict[str, Any]:
    """Return body if it fits the operation's output shape; an endpoint bug raises AssertionError."""
    problems = _Problems([], [])
    if op.output_shape is not None:
        _walk(op.output_shape, body, "", problems, output=True)
    elif body:
        problems.serialization.append("the operation has no output")
    if problems.constraint or problems.serialization:
        raise AssertionError(f"{op.name} response does not fit the model: {problems}")
    return body


def _walk(shape: Shape, value: Any, path: str, problems: _Problems, *, output: bool = False) -> None:
    check = _CHECKS.get(shape.type_name)
    if check is not None:
        check(shape, value, path, problems, output)


def _structure(shape: Shape, value: Any, path: str, problems: _Problems, output: bool) -> None:
    if not isinstance(value, dict):
        problems.serialization.append(f"Expected structure at '{path or 'request'}'")
        return
    members = shape.members  # type: ignore[attr-defined]
    for name in shape.metadata.get("required", []):
        if value.get(name) is None:
            problems.constraint.append(
                f"Value null at '{_join(path, name)}' failed to satisfy constraint: Member must not be null"
            )
    for name, item in value.items():
        if name not in members:
            if output:  # the service never answers a member its model does not have
                problems.serialization.append(f"Unknown member '{_join(path, name)}'")
            continue  # the service ignores members it does not know in a request
        if item is not None:
            _walk(members[name], item, _join(path, name), problems, output=output)


def _list(shape: Shape, value: Any, path: str, problems: _Problems, output: bool) -> None:
    if not isinstance(value, list):
        problems.serialization.append(f"Expected list at '{path}'")
        return
    _bounds(shape, len(value), value, path, problems, what="Member must have length")
    for index, item in enumerate(value, start=1):
        _walk(shape.member, item, f"{path}.{index}", problems, output=output)  # type: ignore[attr-defined]


def _map(shape: Shape, value: Any, path: str, problems: _Problems, output: bool) -> None:
    if not isinstance(value, dict):
        problems.serialization.append(f"Expected map at '{path}'")
        return
    _bounds(shape, len(value), value, path, problems, what="Member must have length")
    for key, item in value.items():
        _walk(shape.key, key, f"{path}.key", problems, output=output)  # type: ignore[attr-defined]
        _walk(shape.value, item, f"{path}.{key}", problems, output=output)  # type: ignore[attr-defined]


def _string(shape: Shape, value: Any, path: str, problems: _Problems, output: bool) -> None:
    if not isinstance(value, str):
        problems.serialization.append(f"Expected string at '{path}'")
        return
    _bounds(shape, len(value), value, path, problems, what="Member must have length")
    pattern = shape.metadata.get("pattern")
    if pattern is not None and not _compiled(pattern).fullmatch(value):
        problems.constraint.append(_failed(value, path, f"Member must satisfy regular expression pattern: {pattern}"))
    enum = shape.enum  # type: ignore[attr-defined]
    if enum and value not in enum:
        problems.constraint.append(_failed(value, path, f"Member must satisfy enum value set: [{', '.join(enum)}]"))


def _number(shape: Shape, value: Any, path: str, problems: _Problems, output: bool) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        problems.serialization.append(f"Expected number at '{path}'")
        return
    _bounds(shape, value, value, path, problems, what="Member must have value")


def _scalar(expected: type | tuple[type, ...], name: str) -> _Check:
    def check(shape: Shape, value: Any, path: str, problems: _Problems, output: bool) -> None:
        if not isinstance(value, expected) or (isinstance(value, bool) and expected is not bool):
            problems.serialization.append(f"Expected {name} at '{path}'")

    return check


_Check = Callable[["Shape", Any, str, _Problems, bool], None]
_CHECKS: dict[str, _Check] = {
    "structure": _structure,
    "list": _list,
    "map": _map,
    "string": _string,
    "integer": _number,
    "long": _number,
    "boolean": _scalar(bool, "boolean"),
    "timestamp": _scalar((int, float), "timestamp"),
    "blob": _scalar((str, bytes), "blob"),
}


def _bounds(shape: Shape, size: int, value: Any, path: str, problems: _Problems, *, what: str) -> None:
    meta = shape.metadata
    if "min" in meta and size < meta["min"]:
        problems.constraint.append(_failed(value, path, f"{what} greater than or equal to {meta['min']}"))
    if "max" in meta and size > meta["max"]:
        problems.constraint.append(_failed(value, path, f"{what} less than or equal to {meta['max']}"))


def _failed(value: Any, path: str, constraint: str) -> str:
    # Like AWS, the message quotes the rejected value: a worker must never pass such a message on.
    shown = value if isinstance(value, str | int) else "[...]"
    return f"Value '{shown}' at '{path}' failed to satisfy constraint: {constraint}"


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)
