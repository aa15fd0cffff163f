"""The user's work function, named by WORK_FUNCTION (`package.module:function`): loaded by the work function at
its cold start, and checked by the dead-letter handler, which names a broken one in the failures it reports."""

from __future__ import annotations

import importlib
import inspect
from typing import TYPE_CHECKING

from .errors import ConfigurationError
from .isolation import fork_available, run_in_child

if TYPE_CHECKING:
    from ..work.job import WorkFunction
    from .isolation import Channel

# How long importing the work function's module may take when the dead-letter handler checks it.
CHECK_TIME_LIMIT_S = 30.0


def load_work_function(reference: str) -> WorkFunction:
    """Import `package.module:function`. A module that cannot be imported (whatever it raises, SystemExit
    included), a missing name, or something that cannot be called with one argument (the job) is a
    ConfigurationError that names the variable and the problem, never the exception's message."""
    module_name, _, name = reference.partition(":")
    problem: str | None
    try:
        module = importlib.import_module(module_name)
    except BaseException as exc:  # noqa: BLE001 - a module's import may raise anything; the cold start says what
        problem = f"module {module_name} cannot be imported ({type(exc).__name__})"
    else:
        problem = _unusable(module, module_name, name)
        if problem is None:
            function: WorkFunction = getattr(module, name)
            return function
    raise ConfigurationError(f"invalid configuration: WORK_FUNCTION: {problem}")


def _unusable(module: object, module_name: str, name: str) -> str | None:
    function = getattr(module, name, None)
    if function is None:
        return f"{module_name} has no function {name}"
    if not callable(function):
        return f"{module_name}.{name} is not a function"
    try:
        inspect.signature(function).bind(None)
    except TypeError:
        return f"{module_name}.{name} must take one argument, the job"
    except ValueError:  # no signature to read (some built-ins): calling it will tell
        pass
    return None


def work_function_problem(reference: str) -> str | None:
    """What is wrong with WORK_FUNCTION, or None when it loads. The import runs in a child process with a time
    limit, so that a module that hangs, exits or crashes at import cannot take the caller down with it."""
    if not fork_available():  # pragma: no cover - Lambda and every platform the tests run on have fork
        return _load_problem(reference)
    ended = run_in_child(lambda _channel: _load_problem(reference), CHECK_TIME_LIMIT_S)
    if ended.how == "returned":
        problem: str | None = ended.value
        return problem
    if ended.how == "timed_out":
        return f"WORK_FUNCTION: importing {reference} took more than {CHECK_TIME_LIMIT_S:g} s"
    return f"WORK_FUNCTION: importing {reference} ended its process ({ended.status})"


def _load_problem(reference: str, _channel: Channel | None = None) -> str | None:
    try:
        load_work_function(reference)
    except ConfigurationError as exc:
        return str(exc).removeprefix("invalid configuration: ")
    return None
