"""The one module that owns the AWS SDK: CodePipeline's job operations, the work queue, the hand-off records in
the job table, and the client-token secret.

Every SDK failure leaves this module as an `AwsCallError` carrying only the operation, the error code, and
whether the call certainly had no effect.
SDK and service messages are dropped, and the SDK exception is kept neither as cause nor as context: AWS
validation messages echo the values they reject (a nonce, a client token), and a chained exception would carry
them into a traceback.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from functools import cache
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, cast

import botocore.handlers
import botocore.loaders
import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, EndpointConnectionError
from botocore.utils import EVENT_ALIASES
from pydantic import SecretStr, TypeAdapter, ValidationError

from .errors import ConfigurationError
from .models import ClientId, ClientToken

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from aws_lambda_powertools.utilities.parameters import SecretsProvider
    from botocore.client import BaseClient
    from mypy_boto3_codepipeline import CodePipelineClient
    from mypy_boto3_codepipeline.type_defs import (
        ActionTypeIdTypeDef,
        ArtifactDetailsTypeDef,
        JobDataTypeDef,
        JobTypeDef,
        ThirdPartyJobDataTypeDef,
        ThirdPartyJobTypeDef,
    )
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, WriteRequestTypeDef
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import (
        ChangeMessageVisibilityBatchRequestEntryTypeDef,
        DeleteMessageBatchRequestEntryTypeDef,
        MessageTypeDef,
        SendMessageBatchRequestEntryTypeDef,
    )

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
        # a poll's hand-offs, up to 10 messages a call (the IAM action is sqs:SendMessage)
        "sqs:SendMessageBatch",
        # the hand-off records (HandoffLedger): claims not yet certainly on the work queue
        "dynamodb:BatchWriteItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:Query",
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
# The work function's calls on the job table, for each job's once-only record (work.once, RunRecords).
IDEMPOTENCY_OPERATIONS = frozenset(
    {"dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}
)
# The dead-letter handler's calls: it fails back the job of each message the work queue set aside, and marks the
# job's once-only record done.
DEAD_LETTER_OPERATIONS = frozenset(
    {"codepipeline:PutJobFailureResult", "codepipeline:PutThirdPartyJobFailureResult", "dynamodb:UpdateItem"}
)
# The work function's own call on the work queue: the jobs an invocation had no time to start are made visible
# again at once (the IAM action is sqs:ChangeMessageVisibility).
WORK_QUEUE_OPERATIONS = frozenset({"sqs:ChangeMessageVisibilityBatch"})
# The stack's custom resource that registers the custom action type (RegisterCustomActionType=true).
REGISTRAR_OPERATIONS = frozenset(
    {
        "codepipeline:CreateCustomActionType",
        "codepipeline:DeleteCustomActionType",
        "codepipeline:ListActionTypes",
    }
)
# Lambda's SQS event source receives and deletes for the worker function (SAM's SQSPollerPolicy); outside Lambda,
# `python -m codepipeline_worker.consume` makes these calls itself.
CONSUMER_OPERATIONS = frozenset({"sqs:ReceiveMessage", "sqs:DeleteMessageBatch"})
# The client-token secret's read (CLIENT_TOKEN_SECRET_ID), both functions'.
TOKEN_SECRET_OPERATIONS = frozenset({"secretsmanager:GetSecretValue"})
# The services botocore's own credential providers call when a role or an SSO profile is configured.
CREDENTIAL_SERVICES = frozenset({"sts", "sso", "sso-oidc"})
# The services the acknowledger's SDK session may call: its operations' services, the client-token secret's, and
# the credential providers'. Its built artifact carries botocore's data for these services only, and for its own
# calls' services only the operations it is granted (tools/finish_build.py): any other service fails its cold start,
# any other operation has no method on its client.
ACKNOWLEDGER_SERVICES = frozenset(
    {operation.split(":")[0] for operation in ACKNOWLEDGER_OPERATIONS | TOKEN_SECRET_OPERATIONS} | CREDENTIAL_SERVICES
)

# Standard mode's pause before retry n (1-based) is at most min(2 ** (n - 1), 20) seconds (botocore.retries.standard:
# ExponentialBackoff, throttling scale 1 s). It may add up to 5 s for an x-amz-retry-after header: `_CallGuard`
# refuses any retry that would not end within the call's budget, so that no call outlasts `worst_case_call_s`.
_MAX_BACKOFF_S = 20.0
# CodePipeline's answers to a result report that mean the job is no longer this worker's to report (it completed,
# timed out, or does not exist): no retry will change them.
STALE_CODES = frozenset({"InvalidJobStateException", "JobNotFoundException", "InvalidJobException"})


def _pause_before_retry_s(retry: int) -> float:
    return min(2.0 ** (retry - 1), _MAX_BACKOFF_S)


def worst_case_call_s(max_attempts: int, connect_timeout_s: float, read_timeout_s: float) -> float:
    """The longest one call can take: every attempt connecting and waiting for its answer until the timeouts,
    and standard mode's longest pause before each retry."""
    pauses = sum(_pause_before_retry_s(retry) for retry in range(1, max_attempts))
    return max_attempts * (connect_timeout_s + read_timeout_s) + pauses


class AwsCallError(Exception):
    """An AWS call failed. `code` is the service's error code, or the botocore exception's class name.

    `certain` says whether the call certainly had no effect: every attempt was refused with an HTTP 4xx answer, or
    could not connect (nothing was sent). A read timeout, a connection closed after the request was sent, or a
    5xx answer may hide an effect the service did make: such a call's outcome is unknown (`certain` is False).
    """

    def __init__(self, operation: str, code: str, *, certain: bool = True) -> None:
        super().__init__(f"{operation} failed: {code}")
        self.operation = operation
        self.code = code
        self.certain = certain


# Exceptions raised before a request left: the service never saw it. (EndpointConnectionError is botocore's
# connection refused or DNS failure.) Any other exception may come after the request was sent.
_NOT_SENT = (EndpointConnectionError, ConnectTimeoutError)


def _attempt_had_no_effect(exception: BaseException | None, status: int | None) -> bool:
    if exception is not None:
        return isinstance(exception, _NOT_SENT)
    return status is not None and 400 <= status < 500


class _Attempts(threading.local):
    """The call this thread is making: when it started, and whether each attempt so far certainly had no effect.
    botocore retries inside one client call and shows only the last attempt's outcome; its event hooks show
    every attempt (`response-received`) and every retry decision (`needs-retry`)."""

    started: float | None = None
    no_effect: list[bool] | None = None


_attempts = _Attempts()


def _observe_attempt(
    exception: BaseException | None = None, response_dict: dict[str, Any] | None = None, **_: Any
) -> None:
    if _attempts.no_effect is not None:
        status = response_dict.get("status_code") if response_dict else None
        _attempts.no_effect.append(_attempt_had_no_effect(exception, status))


def _guard(client: BaseClient, settings: CommonSettings) -> None:
    """Watch every attempt of the client's calls, and refuse a retry that could end past the call's budget
    (`worst_case_call_s`): botocore's own handler decides every other retry."""
    attempt_s = settings.connect_timeout_s + settings.read_timeout_s
    budget_s = worst_case_call_s(settings.max_attempts, settings.connect_timeout_s, settings.read_timeout_s)

    def refuse_late_retry(attempts: int, **_: Any) -> bool | None:
        started = _attempts.started
        if started is not None and time.monotonic() + _pause_before_retry_s(attempts) + attempt_s > started + budget_s:
            return False
        return None

    service = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register(f"response-received.{service}", _observe_attempt)
    client.meta.events.register_first(f"needs-retry.{service}", refuse_late_retry)  # type: ignore[arg-type]


def _call[R](operation: str, call: Callable[[], R], attempts: list[bool] | None = None) -> R:
    """Make one SDK call; turn its failure into an AwsCallError that carries no SDK exception as context and
    says whether every attempt certainly had no effect. `attempts`, if given, is filled with whether each attempt
    certainly had no effect (none for a stubbed client)."""
    outcomes: list[bool] = [] if attempts is None else attempts
    _attempts.no_effect = outcomes
    _attempts.started = time.monotonic()
    try:
        return call()
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code") or "UnknownError"
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        # A stubbed client answers without an attempt: its answer is then the only one.
        error = AwsCallError(operation, code, certain=all(outcomes or [_attempt_had_no_effect(None, status)]))
    except BotoCoreError as exc:
        certain = all(outcomes or [_attempt_had_no_effect(exc, None)])
        error = AwsCallError(operation, type(exc).__name__, certain=certain)
    finally:
        _attempts.no_effect = None
        _attempts.started = None
    raise error


def _config(
    settings: CommonSettings,
    pool: int,
    long_poll_s: int = 0,
    max_attempts: int | None = None,
    *,
    validated: bool = False,
) -> Config:
    """`validated`: every value the client is called with comes from this project's validated models, so
    botocore's own check of each call's parameters against the service model (a walk of the input shape on every
    call) is skipped: botocore's Config documents `parameter_validation` for exactly this. A client that can be
    called with a user's values (the work side's results, artifacts) keeps it."""
    return Config(
        retries={"mode": "standard", "total_max_attempts": max_attempts or settings.max_attempts},
        max_pool_connections=pool,
        connect_timeout=settings.connect_timeout_s,
        read_timeout=settings.read_timeout_s + long_poll_s,
        user_agent_extra=f"app/{settings.service_name}",
        parameter_validation=not validated,
    )


@cache
def sdk_session() -> botocore.session.Session:
    """The execution environment's one SDK session: every client is made from it, so botocore lists its data,
    decodes the endpoints and resolves credentials once. A botocore session, not boto3's: boto3 adds nothing a
    client needs, and importing it (with s3transfer and multiprocessing) costs every cold start.

    When botocore holds data for the acknowledger's services alone (its built artifact: tools/finish_build.py),
    the session registers botocore's built-in handlers for those services only, and those for every service: a
    handler of another service could never fire, since no client of it can be made, yet registering all of them
    (each one's signature checked, its event name aliased) and routing events past them cost every cold start.
    Anywhere else (the work function's artifact, a development environment) it is botocore's own session."""
    found: set[str] = set()
    # The scan stops at the first other service: a whole botocore is not listed (445 folders, about 1 ms) here.
    for service in _sdk_data_folders():
        if service not in ACKNOWLEDGER_SERVICES:
            return botocore.session.get_session()
        found.add(service)
    return _ScopedSession(frozenset(found))


def sdk_data_services() -> frozenset[str]:
    """The services botocore has data for: the folders of its data paths (its own, ~/.aws/models, AWS_DATA_PATH's)."""
    return frozenset(_sdk_data_folders())


def _sdk_data_folders() -> Iterator[str]:
    paths = [botocore.loaders.Loader.BUILTIN_DATA_PATH, botocore.loaders.Loader.CUSTOMER_DATA_PATH]
    extra = os.environ.get("AWS_DATA_PATH", "")
    paths += [os.path.expanduser(os.path.expandvars(path)) for path in extra.split(os.pathsep) if path]
    for path in paths:
        if os.path.isdir(path):
            with os.scandir(path) as entries:
                yield from (entry.name for entry in entries if entry.is_dir() and entry.name != "__pycache__")


class _ScopedSession(botocore.session.Session):
    """A botocore session whose built-in handlers are those that every service's events or `services`' match:
    "<event>", "<event>.<service>...", "docs.<section>.<service>...". The rest of the session is botocore's, its
    initializers (Powertools' User-Agent hook) run after these handlers as after all of them."""

    def __init__(self, services: frozenset[str]) -> None:
        # a service's name in botocore's event names, where its aliases give another (secretsmanager's)
        self._event_services = services | {EVENT_ALIASES.get(service, service) for service in services} | {"*"}
        super().__init__()

    def _register_builtin_handlers(self, events: Any) -> None:
        """botocore's own registration (Session._register_builtin_handlers), for the handlers kept."""
        for spec in botocore.handlers.BUILTIN_HANDLERS:
            parts = spec[0].split(".")
            at = 2 if parts[0] == "docs" else 1
            if len(parts) > at and parts[at] not in self._event_services:
                continue
            if len(spec) == 2:
                self.register(spec[0], spec[1])
            elif spec[2] is botocore.handlers.REGISTER_FIRST:
                events.register_first(spec[0], spec[1])
            elif spec[2] is botocore.handlers.REGISTER_LAST:
                events.register_last(spec[0], spec[1])


def _client(
    service: Literal["codepipeline", "sqs", "dynamodb"],
    settings: CommonSettings,
    pool: int,
    long_poll_s: int = 0,
    *,
    max_attempts: int | None = None,
    session: botocore.session.Session | None = None,
    validated: bool = False,
) -> Any:
    """A client built once per execution environment, every attempt of every call watched. The endpoint comes
    from the SDK's own settings (AWS_ENDPOINT_URL_<SERVICE> / AWS_ENDPOINT_URL), never from this code.
    `validated`: see `_config`."""
    client = (session or sdk_session()).create_client(
        service, config=_config(settings, pool, long_poll_s, max_attempts, validated=validated)
    )
    _guard(client, settings)
    return client


def configured_region() -> str | None:
    """The region the SDK would use (AWS_REGION, AWS_DEFAULT_REGION or the profile's), or None."""
    region: str | None = sdk_session().get_config_variable("region")
    return region


def create_codepipeline_client(
    settings: CommonSettings, pool: int = 10, *, validated: bool = False
) -> CodePipelineClient:
    """`validated`: see `_config`."""
    client: CodePipelineClient = _client("codepipeline", settings, pool, validated=validated)
    return client


def open_work_queue(
    queue_url: str,
    settings: CommonSettings,
    pool: int = 10,
    *,
    long_poll_s: int = 0,
    max_attempts: int | None = None,
    validated: bool = False,
) -> WorkQueue:
    """The work queue. A consumer that long-polls for `long_poll_s` seconds waits that much longer for answers;
    `max_attempts` overrides AWS_MAX_ATTEMPTS; `validated`: see `_config`."""
    client: SQSClient = _client("sqs", settings, pool, long_poll_s, max_attempts=max_attempts, validated=validated)
    return WorkQueue(client, queue_url)


def create_dynamodb_client(
    settings: CommonSettings, pool: int = 10, *, lazy: bool = False, validated: bool = False
) -> DynamoDBClient:
    """The job table's client. `lazy`: made at its first call, not now: the acknowledger reaches the table only
    on a poll or when something went wrong, and a direct job's cold start should not pay for the client (about
    20 ms of CPU: DynamoDB's service model and endpoint rules). `validated`: see `_config`."""
    if lazy:
        session = sdk_session()  # the session of the moment the client is asked for, not of its first call
        return cast(
            "DynamoDBClient",
            _LazyClient(lambda: _client("dynamodb", settings, pool, session=session, validated=validated)),
        )
    client: DynamoDBClient = _client("dynamodb", settings, pool, validated=validated)
    return client


class _LazyClient:
    """A client made at its first use, once, whichever thread comes first."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._client: Any = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._make()
                client = self._client
        return getattr(client, name)


class WorkQueue:
    """SQS: one message per claimed job. The body is a `work.JobMessage`, which holds no secret."""

    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self.url = queue_url

    @property
    def fifo(self) -> bool:
        return self.url.endswith(".fifo")

    def send(self, body: str, dedup_id: str) -> str:
        """Put one message on the queue. On a FIFO queue `dedup_id` is both its deduplication id (a message sent
        again with it within 5 minutes is accepted but not delivered: the retries of an ambiguous send collapse)
        and its message group (one per job: no job waits behind another's message)."""
        if self.fifo:
            response = _call(
                "SendMessage",
                lambda: self._client.send_message(
                    QueueUrl=self.url, MessageBody=body, MessageGroupId=dedup_id, MessageDeduplicationId=dedup_id
                ),
            )
        else:
            response = _call("SendMessage", lambda: self._client.send_message(QueueUrl=self.url, MessageBody=body))
        return response.get("MessageId", "")

    def send_batch(self, messages: Sequence[tuple[str, str]]) -> list[str | AwsCallError]:
        """Put up to SQS_BATCH_ENTRIES messages (body, dedup id), their bodies within SEND_BATCH_BYTES together,
        on the queue in one SendMessageBatch call; each entry as `send` would send it (on a FIFO queue, the dedup
        id as its group and deduplication id), its Id its index. Returns, per message, its MessageId, or the
        error that kept it off the queue: an entry SQS lists in `Failed` was certainly refused; a call that failed
        as a whole gives every message its error, certain as `_call` judged it; an entry the answer does not name
        may be on the queue (not certain). An entry listed in `Failed` after the call was retried is certain only
        if no earlier attempt may have stored it (each attempt sends every entry)."""
        entries: list[SendMessageBatchRequestEntryTypeDef] = []
        for n, (body, dedup_id) in enumerate(messages):
            entry: SendMessageBatchRequestEntryTypeDef = {"Id": str(n), "MessageBody": body}
            if self.fifo:
                entry["MessageGroupId"] = entry["MessageDeduplicationId"] = dedup_id
            entries.append(entry)
        attempts: list[bool] = []
        try:
            response = _call(
                "SendMessageBatch",
                lambda: self._client.send_message_batch(QueueUrl=self.url, Entries=entries),
                attempts,
            )
        except AwsCallError as exc:
            return [exc] * len(entries)
        outcomes: dict[str, str | AwsCallError] = {
            ok["Id"]: ok.get("MessageId", "") for ok in response.get("Successful", [])
        }
        certain = all(attempts[:-1])  # the answer is the last attempt's
        for failed in response.get("Failed", []):
            code = failed.get("Code") or "UnknownError"
            outcomes[failed["Id"]] = AwsCallError("SendMessageBatch", code, certain=certain)
        unanswered = AwsCallError("SendMessageBatch", "InvalidServiceResponse", certain=False)
        return [outcomes.get(entry["Id"], unanswered) for entry in entries]

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
        return _failed_in_batches(
            "DeleteMessageBatch",
            entries,
            lambda batch: self._client.delete_message_batch(QueueUrl=self.url, Entries=batch),
        )

    def release(self, receipt_handles: list[str]) -> int:
        """Make received messages visible again at once (visibility timeout 0), rather than at the end of their
        visibility timeout; return how many SQS did not release (they come back later, which is also safe)."""
        entries: list[ChangeMessageVisibilityBatchRequestEntryTypeDef] = [
            {"Id": str(n), "ReceiptHandle": handle, "VisibilityTimeout": 0} for n, handle in enumerate(receipt_handles)
        ]
        return _failed_in_batches(
            "ChangeMessageVisibilityBatch",
            entries,
            lambda batch: self._client.change_message_visibility_batch(QueueUrl=self.url, Entries=batch),
        )


# An SQS batch call takes at most 10 entries; SendMessageBatch's bodies at most 256 KiB together, the batch payload
# limit of a queue whose maximum message size is 256 KiB (SQS's default before 2025; 1 MiB now). A queue allowing
# more only makes batches split a little earlier; a body larger than this alone goes in a batch of its own.
SQS_BATCH_ENTRIES = 10
SEND_BATCH_BYTES = 256 * 1024


def _failed_in_batches[E](operation: str, entries: list[E], call: Callable[[list[E]], Any]) -> int:
    """One SQS batch call per 10 entries (the API's limit); how many entries SQS reported failed."""
    failed = 0
    for start in range(0, len(entries), SQS_BATCH_ENTRIES):
        batch = entries[start : start + SQS_BATCH_ENTRIES]
        response = _call(operation, lambda batch=batch: call(batch))  # type: ignore[misc]
        failed += len(response.get("Failed", []))
    return failed


# The hand-off records' index holds them all under one partition, sorted by lease: the stale ones are one Query.
HANDOFF_INDEX = "pending"
HANDOFF_PARTITION = "handoff#pending"
# A record not settled after a day is left to DynamoDB's TTL: CodePipeline has timed its job out long before.
HANDOFF_RECORD_TTL_S = 24 * 3600
_BATCH_WRITE_LIMIT = 25
HandoffState = Literal["claiming", "claimed"]


class HandoffRecord(NamedTuple):
    """A job this worker claims, or has claimed, whose message is not certainly on the work queue.

    `claiming`: the claim's outcome is not known yet (written before a polled job's claim, or after a claim
    whose answer was lost); `nonce` is kept for custom jobs, so that AcknowledgeJob can tell whether the claim
    happened (a partner job is asked with GetThirdPartyJobDetails instead). `claimed`: the job is this worker's;
    only its message is missing. `message` is the work-queue body, which holds no secret. `lease_ms` (epoch
    milliseconds) is when the invocation that wrote it ends: until then no one else touches it.

    `key` names this record alone: `handoff#<type>#<jobId>#<a random id>` (`handoff_key`), drawn when the record
    is made and kept by every rewrite of it (`_replace`: its own invocation's, or the reconciler's that leased it).
    Two invocations that record the same job (a poll whose claim's answer was lost, and a late event with a stale
    nonce) write two records, so neither replaces nor deletes the other's: each is settled by what it holds.

    A NamedTuple, not a frozen dataclass: see RunRecord.
    """

    key: str
    job_id: str
    job_type: str
    state: HandoffState
    message: str
    lease_ms: int
    nonce: SecretStr | None = None
    client_id: str | None = None


def handoff_key(job_type: str, job_id: str) -> str:
    """A new hand-off record's key: its job's, and a random id of its own (HandoffRecord)."""
    return f"handoff#{job_type}#{job_id}#{uuid.uuid4().hex}"


class HandoffLedger:
    """The hand-off records in the job table (DynamoDB): every key starts with `handoff#`, the only keys the
    acknowledger's role may touch."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self.table_name = table_name

    def write(self, records: Sequence[HandoffRecord], deletes: Sequence[str] = ()) -> list[str]:
        """Put records and delete keys, 25 per request; return the keys whose write DynamoDB left unprocessed."""
        requests: list[WriteRequestTypeDef] = [{"PutRequest": {"Item": self._item(r)}} for r in records]
        requests += [{"DeleteRequest": {"Key": {"id": {"S": key}}}} for key in deletes]
        left: list[str] = []
        for start in range(0, len(requests), _BATCH_WRITE_LIMIT):
            batch = requests[start : start + _BATCH_WRITE_LIMIT]
            response = _call(
                "BatchWriteItem",
                lambda batch=batch: self._client.batch_write_item(RequestItems={self.table_name: batch}),  # type: ignore[misc]
            )
            for request in response.get("UnprocessedItems", {}).get(self.table_name, []):
                item = request.get("PutRequest", {}).get("Item") or request.get("DeleteRequest", {}).get("Key", {})
                left.append(str(item["id"].get("S")))
        return left

    def put(self, record: HandoffRecord) -> None:
        _call("PutItem", lambda: self._client.put_item(TableName=self.table_name, Item=self._item(record)))

    def delete(self, key: str) -> None:
        _call("DeleteItem", lambda: self._client.delete_item(TableName=self.table_name, Key={"id": {"S": key}}))

    def take(self, record: HandoffRecord, lease_ms: int) -> bool:
        """Lease a stale record to this invocation, unless another took it first (its lease changed)."""
        try:
            _call(
                "UpdateItem",
                lambda: self._client.update_item(
                    TableName=self.table_name,
                    Key={"id": {"S": record.key}},
                    UpdateExpression="SET #lease = :lease",
                    ConditionExpression="#lease = :seen",
                    ExpressionAttributeNames={"#lease": "lease"},
                    ExpressionAttributeValues={":lease": {"N": str(lease_ms)}, ":seen": {"N": str(record.lease_ms)}},
                ),
            )
        except AwsCallError as error:
            if error.code == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def stale(self, now_ms: int, limit: int) -> list[HandoffRecord]:
        """Up to `limit` records whose lease has ended, oldest lease first (the index is eventually consistent:
        a record written a moment ago may show at the next look)."""
        response = _call(
            "Query",
            lambda: self._client.query(
                TableName=self.table_name,
                IndexName=HANDOFF_INDEX,
                KeyConditionExpression="#pending = :pending AND #lease < :now",
                ExpressionAttributeNames={"#pending": "pending", "#lease": "lease"},
                ExpressionAttributeValues={":pending": {"S": HANDOFF_PARTITION}, ":now": {"N": str(now_ms)}},
                Limit=limit,
            ),
        )
        return [record for item in response.get("Items", []) if (record := self._record(item)) is not None]

    @staticmethod
    def _item(record: HandoffRecord) -> dict[str, AttributeValueTypeDef]:
        item: dict[str, AttributeValueTypeDef] = {
            "id": {"S": record.key},
            "pending": {"S": HANDOFF_PARTITION},
            "lease": {"N": str(record.lease_ms)},
            "state": {"S": record.state},
            "jobId": {"S": record.job_id},
            "jobType": {"S": record.job_type},
            "message": {"S": record.message},
            "expiration": {"N": str(int(time.time()) + HANDOFF_RECORD_TTL_S)},
        }
        if record.nonce is not None:
            item["nonce"] = {"S": record.nonce.get_secret_value()}
        if record.client_id is not None:
            item["clientId"] = {"S": record.client_id}
        return item

    @staticmethod
    def _record(item: dict[str, Any]) -> HandoffRecord | None:
        """A record read back, or None for an item of another shape (never raised: one bad item must not stop
        the others)."""
        try:
            state = item["state"]["S"]
            if state not in ("claiming", "claimed"):
                return None
            return HandoffRecord(
                key=item["id"]["S"],
                job_id=item["jobId"]["S"],
                job_type=item["jobType"]["S"],
                state=state,
                message=item["message"]["S"],
                lease_ms=int(item["lease"]["N"]),
                nonce=SecretStr(item["nonce"]["S"]) if "nonce" in item else None,
                client_id=item["clientId"]["S"] if "clientId" in item else None,
            )
        except (KeyError, TypeError, ValueError):
            return None


class RunRecord(NamedTuple):
    """A job's once-only record as the table holds it (work.once). A NamedTuple, not a frozen dataclass: see
    shared.deadline.Deadline."""

    status: Literal["INPROGRESS", "COMPLETED"]
    data: str | None = None


class RunRecords:
    """Each job's once-only record in the job table (work.once), laid out as Powertools Idempotency lays out its
    DynamoDB records: `id`, `status` (INPROGRESS or COMPLETED), `data` (the stored answer, JSON), `expiration`
    (epoch seconds, the table's TTL) and `in_progress_expiration` (epoch milliseconds)."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self.table_name = table_name

    def begin(self, key: str, lifetime_s: int, in_progress_until_ms: int) -> RunRecord | None:
        """Write the key INPROGRESS until `in_progress_until_ms`, unless a live record holds it: None when written,
        else that record. A record is live until its `expiration`, an INPROGRESS one until its in-progress expiry
        too (the run that wrote it was killed). Raises AwsCallError when the table cannot be written."""
        now = time.time()
        return _call("PutItem", lambda: self._put_unless_live(key, now, lifetime_s, in_progress_until_ms))

    def _put_unless_live(self, key: str, now: float, lifetime_s: int, in_progress_until_ms: int) -> RunRecord | None:
        try:
            self._client.put_item(
                TableName=self.table_name,
                Item={
                    "id": {"S": key},
                    "status": {"S": "INPROGRESS"},
                    "expiration": {"N": str(int(now) + lifetime_s)},
                    "in_progress_expiration": {"N": str(in_progress_until_ms)},
                },
                ConditionExpression=(
                    "attribute_not_exists(#id) OR #expiry < :now OR "
                    "(#status = :inprogress AND attribute_exists(#in_progress_expiry) AND "
                    "#in_progress_expiry < :now_in_millis)"
                ),
                ExpressionAttributeNames={
                    "#id": "id",
                    "#expiry": "expiration",
                    "#in_progress_expiry": "in_progress_expiration",
                    "#status": "status",
                },
                ExpressionAttributeValues={
                    ":now": {"N": str(int(now))},
                    ":now_in_millis": {"N": str(int(now * 1000))},
                    ":inprogress": {"S": "INPROGRESS"},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            item = cast("dict[str, Any] | None", exc.response.get("Item"))
        else:
            return None
        if item is None:  # an endpoint that does not return the record: read it
            item = self._client.get_item(TableName=self.table_name, Key={"id": {"S": key}}, ConsistentRead=True).get(
                "Item"
            )
        if item is None:  # deleted since: the run that held it did not finish; its next delivery runs it
            return RunRecord("INPROGRESS")
        status = item.get("status", {}).get("S")
        data = item.get("data", {}).get("S")
        return RunRecord("COMPLETED", data) if status == "COMPLETED" else RunRecord("INPROGRESS")

    def complete(self, key: str, data: str, lifetime_s: int) -> None:
        """Store the answer and mark the record COMPLETED (writing it if it is missing)."""
        _call(
            "UpdateItem",
            lambda: self._client.update_item(
                TableName=self.table_name,
                Key={"id": {"S": key}},
                UpdateExpression="SET #response_data = :response_data, #expiry = :expiry, #status = :status",
                ExpressionAttributeNames={"#response_data": "data", "#expiry": "expiration", "#status": "status"},
                ExpressionAttributeValues={
                    ":response_data": {"S": data},
                    ":expiry": {"N": str(int(time.time()) + lifetime_s)},
                    ":status": {"S": "COMPLETED"},
                },
            ),
        )

    def forget(self, key: str) -> None:
        _call("DeleteItem", lambda: self._client.delete_item(TableName=self.table_name, Key={"id": {"S": key}}))


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


@cache
def _token_map() -> TypeAdapter[dict[ClientId, ClientToken]]:
    """The secret's shape, built at its first read: a function without a client-token secret never builds it."""
    return TypeAdapter(dict[ClientId, ClientToken])


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
            return _token_map().validate_python(raw)
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


class ActionTypeRegistry:
    """Custom action types: register one, read what is registered, delete one."""

    def __init__(self, client: CodePipelineClient) -> None:
        self._client = client

    def create(self, action_type: ActionTypeId, properties: list[dict[str, Any]], max_artifacts: int) -> None:
        """CreateCustomActionType: the action with its configuration properties, taking 0 to `max_artifacts`
        input and output artifacts."""
        artifacts: ArtifactDetailsTypeDef = {"minimumCount": 0, "maximumCount": max_artifacts}
        _call(
            "CreateCustomActionType",
            lambda: self._client.create_custom_action_type(
                category=action_type.category,
                provider=action_type.provider,
                version=action_type.version,
                configurationProperties=properties,  # type: ignore[arg-type]
                inputArtifactDetails=artifacts,
                outputArtifactDetails=artifacts,
            ),
        )

    def delete(self, action_type: ActionTypeId) -> None:
        _call(
            "DeleteCustomActionType",
            lambda: self._client.delete_custom_action_type(
                category=action_type.category, provider=action_type.provider, version=action_type.version
            ),
        )

    def registered(self, action_type: ActionTypeId) -> list[dict[str, Any]] | None:
        """The configuration properties the custom action type is registered with, or None when it is not."""
        token: str | None = None
        while True:
            response = _call(
                "ListActionTypes",
                lambda token=token: self._client.list_action_types(  # type: ignore[misc]
                    actionOwnerFilter="Custom", **({"nextToken": token} if token else {})
                ),
            )
            for registered in response.get("actionTypes", []):
                if registered["id"] == action_type.as_request():
                    return [dict(p) for p in registered.get("actionConfigurationProperties", [])]
            token = response.get("nextToken")
            if not token:
                return None
