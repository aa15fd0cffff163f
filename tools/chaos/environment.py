"""An execution environment of one function, from the harness's side: a child process (chaos.child) that can be
invoked, killed with SIGKILL at a chosen moment of an invocation, as Lambda ends one at its timeout, and
replaced by a fresh one (a cold start)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path


@dataclass(frozen=True)
class Reply:
    """How an invocation ended: its result, a function error, or the process killed before it answered."""

    invocation: str
    result: Any = None
    error_type: str | None = None
    error_message: str | None = None
    killed: bool = False
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return self.killed or self.error_type is not None


class Environment:
    """One child process at a time; a killed one is replaced before the next invocation."""

    def __init__(self, kind: str, env: dict[str, str], log: Path) -> None:
        self.kind = kind
        self._env = env
        self._log = log
        self._process: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()
        self._busy = False
        self.cold_starts = 0
        self.kills = 0

    def _start(self) -> subprocess.Popen[str]:
        log: IO[str] = self._log.open("a", encoding="utf-8")
        process = subprocess.Popen(  # noqa: S603 - this interpreter and the harness's own module
            [sys.executable, "-m", "chaos.child", self.kind],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            env=self._env,
            text=True,
            bufsize=1,
        )
        log.close()
        ready = _pipe(process.stdout).readline()
        if not ready:
            raise RuntimeError(f"the {self.kind} environment did not start: see {self._log}")
        self.cold_starts += 1
        return process

    def invoke(self, invocation: str, event: Any, remaining_ms: int, kill_after_s: float | None) -> Reply:
        """Invoke once. `kill_after_s`: SIGKILL the process that long into the invocation (if it has not
        answered by then). Lambda's timeout kills it too."""
        if self._process is not None and self._process.poll() is not None:
            _close_pipes(self._process)
            self._process = None
        if self._process is None:
            self._process = self._start()
        process = self._process
        stdin, stdout = _pipe(process.stdin), _pipe(process.stdout)
        started = time.monotonic()
        request = json.dumps({"invocation": invocation, "event": event, "remainingMs": remaining_ms}) + "\n"
        with self._lock:
            self._busy = True
        timeout = remaining_ms / 1000 + 0.5  # Lambda ends an invocation at its timeout
        timer = threading.Timer(timeout if kill_after_s is None else min(kill_after_s, timeout), self._kill, (process,))
        timer.daemon = True
        try:
            stdin.write(request)
            stdin.flush()
        except BrokenPipeError:  # it died between invocations: the invocation is lost as a killed one would be
            line = ""
        else:
            timer.start()
            line = stdout.readline()
        with self._lock:
            self._busy = False
        timer.cancel()
        seconds = time.monotonic() - started
        if not line:  # killed before it answered
            process.wait()
            _close_pipes(process)
            self.kills += 1
            return Reply(invocation, killed=True, seconds=seconds)
        answer = json.loads(line)
        return Reply(
            invocation,
            result=answer.get("result"),
            error_type=answer.get("errorType"),
            error_message=answer.get("errorMessage"),
            seconds=seconds,
        )

    def _kill(self, process: subprocess.Popen[str]) -> None:
        with self._lock:
            if self._busy:  # a process whose invocation has answered is never killed: Lambda freezes it
                process.kill()

    def close(self) -> None:
        if self._process is None:
            return
        if self._process.poll() is None:
            _pipe(self._process.stdin).close()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        _close_pipes(self._process)


def _close_pipes(process: subprocess.Popen[str]) -> None:
    """A process that has ended: its pipes closed now, not left to the garbage collector."""
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


def _pipe(stream: IO[str] | None) -> IO[str]:
    if stream is None:
        raise RuntimeError("the environment's pipes are not open")
    return stream
