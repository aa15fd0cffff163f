"""The dead-letter handler's configuration: environment variables, validated once at cold start."""

from __future__ import annotations

from functools import cache

from pydantic import Field

from ..shared.config import CommonSettings, load_config
from ..work.config import DEFAULT_WORK_FUNCTION, WORK_FUNCTION_PATTERN


class DeadLetterSettings(CommonSettings):
    """What the dead-letter handler reads: the work function it stands behind (to name a broken one in the
    failures it reports), the partner tokens and the SDK's attempts, as the work function has them."""

    work_function: str = Field(DEFAULT_WORK_FUNCTION, alias="WORK_FUNCTION", pattern=WORK_FUNCTION_PATTERN)


@cache
def get_dead_letter_settings() -> DeadLetterSettings:
    """The dead-letter handler's settings, from os.environ at cold start."""
    return load_config(DeadLetterSettings, None)
