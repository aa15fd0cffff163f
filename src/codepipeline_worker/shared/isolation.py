"""Run a function in a forked child process that the parent can end: the time limit a thread cannot have.

A Python thread cannot be stopped from outside, so work that must be bounded runs in a child of the function's
process, in a process group of its own: at its time limit the parent kills the group (SIGKILL), which ends
whatever the work was doing (a hung socket, a busy loop, C code, processes it started). Lambda supports
`os.fork`; it has no /dev/shm, so the two sides talk over a socket pair (`multiprocessing.Pipe`), never through
`multiprocessing`'s queues or pools, which need shared memory.

The child talks to the parent in three kinds of message, each a pickled tuple:
- ("ask", request): the parent answers with `serve(request)` (the child waits for it); what `serve` does counts
  within the child's time limit;
- ("tell", note): the parent calls `serve(note)` and answers nothing;
- ("result", value): the child's return value; the child then exits.

What crosses the fork is a copy of the parent's memory: the child must not use a connection the parent also
uses (an SDK client's pooled connections). Anything that needs one is asked of the parent.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing import Pipe
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from collections.abc import Callable
    from multiprocessing.connection import Connection

# How long a child that sent its result may take to exit before it is killed (it only flushes and exits).
EXIT_GRACE_S = 5.0


def fork_available() -> bool:
    return hasattr(os, "fork")


class Channel:
    """The child's side of the pipe."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def ask(self, request: Any) -> Any:
        self._connection.send(("ask", request))
        return self._connection.recv()

    def tell(self, note: Any) -> None:
        self._connection.send(("tell", note))


@dataclass(frozen=True)
class Ended:
    """How the child ended: it returned `value`, it was killed at its time limit, or it died without a result
    (`status` says how: an exit code or a signal)."""

    how: Literal["returned", "timed_out", "died"]
    value: Any = None
    status: str | None = None


def run_in_child(
    target: Callable[[Channel], Any],
    limit_s: float | None,
    serve: Callable[[Any], Any] | None = None,
    delivered: Callable[[Any, Any], None] | None = None,
) -> Ended:
    """Run `target(channel)` in a forked child; return its result, or how it ended. `limit_s` None: no limit.
    `serve` answers the child's messages; an answer to an "ask" is computed in a thread of its own, bounded by
    the limit, and `delivered(request, answer)` is called here, in this thread, once it is sent. Whatever
    happens in the parent meanwhile (an exception, KeyboardInterrupt), the child's process group is killed and
    the child reaped before this returns or raises."""
    parent_end, child_end = Pipe(duplex=True)
    # Output buffered now would be written twice: once by the parent, once by the child's copy of the buffer.
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child: the frame that forks is not traced again in it
        parent_end.close()
        _child(target, child_end)
    child_end.close()
    with contextlib.suppress(OSError):  # the child does the same: whichever runs first sets the group
        os.setpgid(pid, pid)
    started = time.monotonic()
    reaped = False
    try:
        ended = _watch(parent_end, None if limit_s is None else started + limit_s, serve, delivered)
        if ended.how == "timed_out":
            _kill_group(pid)
            os.waitpid(pid, 0)
            reaped = True
            return ended
        status = _reap(pid, time.monotonic() + EXIT_GRACE_S)
        reaped = True
        return ended if ended.how == "returned" else Ended("died", status=status)
    finally:
        parent_end.close()
        _kill_group(pid)  # what the work started and left running ends with it
        if not reaped:
            os.waitpid(pid, 0)


def _child(target: Callable[[Channel], Any], connection: Connection) -> None:
    status = 0
    try:
        os.setpgid(0, 0)
        value = target(Channel(connection))
        connection.send(("result", value))
    except BaseException:  # noqa: BLE001 - the parent sees a child that died without a result
        status = 70  # EX_SOFTWARE
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(status)


def _watch(
    connection: Connection,
    deadline: float | None,
    serve: Callable[[Any], Any] | None,
    delivered: Callable[[Any, Any], None] | None,
) -> Ended:
    while True:
        wait = None if deadline is None else deadline - time.monotonic()
        if wait is not None and (wait <= 0 or not connection.poll(wait)):
            return Ended("timed_out")
        try:
            kind, payload = connection.recv()
        except EOFError:
            return Ended("died")
        if kind == "result":
            return Ended("returned", payload)
        if serve is None:
            answer = None
        elif kind == "ask":
            try:
                answer = within(serve, payload, deadline)
            except LimitReached:
                return Ended("timed_out")
        else:
            answer = serve(payload)
        if kind == "ask":
            connection.send(answer)
            if delivered is not None:
                delivered(payload, answer)


class LimitReached(Exception):
    """`within` reached its deadline before the call ended."""


def within(serve: Callable[[Any], Any], request: Any, deadline: float | None) -> Any:
    """`serve(request)`, bounded by `deadline` (time.monotonic()): what the parent does for the child (an SDK call)
    counts within the child's time limit. At the deadline LimitReached is raised, and the call is left to finish
    in its thread, its answer unused."""
    if deadline is None:
        return serve(request)
    answers: list[Any] = []
    errors: list[BaseException] = []

    def call() -> None:
        try:
            answers.append(serve(request))
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            errors.append(exc)

    thread = threading.Thread(target=call, name="isolation-serve", daemon=True)
    thread.start()
    thread.join(max(0.0, deadline - time.monotonic()))
    if thread.is_alive():
        raise LimitReached
    if errors:
        raise errors[0]
    return answers[0]


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _reap(pid: int, deadline: float) -> str:
    """Wait for the child to exit, killing it at `deadline`; describe how it exited."""
    done, status = _wait_for_exit(pid, deadline)
    if not done:
        _kill_group(pid)
        _, status = os.waitpid(pid, 0)
    return _describe(status)


def _wait_for_exit(pid: int, deadline: float) -> tuple[int, int]:
    """Reap the child once it exits, or give up at `deadline` (returning pid 0): woken by the exit itself where
    Linux offers a process file descriptor (Lambda does), else by polling."""
    if hasattr(os, "pidfd_open"):
        descriptor = os.pidfd_open(pid)
        try:
            select.select([descriptor], [], [], max(0.0, deadline - time.monotonic()))
        finally:
            os.close(descriptor)
        return os.waitpid(pid, os.WNOHANG)
    pause = 0.001  # pragma: no cover - without pidfd_open (macOS)
    while True:  # pragma: no cover
        done, status = os.waitpid(pid, os.WNOHANG)
        if done or time.monotonic() >= deadline:
            return done, status
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def _describe(status: int) -> str:
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"
