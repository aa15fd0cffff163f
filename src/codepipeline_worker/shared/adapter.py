"""The one module that owns the AWS SDK: CodePipeline's job operations, the work queue and the client-token secret.

Every SDK failure leaves this module as an `AwsCallError` carrying only the operation and the error code.
SDK and service messages are dropped, and the SDK exception is kept neither as cause nor as context: AWS
validation messages echo the values they reject (a nonce, a client token), and a chained exception would carry
them into a traceback.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import TYPE_CHECKING, Any, cast

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import SecretStr, TypeAdapter, ValidationError

from .errors import ConfigurationError
from .models import ClientId, ClientToken

if TYPE_CHECKING:
    from collections.abc import Callable

    from aws_lambda_powertools.utilities.parameters import SecretsProvider
    from mypy_boto3_codepipeline import CodePipelineClient
    from mypy_boto3_codepipeline.type_defs import (
        ActionTypeIdTypeDef,
        JobDataTypeDef,
        JobTypeDef,
        ThirdPartyJobDataTypeDef,
        ThirdPartyJobTypeDef,
    )
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import DeleteMessageBatchRequestEntryTypeDef, MessageTypeDef

    from ..work.job import CurrentRevision
    from .config import CommonSettings
    from .models import ActionTypeId, QueryParam

# The AWS calls each function makes, for least privilege: the template grants exactly these (tests/template), and
# the integration tests check that each function calls nothing else. Both also read the client-token secret
# (secretsmanager:GetSecretValue) when CLIENT_TOKEN_SECRET_ID is set.
ACKNOWLEDGER_OPERATIONS = frozenset(
    {
        "codepipeline:PollForJobs",
        "codepipeline:AcknowledgeJob",
        "codepipeline:PollForThirdPartyJobs",
        "codepipeline:GetThirdPartyJobDetails",
        "codepipeline:AcknowledgeThirdPartyJob",
        # a claimed job the work queue refuses is failed back at once
        "codepipeline:PutJobFailureResult",
        "codepipeline:PutThirdPartyJobFailureResult",
        "sqs:SendMessage",
    }
)
WORKER_OPERATIONS = frozenset(
    {
        "codepipeline:GetJobDetails",
        "codepipeline:GetThirdPartyJobDetails",
        "codepipeline:PutJobSuccessResult",
        "codepipeline:PutJobFailureResult",
        "codepipeline:PutThirdPartyJobSuccessResult",
        "codepipeline:PutThirdPartyJobFailureResult",
    }
)
# Lambda's SQS event source receives and deletes for the worker function (SAM's SQSPollerPolicy); outside Lambda,
# `python -m codepipeline_worker.consume` makes these calls itself.
CONSUMER_OPERATIONS = frozenset({"sqs:ReceiveMessage", "sqs:DeleteMessageBatch"})
# The services the acknowledger's SDK session may call: its operations' services, the client-token secret's, and
# those botocore's own credential providers call when a role or an SSO profile is configured. Its built artifact
# carries botocore's data for these services only (tools/finish_build.py); any other fails its cold start.
ACKNOWLEDGER_SERVICES = frozenset(
    {operation.split(":")[0] for operation in ACKNOWLEDGER_OPERATIONS} | {"secretsmanager", "sts", "sso", "sso-oidc"}
)

# A job call is small; a slow or silent endpoint must not hold a thread for botocore's 60 s default.
CONNECT_TIMEOUT_S = 2
READ_TIMEOUT_S = 5


def worst_case_call_s(max_attempts: int) -> float:
    """The longest one call can take: every attempt timing out, and standard mode's longest pauses between them
    (at most min(20, 2**attempt) seconds)."""
    pauses: int = sum(min(20, 2**attempt) for attempt in range(1, max_attempts))
    return float(max_attempts * (CONNECT_TIMEOUT_S + READ_TIMEOUT_S) + pauses)


class AwsCallError(Exception):
    """An AWS call failed. `code` is the service's error code, or the botocore exception's class name."""

    def __init__(self, operation: str, code: str) -> None:
        super().__init__(f"{operation} failed: {code}")
        self.operation = operation
        self.code = code


def _call[R](operation: str, call: Callable[[], R]) -> R:
    """Make one SDK call; turn its failure into an AwsCallError that carries no SDK exception as context."""
    try:
        return call()
    except ClientError as exc:
        error = AwsCallError(operation, exc.response.get("Error", {}).get("Code") or "UnknownError")
    except BotoCoreError as exc:
        error = AwsCallError(operation, type(exc).__name__)
    raise error


def _config(settings: CommonSettings, pool: int) -> Config:
    return Config(
        retries={"mode": "standard", "total_max_attempts": settings.max_attempts},
        max_pool_connections=pool,
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        user_agent_extra=f"app/{settings.service_name}",
    )


@cache
def sdk_session() -> botocore.session.Session:
    """The execution environment's one SDK session: every client is made from it, so botocore lists its data,
    decodes the endpoints and resolves credentials once. A botocore session, not boto3's: boto3 adds nothing a
    client needs, and importing it (with s3transfer and multiprocessing) costs every cold start."""
    return botocore.session.get_session()


def create_codepipeline_client(settings: CommonSettings, pool: int = 10) -> CodePipelineClient:
    """A client built once per execution environment. The endpoint comes from the SDK's own settings
    (AWS_ENDPOINT_URL_CODEPIPELINE / AWS_ENDPOINT_URL), never from this code."""
    client = sdk_session().create_client("codepipeline", config=_config(settings, pool))
    return cast("CodePipelineClient", client)


def open_work_queue(queue_url: str, settings: CommonSettings, pool: int = 10) -> WorkQueue:
    client = sdk_session().create_client("sqs", config=_config(settings, pool))
    return WorkQueue(cast("SQSClient", client), queue_url)


class WorkQueue:
    """SQS: one message per claimed job. The body is a `work.JobMessage`, which holds no secret."""

    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self.url = queue_url

    def send(self, body: str) -> str:
        response = _call("SendMessage", lambda: self._client.send_message(QueueUrl=self.url, MessageBody=body))
        return response.get("MessageId", "")

    def receive(self, max_messages: int, wait_s: int) -> list[MessageTypeDef]:
        """Up to `max_messages` messages, long-polling for `wait_s` seconds (a container's or laptop's loop)."""
        response = _call(
            "ReceiveMessage",
            lambda: self._client.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=max_messages,
                WaitTimeSeconds=wait_s,
                MessageSystemAttributeNames=["All"],
            ),
        )
        return response.get("Messages", [])

    def delete(self, receipt_handles: list[str]) -> int:
        """Delete the messages; return how many SQS did not delete (they come back, and their work runs again,
        so the caller logs it)."""
        entries: list[DeleteMessageBatchRequestEntryTypeDef] = [
            {"Id": str(n), "ReceiptHandle": handle} for n, handle in enumerate(receipt_handles)
        ]
        not_deleted = 0
        for start in range(0, len(entries), 10):
            batch = entries[start : start + 10]
            response = _call(
                "DeleteMessageBatch",
                lambda batch=batch: self._client.delete_message_batch(QueueUrl=self.url, Entries=batch),  # type: ignore[misc]
            )
            not_deleted += len(response.get("Failed", []))
        return not_deleted


class CodePipelineAdapter:
    """CodePipeline's job-worker operations, with nonces and tokens passed as SecretStr."""

    def __init__(self, client: CodePipelineClient) -> None:
        self._client = client

    def acknowledge_job(self, job_id: str, nonce: SecretStr) -> str:
        response = _call(
            "AcknowledgeJob", lambda: self._client.acknowledge_job(jobId=job_id, nonce=nonce.get_secret_value())
        )
        return response.get("status", "")

    def acknowledge_third_party_job(self, job_id: str, nonce: SecretStr, client_token: SecretStr) -> str:
        response = _call(
            "AcknowledgeThirdPartyJob",
            lambda: self._client.acknowledge_third_party_job(
                jobId=job_id, nonce=nonce.get_secret_value(), clientToken=client_token.get_secret_value()
            ),
        )
        return response.get("status", "")

    def third_party_job_details(
        self, job_id: str, client_token: SecretStr
    ) -> tuple[SecretStr | None, ThirdPartyJobDataTypeDef]:
        """GetThirdPartyJobDetails: the nonce (while the job is Dispatched) and the job's data, which holds
        artifact credentials: callers copy out only what they need."""
        response = _call(
            "GetThirdPartyJobDetails",
            lambda: self._client.get_third_party_job_details(jobId=job_id, clientToken=client_token.get_secret_value()),
        )
        details = response.get("jobDetails", {})
        nonce = details.get("nonce")
        return (SecretStr(nonce) if nonce else None), details.get("data", {})

    def job_details(self, job_id: str) -> JobDataTypeDef:
        """GetJobDetails: the job's data, artifact credentials among it."""
        response = _call("GetJobDetails", lambda: self._client.get_job_details(jobId=job_id))
        return response.get("jobDetails", {}).get("data", {})

    def put_job_success_result(
        self,
        job_id: str,
        *,
        execution_details: dict[str, Any] | None = None,
        current_revision: CurrentRevision | None = None,
        continuation_token: str | None = None,
        output_variables: dict[str, str] | None = None,
    ) -> None:
        request = _success_request(execution_details, current_revision, continuation_token)
        if output_variables:
            request["outputVariables"] = output_variables
        _call("PutJobSuccessResult", lambda: self._client.put_job_success_result(jobId=job_id, **request))

    def put_job_failure_result(self, job_id: str, failure: dict[str, str]) -> None:
        _call(
            "PutJobFailureResult",
            lambda: self._client.put_job_failure_result(jobId=job_id, failureDetails=failure),  # type: ignore[arg-type]
        )

    def put_third_party_job_success_result(
        self,
        job_id: str,
        client_token: SecretStr,
        *,
        execution_details: dict[str, Any] | None = None,
        current_revision: CurrentRevision | None = None,
        continuation_token: str | None = None,
    ) -> None:
        request = _success_request(execution_details, current_revision, continuation_token)
        _call(
            "PutThirdPartyJobSuccessResult",
            lambda: self._client.put_third_party_job_success_result(
                jobId=job_id, clientToken=client_token.get_secret_value(), **request
            ),
        )

    def put_third_party_job_failure_result(self, job_id: str, client_token: SecretStr, failure: dict[str, str]) -> None:
        _call(
            "PutThirdPartyJobFailureResult",
            lambda: self._client.put_third_party_job_failure_result(
                jobId=job_id,
                clientToken=client_token.get_secret_value(),
                failureDetails=failure,  # type: ignore[arg-type]
            ),
        )

    def poll_for_jobs(
        self, target: ActionTypeId, max_batch_size: int, query_param: QueryParam | None
    ) -> list[JobTypeDef]:
        action_type: ActionTypeIdTypeDef = target.as_request()  # type: ignore[assignment]
        if query_param is None:
            response = _call(
                "PollForJobs", lambda: self._client.poll_for_jobs(actionTypeId=action_type, maxBatchSize=max_batch_size)
            )
        else:
            query = {query_param.key: query_param.value}
            response = _call(
                "PollForJobs",
                lambda: self._client.poll_for_jobs(
                    actionTypeId=action_type, maxBatchSize=max_batch_size, queryParam=query
                ),
            )
        return response.get("jobs", [])

    def poll_for_third_party_jobs(self, target: ActionTypeId, max_batch_size: int) -> list[ThirdPartyJobTypeDef]:
        action_type: ActionTypeIdTypeDef = target.as_request()  # type: ignore[assignment]
        response = _call(
            "PollForThirdPartyJobs",
            lambda: self._client.poll_for_third_party_jobs(actionTypeId=action_type, maxBatchSize=max_batch_size),
        )
        return response.get("jobs", [])


def _success_request(
    execution_details: dict[str, Any] | None,
    current_revision: CurrentRevision | None,
    continuation_token: str | None,
) -> dict[str, Any]:
    request: dict[str, Any] = {}
    if execution_details:
        request["executionDetails"] = execution_details
    if current_revision is not None:
        request["currentRevision"] = current_revision.model_dump(by_alias=True, exclude_none=True)
    if continuation_token is not None:
        request["continuationToken"] = continuation_token
    return request


class ClientTokenError(Exception):
    """No client token could be had for a partner job. `code` says why, `cause` is Secrets Manager's error code
    when there is one; the message never holds a token."""

    def __init__(self, code: str, detail: str, cause: str | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.cause = cause


# Secrets Manager answers that no retry will change: the configuration is wrong.
_PERMANENT_SECRET_ERRORS = frozenset(
    {
        "ResourceNotFoundException",
        "AccessDeniedException",
        "DecryptionFailure",
        "InvalidRequestException",
        "InvalidParameterException",
        "UnrecognizedClientException",
    }
)


_TOKEN_MAP: TypeAdapter[dict[ClientId, ClientToken]] = TypeAdapter(dict[ClientId, ClientToken])


class ClientTokenStore:
    """Partner client tokens, from a Secrets Manager secret whose JSON maps clientId to clientToken.

    Read through Powertools Parameters, which caches the secret for POWERTOOLS_PARAMETERS_MAX_AGE seconds;
    a clientId missing from the cached copy forces one fresh read, so a newly added client works at once.
    """

    def __init__(self, secret_id: str, provider: SecretsProvider) -> None:
        self._secret_id = secret_id
        self._provider = provider
        self._lock = threading.Lock()  # one GetSecretValue at a time, however many acknowledgements wait
        self._raw: object = None
        self._validated: dict[str, SecretStr] = {}

    def check(self) -> str | None:
        """Read the secret at cold start. A secret that does not exist, cannot be read or is not a map of
        clientId to clientToken fails the cold start; a passing fault (throttling, 5xx, the network) does not:
        its code is returned, and partner jobs read the secret again when they need it."""
        try:
            self._tokens(force_fetch=True)
        except ClientTokenError as error:
            problem = error
        else:
            return None
        if problem.code == "ClientTokenUnavailable" and problem.cause not in _PERMANENT_SECRET_ERRORS:
            return problem.cause or problem.code
        reason = f"{problem} ({problem.cause})" if problem.cause else str(problem)
        raise ConfigurationError(f"invalid configuration: CLIENT_TOKEN_SECRET_ID: {reason}")

    def token_for(self, client_id: str) -> SecretStr:
        tokens = self._tokens(force_fetch=False)
        if client_id not in tokens:
            tokens = self._tokens(force_fetch=True)
        if client_id not in tokens:
            raise ClientTokenError("ClientTokenNotFound", "the client-token secret has no entry for this clientId")
        return tokens[client_id]

    def _tokens(self, *, force_fetch: bool) -> dict[str, SecretStr]:
        from aws_lambda_powertools.utilities.parameters.exceptions import (  # noqa: PLC0415 - see create_client_token_store
            GetParameterError,
            TransformParameterError,
        )

        # Each ClientTokenError is raised outside its except block, so that the exception that may quote the
        # secret is not kept as its context.
        with self._lock:
            error: ClientTokenError | None = None
            try:
                raw: Any = self._provider.get(self._secret_id, transform="json", force_fetch=force_fetch)
            except TransformParameterError:
                error = ClientTokenError("ClientTokenSecretInvalid", "the client-token secret is not JSON")
            except GetParameterError as exc:
                error = ClientTokenError(
                    "ClientTokenUnavailable", "the client-token secret could not be read", _sdk_code(exc.__context__)
                )
            if error is not None:
                raise error
            if raw is not self._raw:  # Powertools hands back the same object while its cache holds it
                self._validated = self._validate(raw)
                self._raw = raw
            return self._validated

    @staticmethod
    def _validate(raw: Any) -> dict[str, SecretStr]:
        try:
            return _TOKEN_MAP.validate_python(raw)
        except ValidationError:
            pass
        raise ClientTokenError(
            "ClientTokenSecretInvalid",
            "the client-token secret must be a JSON object mapping clientId (a UUID) to clientToken",
        )


def _sdk_code(exc: BaseException | None) -> str | None:
    if isinstance(exc, ClientError):
        code: str | None = exc.response.get("Error", {}).get("Code")
        return code
    return type(exc).__name__ if exc is not None else None


def create_client_token_store(settings: CommonSettings) -> ClientTokenStore | None:
    """The token store, or None when no secret is configured. The caller checks the secret.

    Powertools Parameters is imported only here, so a worker without partner tokens does not pay for it (nor for
    boto3, which its providers import) at cold start. Its SecretsProvider is given a client of the one SDK
    session: left to itself, it would build a boto3 session of its own and load botocore's data a second time."""
    if settings.client_token_secret_id is None:
        return None
    from aws_lambda_powertools.utilities.parameters import SecretsProvider  # noqa: PLC0415 - cold start

    client = sdk_session().create_client("secretsmanager", config=_config(settings, 1))
    provider = SecretsProvider(boto3_client=cast("SecretsManagerClient", client))
    return ClientTokenStore(settings.client_token_secret_id, provider)
