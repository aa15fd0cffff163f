"""The example action against a real HTTP server on 127.0.0.1: it passes, waits in rounds, gives up, never shows
the URL's user information or query string, stays within one time budget, follows at most 5 redirects, and
refuses addresses that are not public unless the work function's setting allows them."""

from __future__ import annotations

import base64
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest

from codepipeline_worker.examples import url_gate
from codepipeline_worker.examples.url_gate import ALLOW_PRIVATE_VARIABLE, MAX_REDIRECTS, check_url
from codepipeline_worker.shared.adapter import CodePipelineAdapter
from codepipeline_worker.shared.messages import JobMessage
from codepipeline_worker.work import Failure, Job, JobDetails, StillRunning, Success
from codepipeline_worker.work.runner import WorkRunner
from tests.conftest import closed_port
from tests.unit.conftest import CLIENT_ID, record_requests

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.unit.conftest import Stubbed

pytestmark = pytest.mark.usefixtures("clean_metrics")

JOB = "11111111-abcd-1111-abcd-111111abcdef"
QUERY_MARKER = "query-token-MARKER-77e1"
USER = "deployer"
PASSWORD = "pass@word-MARKER-31c"
PROXY_VARIABLES = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")


class Site:
    """A local web server. `/health` answers the statuses queued in `statuses`, then 200; `/moved` redirects
    to `/health`; `/hop/N` redirects to `/hop/N-1` and `/hop/0` to `/health`; `/away` redirects to `away_to`.
    Every path asked for is kept in `seen`, with the Authorization header it came with in `authorizations`."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.seen: list[str] = []
        self.authorizations: list[str | None] = []
        self.away_to = ""
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                site.seen.append(self.path)
                site.authorizations.append(self.headers.get("Authorization"))
                location = site.redirect(self.path)
                if location is not None:
                    self.send_response(301)
                    self.send_header("Location", location)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = site.statuses.pop(0) if site.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def redirect(self, path: str) -> str | None:
        if path.startswith("/moved"):
            return "/health"
        if path.startswith("/away"):
            return self.away_to
        if path.startswith("/hop/"):
            left = int(path.removeprefix("/hop/"))
            return "/health" if left == 0 else f"/hop/{left - 1}"
        return None

    def url(self, path: str = "/health") -> str:
        return self.base + path


def serve(site: Site) -> Iterator[Site]:
    site.thread.start()
    yield site
    site.server.shutdown()
    site.server.server_close()
    site.thread.join(5)


@pytest.fixture
def private_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The setting the local runs use: these tests' servers listen on 127.0.0.1."""
    monkeypatch.setenv(ALLOW_PRIVATE_VARIABLE, "true")


@pytest.fixture
def site(monkeypatch: pytest.MonkeyPatch, private_allowed: None) -> Iterator[Site]:
    for name in PROXY_VARIABLES:  # the request must go to 127.0.0.1, not to a proxy the machine has set
        monkeypatch.delenv(name, raising=False)
    yield from serve(Site())


@pytest.fixture
def other_site(site: Site) -> Iterator[Site]:
    """A second server: another origin (another port)."""
    yield from serve(Site())


def job(configuration: dict[str, str], token: str | None = None, *, partner: bool = False) -> Job:
    """A job whose details (configuration, continuation token) come from GetJobDetails."""
    details = JobDetails.model_validate({"configuration": configuration, "continuationToken": token})
    message = (
        JobMessage(job_id="partner-job-1", job_type="thirdParty", client_id=CLIENT_ID)
        if partner
        else JobMessage(job_id=JOB, job_type="custom")
    )
    return Job(message, lambda _message: details)


def texts(outcome: Any) -> str:
    return json.dumps(outcome.model_dump(mode="json"))


def test_a_healthy_url_passes_at_once_with_output_variables(site: Site) -> None:
    outcome = check_url(job({"Url": site.url()}))

    assert outcome == Success(
        summary=f"{site.url()} answered 200 at check 1", output_variables={"StatusCode": "200", "Checks": "1"}
    )
    assert site.seen == ["/health"]


def test_a_partner_job_passes_without_output_variables(site: Site) -> None:
    # PutThirdPartyJobSuccessResult has no output variables
    outcome = check_url(job({"Url": site.url()}, partner=True))

    assert outcome == Success(summary=f"{site.url()} answered 200 at check 1")


def test_a_single_check_fails_at_once(site: Site) -> None:
    site.statuses = [500]

    outcome = check_url(job({"Url": site.url(), "MaxChecks": "1"}))

    assert outcome == Failure(message=f"{site.url()} answered 500 (200 expected) after 1 check")


def test_a_url_not_yet_healthy_is_checked_again_next_round(site: Site) -> None:
    site.statuses = [503]
    configuration = {"Url": site.url(f"/health?token={QUERY_MARKER}"), "MaxChecks": "3"}

    first = check_url(job(configuration))
    assert isinstance(first, StillRunning)
    second = check_url(job(configuration, first.continuation_token))

    assert first == StillRunning(
        continuation_token='{"checks": 1}',
        percent_complete=33,
        summary=f"{site.url()} answered 503 (200 expected); check 1 of 3",
    )
    assert second == Success(
        summary=f"{site.url()} answered 200 at check 2", output_variables={"StatusCode": "200", "Checks": "2"}
    )
    # The query string was sent, and shown nowhere
    assert site.seen == [f"/health?token={QUERY_MARKER}"] * 2
    assert QUERY_MARKER not in texts(first) + texts(second)


def test_the_rounds_run_through_the_runner_with_the_token_passed_back(site: Site, codepipeline: Stubbed) -> None:
    client, stubber = codepipeline
    site.statuses = [500]
    configuration = {"Url": site.url(f"/health?token={QUERY_MARKER}"), "MaxChecks": "4"}
    # Round 1: not healthy yet; CodePipeline is told to continue, with the token
    stubber.add_response(
        "get_job_details", {"jobDetails": {"data": {"actionConfiguration": {"configuration": configuration}}}}
    )
    stubber.add_response(
        "put_job_success_result",
        {},
        {
            "jobId": JOB,
            "continuationToken": '{"checks": 1}',
            "executionDetails": {
                "summary": f"{site.url()} answered 500 (200 expected); check 1 of 4",
                "percentComplete": 25,
            },
        },
    )
    # Round 2: the follow-up job carries the token back, and the URL is healthy
    stubber.add_response(
        "get_job_details",
        {
            "jobDetails": {
                "data": {"actionConfiguration": {"configuration": configuration}, "continuationToken": '{"checks": 1}'}
            }
        },
    )
    stubber.add_response(
        "put_job_success_result",
        {},
        {
            "jobId": JOB,
            "executionDetails": {"summary": f"{site.url()} answered 200 at check 2"},
            "outputVariables": {"StatusCode": "200", "Checks": "2"},
        },
    )
    calls = record_requests(client)
    runner = WorkRunner(CodePipelineAdapter(client), None, check_url)

    results = [runner.run(JobMessage(job_id=JOB, job_type="custom")).result for _ in range(2)]

    assert results == ["continued", "succeeded"]
    assert QUERY_MARKER not in json.dumps(calls)


def test_the_job_fails_after_max_checks(site: Site) -> None:
    site.statuses = [503]
    configuration = {"Url": site.url(f"/health?token={QUERY_MARKER}"), "MaxChecks": "3"}

    outcome = check_url(job(configuration, '{"checks": 2}'))

    assert outcome == Failure(message=f"{site.url()} answered 503 (200 expected) after 3 checks")
    assert QUERY_MARKER not in texts(outcome)


def test_an_expected_error_status_passes(site: Site) -> None:
    site.statuses = [404]

    outcome = check_url(job({"Url": site.url(), "ExpectedStatus": "404"}))

    assert outcome == Success(
        summary=f"{site.url()} answered 404 at check 1", output_variables={"StatusCode": "404", "Checks": "1"}
    )


def test_redirects_are_followed(site: Site) -> None:
    outcome = check_url(job({"Url": site.url("/moved")}))

    assert isinstance(outcome, Success)
    assert site.seen == ["/moved", "/health"]


@pytest.mark.usefixtures("private_allowed")
def test_a_url_that_does_not_answer_is_waited_for() -> None:
    url = f"http://127.0.0.1:{closed_port()}/health"

    outcome = check_url(job({"Url": url, "MaxChecks": "2"}))

    assert outcome == StillRunning(
        continuation_token='{"checks": 1}',
        percent_complete=50,
        summary=f"{url} did not answer (200 expected); check 1 of 2",
    )


@pytest.mark.parametrize("token", ["not json", '{"other": 1}', '["checks"]', '{"checks": "x"}'])
def test_a_token_it_did_not_write_starts_the_count_again(site: Site, token: str) -> None:
    site.statuses = [503]

    outcome = check_url(job({"Url": site.url()}, token))

    assert isinstance(outcome, StillRunning)
    assert outcome.continuation_token == '{"checks": 1}'


NUMBERS = "ExpectedStatus, MaxChecks and the Url's port must be numbers"


@pytest.mark.parametrize(
    ("configuration", "message"),
    [
        ({}, "Url must be an http:// or https:// address"),
        ({"Url": "ftp://example.com/file"}, "Url must be an http:// or https:// address"),
        ({"Url": "http://"}, "Url must be an http:// or https:// address"),
        ({"Url": "https://example.com", "ExpectedStatus": "ok"}, NUMBERS),
        ({"Url": "https://example.com", "MaxChecks": "2.5"}, NUMBERS),
        ({"Url": "https://example.com:http/"}, NUMBERS),
        ({"Url": "https://example.com", "MaxChecks": "0"}, "MaxChecks must be at least 1"),
    ],
)
def test_a_bad_configuration_fails_at_once(configuration: dict[str, str], message: str, site: Site) -> None:
    outcome = check_url(job(configuration))

    assert outcome == Failure(type="ConfigurationError", message=message)
    assert site.seen == []


# -- user information, time budget, redirects, addresses -----------------------------------------------------


def test_user_information_is_sent_as_basic_authentication_and_shown_nowhere(site: Site) -> None:
    site.statuses = [503]
    url = site.url("/health").replace("://", f"://{USER}:{PASSWORD.replace('@', '%40')}@")

    outcome = check_url(job({"Url": url, "MaxChecks": "2"}))

    # The host was asked with the credentials, as HTTP Basic authentication (the user information is not
    # taken for part of the host name)
    assert site.seen == ["/health"]
    assert site.authorizations == ["Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()]
    # And what the job reports shows the URL without them
    assert outcome == StillRunning(
        continuation_token='{"checks": 1}',
        percent_complete=50,
        summary=f"{site.url()} answered 503 (200 expected); check 1 of 2",
    )
    assert USER not in texts(outcome)
    assert "pass" not in texts(outcome)


def test_credentials_are_not_sent_to_another_host_a_redirect_leads_to(site: Site, other_site: Site) -> None:
    site.away_to = other_site.url("/health")
    url = site.url("/away").replace("://", f"://{USER}:secret@")

    outcome = check_url(job({"Url": url}))

    assert isinstance(outcome, Success)
    assert site.authorizations[0] is not None
    assert other_site.seen == ["/health"]
    assert other_site.authorizations == [None]


@pytest.mark.parametrize("hops", [MAX_REDIRECTS - 1, MAX_REDIRECTS])
def test_up_to_five_redirects_are_followed(site: Site, hops: int) -> None:
    # /hop/N takes N + 1 redirects to reach /health
    outcome = check_url(job({"Url": site.url(f"/hop/{hops - 1}")}))

    assert isinstance(outcome, Success)
    assert len(site.seen) == hops + 1


def test_a_sixth_redirect_is_not_followed(site: Site) -> None:
    outcome = check_url(job({"Url": site.url(f"/hop/{MAX_REDIRECTS}"), "MaxChecks": "1"}))

    assert outcome == Failure(
        message=f"{site.url(f'/hop/{MAX_REDIRECTS}')} redirected more than 5 times (200 expected) after 1 check"
    )
    assert len(site.seen) == MAX_REDIRECTS + 1


class Drip:
    """A server that answers each connection one byte at a time, a byte every 0.2 s: a response of 200 bytes
    would take 40 s. It notes how many bytes it got to send before the client hung up."""

    RESPONSE = b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"z" * 160 + b"\r\nContent-Length: 0\r\n\r\n"

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/health"
        self.sent = 0
        self.hung_up = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        connection, _ = self.listener.accept()
        with connection:
            connection.recv(4096)
            try:
                for byte in self.RESPONSE:
                    if self.stop.wait(0.2):
                        return
                    connection.sendall(bytes([byte]))
                    self.sent += 1
            except OSError:
                self.hung_up.set()


def test_one_time_budget_bounds_a_server_that_answers_a_byte_at_a_time(
    monkeypatch: pytest.MonkeyPatch, private_allowed: None
) -> None:
    # Given a budget of 1 s and a server that would take 40 s to send its status line and headers
    monkeypatch.setattr(url_gate, "TIMEOUT_S", 1.0)
    drip = Drip()
    try:
        outcome = check_url(job({"Url": drip.url, "MaxChecks": "1"}))

        # Then the check gave up (each byte came well within any per-read timeout) and hung up early
        assert outcome == Failure(message=f"{drip.url} did not answer within 1 s (200 expected) after 1 check")
        assert drip.hung_up.wait(30)
        assert drip.sent < len(Drip.RESPONSE)
    finally:
        drip.stop.set()
        drip.listener.close()
        drip.thread.join(5)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
def test_loopback_addresses_are_refused_without_the_setting(
    site: Site, monkeypatch: pytest.MonkeyPatch, host: str
) -> None:
    monkeypatch.delenv(ALLOW_PRIVATE_VARIABLE)
    url = site.url().replace("127.0.0.1", host)

    outcome = check_url(job({"Url": url}))

    assert outcome == Failure(
        type="ConfigurationError",
        message=f"{url} resolves to a loopback, link-local or private address, which this action does not check",
    )
    assert site.seen == []  # refused before any connection


def test_a_redirect_to_an_address_that_is_not_public_is_refused(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given only the site's own address counts as public, and it redirects to another loopback address
    monkeypatch.delenv(ALLOW_PRIVATE_VARIABLE)
    monkeypatch.setattr(url_gate, "_is_public", lambda address: address == "127.0.0.1")
    site.away_to = f"http://127.0.0.2:{closed_port()}/admin"

    outcome = check_url(job({"Url": site.url("/away")}))

    assert outcome == Failure(
        type="ConfigurationError",
        message=(
            f"{site.url('/away')} was redirected to a loopback, link-local or private address, "
            "which this action does not check"
        ),
    )
    assert site.seen == ["/away"]


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.215.14", True),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", True),
        ("127.0.0.1", False),
        ("127.8.9.10", False),
        ("::1", False),
        ("169.254.169.254", False),  # the instance metadata service
        ("fe80::1%eth0", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("100.64.0.1", False),  # shared address space
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("0.0.0.0", False),  # noqa: S104 - an address checked, not bound
        ("224.0.0.1", False),
    ],
)
def test_which_addresses_are_public(address: str, public: bool) -> None:
    assert url_gate._is_public(address) is public


def test_a_bad_setting_is_a_configuration_error(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ALLOW_PRIVATE_VARIABLE, "maybe")

    assert check_url(job({"Url": site.url()})) == Failure(
        type="ConfigurationError", message=f"{ALLOW_PRIVATE_VARIABLE} must be true or false"
    )
    assert site.seen == []
