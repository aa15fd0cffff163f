"""The example action against a real HTTP server on 127.0.0.1: it passes, waits in rounds, gives up, and never
shows the URL's query string."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest

from codepipeline_worker.examples.url_gate import check_url
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
PROXY_VARIABLES = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")


class Site:
    """A local web server. `/health` answers the statuses queued in `statuses`, then 200; `/moved` redirects
    to `/health`. Every path asked for is kept in `seen`."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.seen: list[str] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                site.seen.append(self.path)
                if self.path.startswith("/moved"):
                    self.send_response(301)
                    self.send_header("Location", "/health")
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

    def url(self, path: str = "/health") -> str:
        return self.base + path


@pytest.fixture
def site(monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    for name in PROXY_VARIABLES:  # the request must go to 127.0.0.1, not to a proxy the machine has set
        monkeypatch.delenv(name, raising=False)
    running = Site()
    running.thread.start()
    yield running
    running.server.shutdown()
    running.server.server_close()
    running.thread.join(5)


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


@pytest.mark.parametrize(
    ("configuration", "message"),
    [
        ({}, "Url must be an http:// or https:// address"),
        ({"Url": "ftp://example.com/file"}, "Url must be an http:// or https:// address"),
        ({"Url": "http://"}, "Url must be an http:// or https:// address"),
        ({"Url": "https://example.com", "ExpectedStatus": "ok"}, "ExpectedStatus and MaxChecks must be whole numbers"),
        ({"Url": "https://example.com", "MaxChecks": "2.5"}, "ExpectedStatus and MaxChecks must be whole numbers"),
        ({"Url": "https://example.com", "MaxChecks": "0"}, "MaxChecks must be at least 1"),
    ],
)
def test_a_bad_configuration_fails_at_once(configuration: dict[str, str], message: str, site: Site) -> None:
    outcome = check_url(job(configuration))

    assert outcome == Failure(type="ConfigurationError", message=message)
    assert site.seen == []
