"""The configuration properties an action declares beside its work function.

A work function's module lists what a pipeline's action configuration holds for it:

    CONFIGURATION_PROPERTIES = [
        ConfigurationProperty(name="Target", description="What to deploy", required=True, example="staging"),
    ]

The stack registers them with the custom action type (CreateCustomActionType's configurationProperties, when
RegisterCustomActionType is true), so the pipeline console asks for them and CodePipeline checks that the
required ones are set. `example` is for local runs only: `make run` and `make invoke` seed their jobs with it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import ConfigDict, Field

from ..shared.errors import ConfigurationError

if TYPE_CHECKING:
    from pydantic import TypeAdapter

DECLARATION = "CONFIGURATION_PROPERTIES"
# CodePipeline's limit on an action type's configuration properties.
MAX_PROPERTIES = 10


@dataclass(frozen=True, kw_only=True)
class ConfigurationProperty:
    """One property of the action's configuration, as CreateCustomActionType takes it. A plain dataclass, so that
    declaring properties costs the work function's cold start nothing; `validate_properties` holds them to
    CodePipeline's rules (`make run`, `make invoke` and the stack's registration do)."""

    __pydantic_config__: ClassVar[ConfigDict] = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=50)]
    description: Annotated[str, Field(min_length=1, max_length=160)] | None = None
    required: bool = False
    # A key property identifies the action's configuration (CodePipeline shows it in the console).
    key: bool = False
    # Masked in the console and left out of GetPipeline answers. It still reaches the job: treat it as a secret.
    secret: bool = False
    # PollForJobs' queryParam may filter on it: at most one per action type, required and not secret.
    queryable: bool = False
    type: Literal["String", "Number", "Boolean"] = "String"
    # For local runs only: `make run` and `make invoke` give their jobs this value.
    example: Annotated[str, Field(max_length=1000)] | None = None

    def as_request(self) -> dict[str, Any]:
        """The property as CreateCustomActionType's `configurationProperties` item (`example` stays local)."""
        request: dict[str, Any] = {
            "name": self.name,
            "required": self.required,
            "key": self.key,
            "secret": self.secret,
            "type": self.type,
        }
        if self.queryable:
            request["queryable"] = True
        if self.description is not None:
            request["description"] = self.description
        return request


def _checked(properties: tuple[ConfigurationProperty, ...]) -> tuple[ConfigurationProperty, ...]:
    for position, prop in enumerate(properties, start=1):
        if prop.queryable and (prop.secret or not prop.required):
            raise ValueError(f"{position}: a queryable property must be required and not secret")
    names = [p.name for p in properties]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"names listed more than once: {', '.join(repeated)}")
    if len(properties) > MAX_PROPERTIES:
        raise ValueError(f"{len(properties)} properties; CodePipeline allows {MAX_PROPERTIES} per action type")
    if sum(p.queryable for p in properties) > 1:
        raise ValueError("more than one queryable property; CodePipeline allows one per action type")
    return properties


@cache
def _adapter() -> TypeAdapter[tuple[ConfigurationProperty, ...]]:
    from pydantic import TypeAdapter  # noqa: PLC0415 - only where properties are checked, never at cold start

    return TypeAdapter(tuple[ConfigurationProperty, ...])


def validate_properties(value: Any) -> tuple[ConfigurationProperty, ...]:
    """A list of ConfigurationProperty (or of dicts with its fields), checked against CodePipeline's rules.
    Raises ValueError naming what is wrong."""
    if isinstance(value, list | tuple):  # each field checked again, however the property was built
        value = [vars(p) if isinstance(p, ConfigurationProperty) else p for p in value]
    from pydantic import ValidationError  # noqa: PLC0415 - as above

    try:
        properties = _adapter().validate_python(value)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p + 1) if isinstance(p, int) else p for p in e['loc']) or 'value'}: "
            f"{e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors(include_url=False, include_input=False, include_context=False)
        )
        raise ValueError(problems) from None
    return _checked(properties)


def declared_properties(reference: str) -> tuple[ConfigurationProperty, ...]:
    """The properties `package.module:function`'s module declares in CONFIGURATION_PROPERTIES (none when it
    declares nothing). Raises ConfigurationError naming the module when it cannot be imported or the
    declaration breaks CodePipeline's rules."""
    module_name = reference.partition(":")[0]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        problem = f"module {module_name} cannot be imported ({type(exc).__name__}: {exc})"
    else:
        try:
            return validate_properties(getattr(module, DECLARATION, ()))
        except ValueError as exc:
            problem = f"{module_name}.{DECLARATION}: {exc}"
    raise ConfigurationError(f"invalid configuration: WORK_FUNCTION: {problem}")


def example_configuration(properties: tuple[ConfigurationProperty, ...]) -> dict[str, str]:
    """The action configuration local runs give their jobs: each property's example."""
    return {p.name: p.example for p in properties if p.example is not None}
