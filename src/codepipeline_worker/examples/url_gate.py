"""The example action: a deployment gate that waits until a URL answers as expected.

Action configuration:
- `Url` (required): http:// or https:// address to check, e.g. the health page of what the pipeline deployed.
  A `user:password@` in it is sent as HTTP Basic authentication (to that host only, never across a redirect
  to another one) and shown nowhere.
- `ExpectedStatus` (default 200): the HTTP status that passes.
- `MaxChecks` (default 10): how many rounds to try before the job fails.

Each round checks once: one GET, with at most 5 redirects, all of it (name lookup, connection, TLS, redirects,
the answer's status line and headers) within TIMEOUT_S seconds in total; the body is not read. If the answer is
not yet the expected one, it returns StillRunning with the round count in the continuation token, so
CodePipeline creates a follow-up job and the check runs again at the next claim (the schedule spaces the
rounds). It succeeds with output variables `StatusCode` and `Checks` (custom actions only), or fails after
MaxChecks rounds, or at once on a configuration error. Messages show the URL without its user information and
query string, which may hold secrets.

An address that is not public (loopback, link-local such as the instance metadata service, private, shared or
reserved ranges), whether the URL names it or a redirect leads to it, is refused before any connection: the
action's configuration must not reach into the worker's own network. Set URL_GATE_ALLOW_PRIVATE_ADDRESSES=true
on the work function to check such addresses (the local runs do, for their 127.0.0.1 pages).
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import ipaddress
import json
import os
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, unquote, urljoin, urlsplit

from ..work import ConfigurationProperty, Failure, Job, Outcome, StillRunning, Success

if TYPE_CHECKING:
    from collections.abc import Iterator

TIMEOUT_S = 5.0
MAX_REDIRECTS = 5
ALLOW_PRIVATE_VARIABLE = "URL_GATE_ALLOW_PRIVATE_ADDRESSES"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
USER_AGENT = "codepipeline-job-worker-example"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}

# Registered with the custom action type by the stack (RegisterCustomActionType=true).
CONFIGURATION_PROPERTIES = [
    ConfigurationProperty(
        name="Url",
        description="The http:// or https:// address to check",
        required=True,
        example="https://example.com/health",
    ),
    ConfigurationProperty(
        name="ExpectedStatus", description="The HTTP status that passes (default 200)", type="Number"
    ),
    ConfigurationProperty(
        name="MaxChecks", description="How many checks, one per claim, before the job fails (default 10)", type="Number"
    ),
]


def check_url(job: Job) -> Outcome:
    gate = _gate(job.configuration)
    if isinstance(gate, Failure):
        return gate
    answer = _check(gate.url, allow_private=gate.allow_private)
    if answer.refused is not None:
        return Failure(type="ConfigurationError", message=f"{gate.shown} {answer.refused}")
    checks = _checks_so_far(job.continuation_token) + 1
    if answer.status == gate.expected:
        return Success(
            summary=f"{gate.shown} answered {answer.status} at check {checks}",
            # Output variables exist for custom actions only.
            output_variables={"StatusCode": str(answer.status), "Checks": str(checks)}
            if job.type == "custom"
            else None,
        )
    if checks >= gate.max_checks:
        rounds = "1 check" if checks == 1 else f"{checks} checks"
        return Failure(message=f"{gate.shown} {answer.said} ({gate.expected} expected) after {rounds}")
    return StillRunning(
        continuation_token=json.dumps({"checks": checks}),
        percent_complete=100 * checks // gate.max_checks,
        summary=f"{gate.shown} {answer.said} ({gate.expected} expected); check {checks} of {gate.max_checks}",
    )


@dataclass(frozen=True)
class _Gate:
    """The action's configuration, checked: the URL, how it is shown, what passes, how many rounds."""

    url: str
    shown: str
    expected: int
    max_checks: int
    allow_private: bool


def _gate(config: dict[str, str]) -> _Gate | Failure:
    url = config.get("Url", "")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return Failure(type="ConfigurationError", message="Url must be an http:// or https:// address")
    try:
        expected = int(config.get("ExpectedStatus", "200"))
        max_checks = int(config.get("MaxChecks", "10"))
        _port(parts)
    except ValueError:
        return Failure(
            type="ConfigurationError", message="ExpectedStatus, MaxChecks and the Url's port must be numbers"
        )
    if max_checks < 1:
        return Failure(type="ConfigurationError", message="MaxChecks must be at least 1")
    allow_private = os.environ.get(ALLOW_PRIVATE_VARIABLE, "").strip().lower()
    if allow_private not in _TRUE | _FALSE:
        return Failure(type="ConfigurationError", message=f"{ALLOW_PRIVATE_VARIABLE} must be true or false")
    shown = f"{parts.scheme}://{_host_and_port(parts)}{parts.path}"
    return _Gate(url, shown, expected, max_checks, allow_private in _TRUE)


def _checks_so_far(token: str | None) -> int:
    if not token:
        return 0
    try:
        return int(json.loads(token)["checks"])
    except (ValueError, KeyError, TypeError):
        return 0


@dataclass(frozen=True)
class _Answer:
    """The status the URL answered (0: none), what to say about it, or why it was not asked at all."""

    status: int = 0
    said: str = "did not answer"
    refused: str | None = None


class _Refused(Exception):
    """An address this action does not connect to."""


def _check(url: str, *, allow_private: bool) -> _Answer:
    """GET the URL, following at most MAX_REDIRECTS redirects, all within TIMEOUT_S seconds."""
    deadline = time.monotonic() + TIMEOUT_S
    origin = urlsplit(url)
    credentials = _basic_credentials(origin)
    current = origin
    for hop in range(MAX_REDIRECTS + 1):
        if current.scheme not in ("http", "https") or not current.hostname:
            return _Answer(said="redirected to an address that is not http:// or https://")
        send = credentials if (current.scheme, current.netloc) == (origin.scheme, origin.netloc) else None
        try:
            status, location = _get_once(current, send, deadline, allow_private=allow_private)
        except _Refused:
            where = "resolves to" if hop == 0 else "was redirected to"
            return _Answer(
                refused=f"{where} a loopback, link-local or private address, which this action does not check"
            )
        except (OSError, http.client.HTTPException, ValueError):
            said = f"did not answer within {TIMEOUT_S:g} s" if time.monotonic() >= deadline else "did not answer"
            return _Answer(said=said)
        if status not in REDIRECT_STATUSES or location is None:
            return _Answer(status=status, said=f"answered {status}")
        current = urlsplit(urljoin(current.geturl(), location))
    return _Answer(said=f"redirected more than {MAX_REDIRECTS} times")


def _basic_credentials(parts: SplitResult) -> str | None:
    if parts.username is None:
        return None
    pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


def _get_once(
    parts: SplitResult, authorization: str | None, deadline: float, *, allow_private: bool
) -> tuple[int, str | None]:
    """One GET: its status and Location header. Connects only to the addresses checked here, so that a name
    cannot resolve to one address for the check and another for the connection."""
    host = parts.hostname or ""
    port = _port(parts)
    addresses = _resolve(host, port, deadline)
    if not allow_private and any(not _is_public(address[4][0]) for address in addresses):
        raise _Refused
    with _connected(addresses, deadline, host if parts.scheme == "https" else None) as sock:
        connection = http.client.HTTPConnection(host, port)
        connection.sock = sock
        headers = {"User-Agent": USER_AGENT, "Connection": "close"}
        if authorization is not None:
            headers["Authorization"] = authorization
        path = parts.path or "/"
        connection.request("GET", f"{path}?{parts.query}" if parts.query else path, headers=headers)
        response = connection.getresponse()
        location = response.getheader("Location")
        response.close()
        connection.close()
        return response.status, location


def _port(parts: SplitResult) -> int:
    """The URL's port (urlsplit raises ValueError for a bad one), or the scheme's."""
    return parts.port or (443 if parts.scheme == "https" else 80)


def _host_and_port(parts: SplitResult) -> str:
    """The netloc without user information."""
    return parts.netloc.rpartition("@")[2]


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 scope (fe80::1%eth0) is not part of it
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _resolve(host: str, port: int, deadline: float) -> list[Any]:
    """getaddrinfo, which has no timeout of its own, bounded by the deadline: it runs in a daemon thread that is
    left to finish alone if the deadline comes first."""
    found: list[Any] = []
    failure: list[BaseException] = []

    def lookup() -> None:
        try:
            found.extend(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except OSError as exc:
            failure.append(exc)

    thread = threading.Thread(target=lookup, daemon=True, name="url-gate-lookup")
    thread.start()
    thread.join(max(0.0, deadline - time.monotonic()))
    if thread.is_alive():
        raise TimeoutError("name lookup")
    if failure:
        raise failure[0]
    return found


@contextlib.contextmanager
def _connected(addresses: list[Any], deadline: float, tls_host: str | None) -> Iterator[socket.socket]:
    """A socket connected to the first address that answers (with TLS for `tls_host`), shut down at the deadline
    whatever it is doing: per-operation timeouts alone let a server that sends a byte now and then hold it for
    ever."""
    error: OSError = TimeoutError("no address")
    for family, kind, protocol, _, address in addresses:
        current = [socket.socket(family, kind, protocol)]  # the TLS socket replaces it once wrapped
        watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), _shut_down, args=(current,))
        watchdog.daemon = True
        watchdog.start()
        try:
            current[0].settimeout(max(0.001, deadline - time.monotonic()))
            try:
                current[0].connect(address)
            except OSError as exc:
                error = exc
                continue
            if tls_host is not None:
                current[0] = ssl.create_default_context().wrap_socket(current[0], server_hostname=tls_host)
            yield current[0]
            return
        finally:
            watchdog.cancel()
            current[0].close()
    raise error


def _shut_down(current: list[socket.socket]) -> None:
    # socket.socket's own shutdown, also for an SSLSocket: its recv then sees the end of the stream, where
    # SSLSocket.shutdown would tear down its TLS state under the reading thread.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(current[0], socket.SHUT_RDWR)
