"""The partner-token store of one execution environment, either function's, checked at cold start."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .adapter import ClientTokenStore, create_client_token_store
from .observability import logger

if TYPE_CHECKING:
    from .config import CommonSettings


def checked_token_store(settings: CommonSettings) -> ClientTokenStore | None:
    """The token store with its secret read at cold start: a configuration error fails the cold start; a passing
    fault is logged, and partner jobs read it again."""
    tokens = create_client_token_store(settings)
    if tokens is not None:
        fault = tokens.check()
        if fault is not None:
            logger.warning("client-token secret not readable at cold start; partner jobs will retry", error=fault)
    return tokens
