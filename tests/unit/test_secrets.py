"""No nonce, client token or artifact credential reaches a log line (any level), a metric, a result or an
exception message, on success and on every error path. Everything the function emits is captured."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

import pytest

from codepipeline_worker.acknowledger import handler
from codepipeline_worker.acknowledger.handler import lambda_handler
from codepipeline_worker.work import Job, Outcome, Success
from tests.conftest import FakeLambdaContext, log_lines
from tests.unit.conftest import CLIENT_ID, make_service, make_settings, record_requests, secret_response, token_store

if TYPE_CHECKING:
    from collections.abc import Callable

    from botocore.stub import Stubber
    from mypy_boto3_codepipeline import CodePipelineClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

    Stubbed = tuple[CodePipelineClient, Stubber]
    StubbedSecrets = tuple[SecretsManagerClient, Stubber]

NONCE = "nonce-7f3a9c1e5b"
POLLED_NONCE = "nonce-polled-4d2e8a"
DETAILS_NONCE = "nonce-details-9b1c"
TOKEN = "token-Qm9vX2sEcReTvalue"
SECRET_TOKEN = "token-from-secret-Zx81"
ACCESS_KEY = "AKIAQWERTYUIOPASDFGH"
SECRET_KEY = "sEcReTaCcEsSkEy/1234567890abcdefghij"
SESSION_TOKEN = "FwoGZXIvYXdzSESSIONtoken0987"
SECRETS = (NONCE, POLLED_NONCE, DETAILS_NONCE, TOKEN, SECRET_TOKEN, ACCESS_KEY, SECRET_KEY, SESSION_TOKEN)
CREDENTIALS = {"accessKeyId": ACCESS_KEY, "secretAccessKey": SECRET_KEY, "sessionToken": SESSION_TOKEN}
CUSTOM_ID = "11111111-abcd-1111-abcd-111111abcdef"
PARTNER_ID = "22222222-abcd-2222-abcd-222222abcdef"
OTHER_PARTNER_ID = "33333333-abcd-3333-abcd-333333abcdef"
# What AWS validation messages look like: they echo the rejected values.
ECHO = f"Value '{NONCE}' at 'nonce' / '{TOKEN}' at 'clientToken' failed to satisfy constraint"


def run(event: Any, service: Any, context: FakeLambdaContext | None = None) -> str:
    """Invoke the handler; return its result or its exception, as text."""
    try:
        return json.dumps(lambda_handler(event, context or FakeLambdaContext(), service=service))
    except Exception as exc:  # noqa: BLE001 - the exception's text is what is checked
        return f"{type(exc).__name__}: {exc} {exc.args!r} {exc.__cause__!r} {exc.__context__!r}"


def assert_clean(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} leaked"


@pytest.fixture(autouse=True)
def _debug_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    from codepipeline_worker.shared.observability import logger

    logger.setLevel(logging.DEBUG)
    # Powertools' own event logging, if a user turns it on, must not print the event either.
    monkeypatch.setenv("POWERTOOLS_LOGGER_LOG_EVENT", "true")
    monkeypatch.setattr(handler, "settings", make_settings(POWERTOOLS_LOGGER_LOG_EVENT="true"))


def test_success_paths_leak_nothing(codepipeline: Stubbed, secrets: StubbedSecrets, emitted: Callable[[], str]) -> None:
    client, stubber = codepipeline
    sm_client, sm_stubber = secrets
    stubber.add_response("acknowledge_job", {"status": "InProgress"})
    stubber.add_response("acknowledge_third_party_job", {"status": "InProgress"})
    stubber.add_response(
        "poll_for_jobs",
        {"jobs": [{"id": CUSTOM_ID, "nonce": POLLED_NONCE, "data": {"artifactCredentials": CREDENTIALS}}]},
    )
    stubber.add_response("poll_for_third_party_jobs", {"jobs": [{"jobId": PARTNER_ID, "clientId": CLIENT_ID}]})
    stubber.add_response("acknowledge_job", {"status": "InProgress"})
    sm_stubber.add_response("get_secret_value", secret_response({CLIENT_ID: SECRET_TOKEN}))
    stubber.add_response(
        "get_third_party_job_details",
        {"jobDetails": {"id": PARTNER_ID, "nonce": DETAILS_NONCE, "data": {"artifactCredentials": CREDENTIALS}}},
    )
    stubber.add_response("acknowledge_third_party_job", {"status": "InProgress"})
    service = make_service(client, token_store(sm_client))

    results = [
        run({"jobId": CUSTOM_ID, "nonce": NONCE}, service),
        run({"jobId": PARTNER_ID, "nonce": NONCE, "clientToken": TOKEN}, service),
        run({"source": "aws.events", "detail-type": "Scheduled Event"}, service),
    ]

    assert all("acknowledged" in r for r in results)
    assert_clean(*results, emitted())


@pytest.mark.parametrize(
    "code",
    [
        "InvalidNonceException",
        "JobNotFoundException",
        "InvalidClientTokenException",
        "ValidationException",
        "ThrottlingException",
        "AccessDeniedException",
    ],
)
def test_every_error_code_leaks_nothing_even_when_the_service_echoes_values(
    code: str, codepipeline: Stubbed, emitted: Callable[[], str]
) -> None:
    client, stubber = codepipeline
    stubber.add_client_error("acknowledge_third_party_job", code, ECHO)
    stubber.add_client_error("acknowledge_third_party_job", code, ECHO)
    stubber.add_client_error("get_third_party_job_details", code, ECHO)
    service = make_service(client)
    job = {"jobId": PARTNER_ID, "nonce": NONCE, "clientToken": TOKEN}

    results = [
        run(job, service),
        run({"jobs": [job, {"jobId": OTHER_PARTNER_ID, "clientToken": TOKEN}]}, service),
    ]

    assert code in results[0]
    assert_clean(*results, emitted())


def test_secret_lookup_failures_leak_nothing(
    codepipeline: Stubbed, secrets: StubbedSecrets, emitted: Callable[[], str]
) -> None:
    client, _ = codepipeline
    sm_client, sm_stubber = secrets
    sm_stubber.add_response("get_secret_value", secret_response(f"not json {SECRET_TOKEN}"))
    sm_stubber.add_response("get_secret_value", secret_response({CLIENT_ID: [SECRET_TOKEN]}))
    sm_stubber.add_client_error("get_secret_value", "AccessDeniedException", f"denied {SECRET_TOKEN}")
    job = {"jobId": PARTNER_ID, "clientId": CLIENT_ID}

    # A fresh store each time: Powertools caches what it read
    results = [run(job, make_service(client, token_store(sm_client))) for _ in range(3)]

    assert "ClientTokenSecretInvalid" in results[0]
    assert "ClientTokenSecretInvalid" in results[1]
    assert "ClientTokenUnavailable" in results[2]
    assert_clean(*results, emitted())


@pytest.mark.parametrize(
    "event",
    [
        {"jobId": CUSTOM_ID, "nonce": NONCE, "clientTokn": TOKEN},
        {"jobId": CUSTOM_ID, "nonce": NONCE * 5},
        {"jobId": "f4f4ff82-2d11-EXAMPLE", "nonce": NONCE, "clientToken": TOKEN * 20},
        {"jobs": [{"jobId": PARTNER_ID, "nonce": NONCE, "clientToken": TOKEN, TOKEN: NONCE}]},
        {"jobId": PARTNER_ID, "nonce": NONCE, "clientToken": TOKEN, "jobType": TOKEN},
        {"CodePipeline.job": {"id": CUSTOM_ID, "data": {"artifactCredentials": CREDENTIALS}}},
        [NONCE, TOKEN],
    ],
)
def test_validation_failures_leak_nothing(event: Any, codepipeline: Stubbed, emitted: Callable[[], str]) -> None:
    client, _ = codepipeline

    outcome = run(event, make_service(client))

    assert '"error": "InvalidJobEvent"' in outcome
    assert_clean(outcome, emitted())


def test_timeouts_leak_nothing(emitted: Callable[[], str]) -> None:
    import threading

    from codepipeline_worker.acknowledger.service import JobService

    release = threading.Event()

    class Hanging:
        def acknowledge_third_party_job(self, *_: Any) -> str:
            release.wait(10)
            return "InProgress"

    try:
        outcome = run(
            {"jobs": [{"jobId": PARTNER_ID, "nonce": NONCE, "clientToken": TOKEN}]},
            # A claim's worst case of 0.15 s (one attempt, 0.05 s to connect, 0.1 s to read) fits in the 0.2 s left
            JobService(
                make_settings(AWS_MAX_ATTEMPTS="1", CONNECT_TIMEOUT_S="0.05", READ_TIMEOUT_S="0.1"),
                Hanging(),  # type: ignore[arg-type]
            ),
            FakeLambdaContext(remaining_ms=1200),
        )
    finally:
        release.set()

    assert '"error": "DeadlineExceeded"' in outcome
    assert_clean(outcome, emitted())


def test_the_event_is_logged_redacted_when_event_logging_is_on(
    codepipeline: Stubbed, emitted: Callable[[], str]
) -> None:
    client, stubber = codepipeline
    stubber.add_response("acknowledge_job", {"status": "InProgress"})

    run({"jobId": CUSTOM_ID, "nonce": NONCE}, make_service(client))

    output = emitted()
    assert '"message":"event received"' in output
    assert CUSTOM_ID in output
    assert_clean(output)


def test_sdk_wire_logging_is_held_above_debug() -> None:
    # botocore's DEBUG records carry request and response bodies; they must never be emitted
    for name in ("botocore", "boto3", "urllib3"):
        assert logging.getLogger(name).getEffectiveLevel() >= logging.WARNING


@pytest.mark.parametrize(
    ("code", "echo"),
    [
        # What S3 answers quote: the session token it refused, the access key id, the canonical request
        ("ExpiredToken", f"The provided token has expired. <Token-0>{SESSION_TOKEN}</Token-0>"),
        ("InvalidAccessKeyId", f"<AWSAccessKeyId>{ACCESS_KEY}</AWSAccessKeyId>"),
        ("SignatureDoesNotMatch", f"<CanonicalRequest>x-amz-security-token:{SESSION_TOKEN}</CanonicalRequest>"),
    ],
)
@pytest.mark.parametrize("operation", ["extract", "download", "open", "write_directory", "write_bytes"])
def test_artifact_failures_leak_nothing_even_when_s3_echoes_the_credentials(
    code: str,
    echo: str,
    operation: str,
    *,
    codepipeline: Stubbed,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
    emitted: Callable[[], str],
) -> None:
    import boto3
    from botocore.stub import Stubber

    from codepipeline_worker.shared.adapter import CodePipelineAdapter
    from codepipeline_worker.shared.messages import JobMessage
    from codepipeline_worker.work import Failure
    from codepipeline_worker.work import job as job_module
    from codepipeline_worker.work.runner import WorkRunner

    client, stubber = codepipeline
    s3 = boto3.client("s3", region_name="us-east-1")
    s3_stubber = Stubber(s3)
    s3_stubber.activate()
    monkeypatch.setattr(job_module, "create_s3_client", lambda _: s3)
    where = {"type": "S3", "s3Location": {"bucketName": "artifact-bucket", "objectKey": "k"}}
    data = {
        "inputArtifacts": [{"name": "Source", "location": where}],
        "outputArtifacts": [{"name": "Out", "location": where}],
        "artifactCredentials": CREDENTIALS,
        "encryptionKey": {"id": "arn:aws:kms:us-east-1:123456789012:key/k", "type": "KMS"},
    }
    # S3 refuses the credentials; for ExpiredToken, the details are fetched again and S3 refuses those too
    s3_operation = "put_object" if operation.startswith("write") else "get_object"
    for _ in range(2 if code == "ExpiredToken" else 1):
        stubber.add_response("get_job_details", {"jobDetails": {"id": CUSTOM_ID, "data": data}})
        s3_stubber.add_client_error(s3_operation, code, echo, 400)
    stubber.add_response("put_job_failure_result", {})
    requests = record_requests(client)
    (tmp_path / "out").mkdir()

    def work(job: Job) -> Outcome:
        match operation:
            case "extract":
                job.input().extract(tmp_path / "source")
            case "download":
                job.input().download(tmp_path / "source.zip")
            case "open":
                with job.input().open():
                    pass
            case "write_directory":
                job.output().write_directory(tmp_path / "out")
            case _:
                job.output().write_bytes(b"report")
        return Failure(message="unreachable")

    # In this process: the S3 client is stubbed here, and a Stubber's queue of answers is this process's own
    runner = WorkRunner(CodePipelineAdapter(client), None, work, isolate=False)
    result = runner.run(JobMessage(job_id=CUSTOM_ID, job_type="custom"))

    s3_stubber.assert_no_pending_responses()
    assert (result.result, result.failure_type) == ("failed", "PermissionError")
    [failure] = [params for name, params in requests if name == "PutJobFailureResult"]
    assert code in failure["failureDetails"]["message"]
    assert_clean(json.dumps(result.to_json()), json.dumps(failure), emitted())


# -- the work side, and what DEBUG adds ----------------------------------------------------------------------

CONFIGURATION_SECRET = "configuration-secret-Pw4q"  # an action property marked secret reaches the job as is


def work_batch(client: CodePipelineClient, tokens: Any, work: Callable[[Job], Outcome]) -> dict[str, Any]:
    """The work function's Lambda entry on one custom and one partner job, each with secret details."""
    from codepipeline_worker.shared.adapter import CodePipelineAdapter
    from codepipeline_worker.shared.messages import JobMessage
    from codepipeline_worker.work.handler import process_batch
    from codepipeline_worker.work.runner import WorkRunner

    messages = [
        JobMessage(job_id=CUSTOM_ID, job_type="custom"),
        JobMessage(job_id=PARTNER_ID, job_type="thirdParty", client_id=CLIENT_ID),
    ]
    event = {
        "Records": [
            {"messageId": f"m{n}", "receiptHandle": f"r{n}", "body": m.to_body(), "attributes": {}}
            for n, m in enumerate(messages)
        ]
    }
    return process_batch(event, None, WorkRunner(CodePipelineAdapter(client), tokens, work))


def stub_work_calls(codepipeline: Stubbed, secrets: StubbedSecrets) -> Any:
    _, stubber = codepipeline
    sm_client, sm_stubber = secrets
    configuration = {"configuration": {"ApiKey": CONFIGURATION_SECRET}}
    data = {"actionConfiguration": configuration, "artifactCredentials": CREDENTIALS}
    stubber.add_response("get_job_details", {"jobDetails": {"id": CUSTOM_ID, "data": data}})
    stubber.add_response("put_job_success_result", {})
    sm_stubber.add_response("get_secret_value", secret_response({CLIENT_ID: SECRET_TOKEN}))
    stubber.add_response("get_third_party_job_details", {"jobDetails": {"id": PARTNER_ID, "data": data}})
    stubber.add_response("put_third_party_job_failure_result", {})
    return token_store(sm_client)


def secret_reading_work(job: Job) -> Outcome:
    """Reads every secret it is given; fails a partner job with all of them in its exception's message."""
    key = job.configuration["ApiKey"]
    assert job.artifact_credentials is not None
    if job.type == "custom":
        return Success(summary="deployed")
    raise RuntimeError(f"{key} {job.artifact_credentials.secrets()}")


def test_the_work_side_leaks_nothing_at_debug(
    codepipeline: Stubbed, secrets: StubbedSecrets, emitted: Callable[[], str]
) -> None:
    client, _ = codepipeline
    tokens = stub_work_calls(codepipeline, secrets)

    answer = work_batch(client, tokens, secret_reading_work)

    output = emitted()
    assert answer == {"batchItemFailures": []}
    for secret in (*SECRETS, CONFIGURATION_SECRET):
        assert secret not in output, f"{secret!r} leaked"
    assert_clean(json.dumps(answer))


def test_debug_logs_each_step_by_name_and_count(
    codepipeline: Stubbed, secrets: StubbedSecrets, emitted: Callable[[], str]
) -> None:
    client, stubber = codepipeline
    tokens = stub_work_calls(codepipeline, secrets)
    stubber.add_response("acknowledge_job", {"status": "InProgress"})

    work_batch(client, tokens, secret_reading_work)
    run({"jobId": CUSTOM_ID, "nonce": NONCE}, make_service(client))
    debug = log_lines(emitted(), "DEBUG")

    steps = {line["message"]: line for line in debug}
    assert set(steps) >= {
        "handling the event",
        "acknowledging a custom job",
        "batch received",
        "job details fetched",
        "running the work function",
        "the work function returned",
    }
    assert steps["job details fetched"]["configuration_keys"] == ["ApiKey"]
    assert steps["job details fetched"]["artifact_credentials"] is True
    assert steps["the work function returned"]["outcome"] == "Success"
    assert steps["running the work function"]["work_function"] == "secret_reading_work"


def test_info_logs_none_of_the_debug_lines(
    codepipeline: Stubbed, secrets: StubbedSecrets, emitted: Callable[[], str]
) -> None:
    from codepipeline_worker.shared.observability import logger

    client, _ = codepipeline
    tokens = stub_work_calls(codepipeline, secrets)
    logger.setLevel(logging.INFO)
    try:
        work_batch(client, tokens, secret_reading_work)
    finally:
        logger.setLevel(logging.DEBUG)

    output = emitted()
    assert '"message":"job reported"' in output
    assert '"level":"DEBUG"' not in output


def test_at_info_no_debug_line_is_even_built(
    codepipeline: Stubbed, secrets: StubbedSecrets, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above DEBUG, a per-job DEBUG line is not built at all: its call through Powertools and its arguments cost a
    warm direct job about 2.6 % of its CPU (docs/benchmarks.md). The same steps as above, at INFO."""
    from codepipeline_worker.shared import observability

    client, stubber = codepipeline
    tokens = stub_work_calls(codepipeline, secrets)
    stubber.add_response("acknowledge_job", {"status": "InProgress"})
    built: list[object] = []
    monkeypatch.setattr(observability.logger, "debug", lambda message, *_, **__: built.append(message))
    observability.logger.setLevel(logging.INFO)
    try:
        answer = work_batch(client, tokens, secret_reading_work)
        result = json.loads(run({"jobId": CUSTOM_ID, "nonce": NONCE}, make_service(client)))
    finally:
        observability.logger.setLevel(logging.DEBUG)

    assert answer == {"batchItemFailures": []}
    assert result["outcome"] == "acknowledged"
    assert built == []
    stubber.assert_no_pending_responses()
