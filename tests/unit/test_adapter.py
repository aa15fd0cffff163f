"""The SDK adapter: client settings, error translation, and the client-token store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import botocore.session
import pytest
from botocore.validate import ParamValidationDecorator
from pydantic import SecretStr

from codepipeline_worker.acknowledger.config import PollTarget
from codepipeline_worker.shared import adapter as adapter_module
from codepipeline_worker.shared.adapter import (
    AwsCallError,
    ClientTokenError,
    CodePipelineAdapter,
    create_client_token_store,
    create_codepipeline_client,
)
from codepipeline_worker.shared.config import load_config
from codepipeline_worker.shared.errors import ConfigurationError, JobError, job_error_class
from tests.conftest import TEST_ENV, closed_port
from tests.unit.conftest import (
    CLIENT_ID,
    CLIENT_TOKEN,
    PARTNER,
    QUEUE_URL,
    SECRET_ID,
    make_settings,
    secret_response,
    token_store,
)

if TYPE_CHECKING:
    from tests.unit.conftest import StubbedSecrets

OTHER_CLIENT = "0d4c3b2a-1234-4abc-9def-0123456789ab"


def test_the_client_uses_standard_retries_a_matching_pool_and_short_timeouts() -> None:
    settings = make_settings(ACK_CONCURRENCY="24", AWS_MAX_ATTEMPTS="4")
    client = create_codepipeline_client(settings, settings.ack_concurrency)

    config: Any = client.meta.config  # botocore-stubs does not declare the options
    assert config.retries == {"mode": "standard", "total_max_attempts": 4}
    assert config.max_pool_connections == 24
    assert (config.connect_timeout, config.read_timeout) == (1, 2)


def validates_parameters(client: Any) -> bool:
    """Whether the client checks each call's parameters against the service model before it serializes them."""
    return isinstance(client._serializer, ParamValidationDecorator)


def test_the_acknowledgers_clients_skip_botocores_parameter_validation_the_work_sides_keep_it() -> None:
    """The acknowledger calls its clients only with values its models validated; the work side reports a user's
    results, which botocore still checks before they leave."""
    from codepipeline_worker.acknowledger.service import JobService
    from codepipeline_worker.work.config import WorkerSettings
    from codepipeline_worker.work.runner import WorkRunner

    service = JobService.from_settings(make_settings(JOB_QUEUE_URL=QUEUE_URL))
    assert service._handoffs is not None
    ledger: Any = service._handoffs.ledger._client
    acknowledgers = [service._codepipeline._client, service._handoffs.queue._client, ledger._make()]
    assert [validates_parameters(client) for client in acknowledgers] == [False, False, False]

    runner = WorkRunner.from_settings(load_config(WorkerSettings, TEST_ENV))
    assert validates_parameters(runner._codepipeline._client)
    assert validates_parameters(create_codepipeline_client(make_settings()))


def test_the_client_honours_the_sdk_endpoint_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_CODEPIPELINE", "http://127.0.0.1:4599")

    assert create_codepipeline_client(make_settings()).meta.endpoint_url == "http://127.0.0.1:4599"


def test_without_an_endpoint_variable_the_client_targets_aws() -> None:
    assert (
        create_codepipeline_client(make_settings()).meta.endpoint_url == "https://codepipeline.us-east-1.amazonaws.com"
    )


def test_an_unreachable_endpoint_is_an_aws_call_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_CODEPIPELINE", f"http://127.0.0.1:{closed_port()}")
    adapter = CodePipelineAdapter(create_codepipeline_client(make_settings(AWS_MAX_ATTEMPTS="1")))

    with pytest.raises(AwsCallError) as caught:
        adapter.acknowledge_job("11111111-abcd-1111-abcd-111111abcdef", SecretStr("3"))

    assert (caught.value.operation, caught.value.code) == ("AcknowledgeJob", "EndpointConnectionError")
    assert caught.value.__context__ is None
    assert caught.value.__cause__ is None


def test_missing_credentials_are_an_aws_call_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL_CODEPIPELINE", f"http://127.0.0.1:{closed_port()}")
    # A session that has not cached credentials yet
    monkeypatch.setattr(adapter_module, "sdk_session", botocore.session.get_session)
    adapter = CodePipelineAdapter(create_codepipeline_client(make_settings()))

    with pytest.raises(AwsCallError) as caught:
        adapter.poll_for_third_party_jobs(PollTarget.model_validate(PARTNER), 10)

    assert caught.value.code == "NoCredentialsError"


def test_a_client_id_missing_from_the_cached_secret_forces_one_fresh_read(secrets: StubbedSecrets) -> None:
    client, stubber = secrets
    # Given the cached secret predates the client
    stubber.add_response("get_secret_value", secret_response({OTHER_CLIENT: "other"}), {"SecretId": SECRET_ID})
    stubber.add_response("get_secret_value", secret_response({CLIENT_ID: CLIENT_TOKEN}), {"SecretId": SECRET_ID})
    store = token_store(client)

    assert store.token_for(OTHER_CLIENT).get_secret_value() == "other"
    # When a job for the new client comes, then the secret is read again and the token found
    assert store.token_for(CLIENT_ID).get_secret_value() == CLIENT_TOKEN
    # And the fresh copy is cached: no third read
    assert store.token_for(CLIENT_ID).get_secret_value() == CLIENT_TOKEN


def test_a_client_id_absent_after_a_fresh_read_is_not_found(secrets: StubbedSecrets) -> None:
    client, stubber = secrets
    stubber.add_response("get_secret_value", secret_response({OTHER_CLIENT: "other"}))
    stubber.add_response("get_secret_value", secret_response({OTHER_CLIENT: "other"}))

    with pytest.raises(ClientTokenError) as caught:
        token_store(client).token_for(CLIENT_ID)

    assert caught.value.code == "ClientTokenNotFound"


@pytest.mark.parametrize(
    ("secret", "code"),
    [
        ("not json", "ClientTokenSecretInvalid"),
        ('["a list"]', "ClientTokenSecretInvalid"),
        ('{"not-a-uuid": "token"}', "ClientTokenSecretInvalid"),
        ('{"' + CLIENT_ID + '": ""}', "ClientTokenSecretInvalid"),
        ('{"' + CLIENT_ID + '": "' + "t" * 257 + '"}', "ClientTokenSecretInvalid"),
    ],
)
def test_a_malformed_secret_is_reported_by_code(secret: str, code: str, secrets: StubbedSecrets) -> None:
    client, stubber = secrets
    stubber.add_response("get_secret_value", secret_response(secret))

    with pytest.raises(ClientTokenError) as caught:
        token_store(client).token_for(CLIENT_ID)

    assert caught.value.code == code
    assert caught.value.__context__ is None


def test_an_unreadable_secret_is_unavailable(secrets: StubbedSecrets) -> None:
    client, stubber = secrets
    stubber.add_client_error("get_secret_value", "ResourceNotFoundException")

    with pytest.raises(ClientTokenError) as caught:
        token_store(client).token_for(CLIENT_ID)

    assert caught.value.code == "ClientTokenUnavailable"


def test_the_token_store_exists_only_when_a_secret_is_configured() -> None:
    assert create_client_token_store(make_settings()) is None
    assert create_client_token_store(make_settings(CLIENT_TOKEN_SECRET_ID=SECRET_ID)) is not None


def test_one_error_class_per_code_named_after_it() -> None:
    assert job_error_class("InvalidNonceException") is job_error_class("InvalidNonceException")
    assert job_error_class("InvalidNonceException").__name__ == "InvalidNonceException"
    assert issubclass(job_error_class("JobNotFoundException"), JobError)
    assert job_error_class("500") is JobError
    assert job_error_class("Not-An-Identifier") is JobError


def test_no_tracing_sdk_is_imported_when_tracing_is_off() -> None:
    assert _imports_xray("true") == "False None"


def test_tracing_on_creates_a_tracer() -> None:
    assert _imports_xray("false") == "True Tracer"


def _imports_xray(disabled: str) -> str:
    """Import the handler in a fresh interpreter, as a cold start does; report the X-Ray SDK and the tracer."""
    code = (
        "import sys; from codepipeline_worker.acknowledger import handler;"
        " from codepipeline_worker.shared import observability; tracer = observability.tracer;"
        " print('aws_xray_sdk.core' in sys.modules, type(tracer).__name__ if tracer else None)"
    )
    env = {**os.environ, "POWERTOOLS_TRACE_DISABLED": disabled}
    done = subprocess.run(  # noqa: S603 - the test's own interpreter and code
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=Path(__file__).parent
    )
    return done.stdout.strip()


def test_a_readable_secret_passes_the_cold_start_check_and_warms_the_cache(secrets: StubbedSecrets) -> None:
    client, stubber = secrets
    stubber.add_response("get_secret_value", secret_response({CLIENT_ID: CLIENT_TOKEN}))
    store = token_store(client)

    assert store.check() is None
    assert store.token_for(CLIENT_ID).get_secret_value() == CLIENT_TOKEN  # no second read: Stubber holds none


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (
            "ResourceNotFoundException",
            "CLIENT_TOKEN_SECRET_ID: the client-token secret could not be read (ResourceNotFoundException)",
        ),
        ("AccessDeniedException", "could not be read (AccessDeniedException)"),
        (
            '["not", "a", "map"]',
            "CLIENT_TOKEN_SECRET_ID: the client-token secret must be a JSON object mapping clientId",
        ),
        ("not json at all", "CLIENT_TOKEN_SECRET_ID: the client-token secret is not JSON"),
    ],
)
def test_a_missing_or_malformed_secret_fails_the_cold_start(answer: str, message: str, secrets: StubbedSecrets) -> None:
    client, stubber = secrets
    if answer.endswith("Exception"):
        stubber.add_client_error("get_secret_value", answer, "secret says no")
    else:
        stubber.add_response("get_secret_value", secret_response(answer))

    with pytest.raises(ConfigurationError) as caught:
        token_store(client).check()

    assert str(caught.value).startswith("invalid configuration: ")
    assert message in str(caught.value)
    assert "secret says no" not in str(caught.value)


def test_a_passing_secrets_fault_at_cold_start_is_not_fatal(secrets: StubbedSecrets) -> None:
    client, stubber = secrets
    stubber.add_client_error("get_secret_value", "ThrottlingException", http_status_code=400)
    stubber.add_response("get_secret_value", secret_response({CLIENT_ID: CLIENT_TOKEN}))
    store = token_store(client)

    assert store.check() == "ThrottlingException"
    # And the next partner job reads it again
    assert store.token_for(CLIENT_ID).get_secret_value() == CLIENT_TOKEN
