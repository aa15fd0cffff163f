"""The wire protocol and botocore's model: what the real service rejects, the endpoint rejects the same way."""

from __future__ import annotations

import datetime
import http.client
import json
import resource
import select
import socket
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any, cast

import botocore.session
import cbor2
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from codepipeline_local import LocalCodePipeline
from codepipeline_local.model import check_response, operation
from tests.endpoint.conftest import CUSTOM

if TYPE_CHECKING:
    from mypy_boto3_codepipeline import CodePipelineClient

JOB_ID = "11111111-abcd-1111-abcd-111111abcdef"


def post(url: str, body: bytes, target: str | None) -> tuple[int, dict[str, Any], str]:
    """A raw request, as any SDK would send it; returns status, JSON body and content type."""
    headers = {"Content-Type": "application/x-amz-json-1.1"}
    if target is not None:
        headers["X-Amz-Target"] = target
    request = urllib.request.Request(f"{url}/", data=body, headers=headers, method="POST")  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback
            return response.status, json.loads(response.read()), response.headers["Content-Type"]
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), error.headers["Content-Type"]


def call(url: str, operation_name: str, params: Any) -> tuple[int, dict[str, Any]]:
    status, body, _ = post(url, json.dumps(params).encode(), f"CodePipeline_20150709.{operation_name}")
    return status, body


@pytest.mark.parametrize(
    ("operation_name", "params", "code", "message"),
    [
        (
            "AcknowledgeJob",
            {"nonce": "3"},
            "ValidationException",
            "Value null at 'jobId' failed to satisfy constraint: Member must not be null",
        ),
        (
            "AcknowledgeJob",
            {"jobId": JOB_ID, "nonce": "n" * 51},
            "ValidationException",
            "at 'nonce' failed to satisfy constraint: Member must have length less than or equal to 50",
        ),
        (
            "AcknowledgeJob",
            {"jobId": JOB_ID, "nonce": ""},
            "ValidationException",
            "Member must have length greater than or equal to 1",
        ),
        (
            "AcknowledgeJob",
            {"jobId": "f4f4ff82-2d11-EXAMPLE", "nonce": "3"},
            "ValidationException",
            "at 'jobId' failed to satisfy constraint: Member must satisfy regular expression pattern",
        ),
        (
            "AcknowledgeJob",
            {"jobId": JOB_ID.upper(), "nonce": "3"},
            "ValidationException",
            "regular expression pattern",
        ),
        (
            "AcknowledgeThirdPartyJob",
            {"jobId": "j" * 513, "nonce": "3", "clientToken": "t"},
            "ValidationException",
            "length less than or equal to 512",
        ),
        (
            "AcknowledgeThirdPartyJob",
            {"jobId": "j", "nonce": "3", "clientToken": "t" * 257},
            "ValidationException",
            "length less than or equal to 256",
        ),
        (
            "PollForJobs",
            {"actionTypeId": {**CUSTOM, "owner": "custom"}},
            "ValidationException",
            "at 'actionTypeId.owner' failed to satisfy constraint: "
            "Member must satisfy enum value set: [AWS, ThirdParty, Custom]",
        ),
        (
            "PollForJobs",
            {"actionTypeId": {**CUSTOM, "provider": "P" * 36}},
            "ValidationException",
            "at 'actionTypeId.provider'",
        ),
        (
            "PollForJobs",
            {"actionTypeId": {**CUSTOM, "version": "1.0"}},
            "ValidationException",
            "at 'actionTypeId.version'",
        ),
        (
            "PollForJobs",
            {"actionTypeId": CUSTOM, "maxBatchSize": 0},
            "ValidationException",
            "at 'maxBatchSize' failed to satisfy constraint: Member must have value greater than or equal to 1",
        ),
        (
            "PollForJobs",
            {"actionTypeId": CUSTOM, "queryParam": {"a": "1", "b": "2"}},
            "ValidationException",
            "at 'queryParam'",
        ),
        (
            "PollForJobs",
            {"actionTypeId": CUSTOM, "queryParam": {"ProjectName": "my project"}},
            "ValidationException",
            "at 'queryParam.ProjectName'",
        ),
        (
            "PollForJobs",
            {"actionTypeId": CUSTOM, "maxBatchSize": "ten"},
            "SerializationException",
            "Expected number at 'maxBatchSize'",
        ),
        (
            "PollForJobs",
            {"actionTypeId": "Custom/Build/MyTool/1"},
            "SerializationException",
            "Expected structure at 'actionTypeId'",
        ),
        (
            "PutJobFailureResult",
            {"jobId": JOB_ID, "failureDetails": {"type": "Oops", "message": "m"}},
            "ValidationException",
            "at 'failureDetails.type'",
        ),
        ("AcknowledgeJob", ["not", "an", "object"], "SerializationException", "structure was expected"),
    ],
)
def test_requests_the_service_would_reject_are_rejected(
    endpoint: LocalCodePipeline, operation_name: str, params: Any, code: str, message: str
) -> None:
    status, body = call(endpoint.url, operation_name, params)

    assert status == 400
    assert body["__type"] == code
    assert message in body["message"]


def test_every_violation_is_counted_in_one_answer(endpoint: LocalCodePipeline) -> None:
    _, body = call(endpoint.url, "AcknowledgeJob", {"jobId": "bad", "nonce": ""})
    assert body["message"].startswith("2 validation errors detected: ")


def test_botocore_sends_what_only_the_service_rejects(client: CodePipelineClient) -> None:
    # botocore checks minimum lengths only: an over-long nonce reaches the service, which rejects it
    with pytest.raises(ClientError) as caught:
        client.acknowledge_job(jobId=JOB_ID, nonce="n" * 51)
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


@pytest.mark.parametrize(
    ("body", "target", "code"),
    [
        (b"{}", None, "UnknownOperationException"),
        (b"{}", "CodePipeline_20150709.NoSuchOperation", "UnknownOperationException"),
        (b"{}", "Other_20200101.PollForJobs", "UnknownOperationException"),
        (b"{not json", "CodePipeline_20150709.AcknowledgeJob", "SerializationException"),
    ],
)
def test_unknown_operations_and_bodies_are_refused(
    endpoint: LocalCodePipeline, body: bytes, target: str | None, code: str
) -> None:
    status, answer, content_type = post(endpoint.url, body, target)

    assert (status, answer["__type"]) == (400, code)
    assert content_type == "application/x-amz-json-1.1"


def test_answers_are_json_1_1_with_a_request_id(endpoint: LocalCodePipeline) -> None:
    endpoint.store.add_action_type("Custom/Build/MyTool/1")
    request = urllib.request.Request(  # noqa: S310 - loopback
        f"{endpoint.url}/",
        data=json.dumps({"actionTypeId": CUSTOM}).encode(),
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "CodePipeline_20150709.PollForJobs"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/x-amz-json-1.1"
        assert response.headers["x-amzn-RequestId"]
        assert json.loads(response.read()) == {"jobs": []}


def test_answers_are_held_to_the_output_shapes() -> None:
    op = operation("AcknowledgeJob")
    assert check_response(op, {"status": "InProgress"}) == {"status": "InProgress"}
    with pytest.raises(AssertionError, match="does not fit the model"):
        check_response(op, {"status": "Claimed"})
    with pytest.raises(AssertionError, match="Unknown member"):
        check_response(op, {"status": "InProgress", "nonce": "3"})
    with pytest.raises(AssertionError):
        check_response(operation("PutJobSuccessResult"), {"unexpected": 1})


def test_the_endpoint_listens_on_loopback_only() -> None:
    with pytest.raises(ValueError, match="loopback"):
        LocalCodePipeline(host="0.0.0.0")  # noqa: S104 - the point of the test


# -- Smithy RPC v2 CBOR: the protocol botocore's model lists first ------------------------------------------------


@pytest.fixture(scope="module")
def cbor_data_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """botocore's own CodePipeline model, listing only smithy-rpc-v2-cbor: what a client that prefers it sends."""
    loader = botocore.session.get_session().get_component("data_loader")
    model = loader.load_service_model("codepipeline", "service-2")
    model["metadata"]["protocols"] = ["smithy-rpc-v2-cbor"]
    model["metadata"]["protocol"] = "smithy-rpc-v2-cbor"
    root = tmp_path_factory.mktemp("botocore-data")
    folder = root / "codepipeline" / model["metadata"]["apiVersion"]
    folder.mkdir(parents=True)
    (folder / "service-2.json").write_text(json.dumps(model))
    return str(root)


@pytest.fixture
def cbor_client(endpoint: LocalCodePipeline, cbor_data_path: str) -> CodePipelineClient:
    session = botocore.session.get_session()
    session.set_config_variable("data_path", cbor_data_path)
    client = session.create_client(
        "codepipeline",
        endpoint_url=endpoint.url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )
    assert client.meta.service_model.resolved_protocol == "smithy-rpc-v2-cbor"
    return cast("CodePipelineClient", client)


def test_a_cbor_client_runs_the_life_cycle(endpoint: LocalCodePipeline, cbor_client: CodePipelineClient) -> None:
    job_id = endpoint.store.create_job("Custom/Build/MyTool/1", configuration={"ProjectName": "web"})
    sent: list[str] = []
    cbor_client.meta.events.register("before-send", lambda request, **_: sent.append(request.url))

    [job] = cbor_client.poll_for_jobs(actionTypeId=CUSTOM)["jobs"]
    assert job["data"]["actionConfiguration"]["configuration"] == {"ProjectName": "web"}
    with pytest.raises(cbor_client.exceptions.InvalidNonceException):
        cbor_client.acknowledge_job(jobId=job_id, nonce="wrong")
    assert cbor_client.acknowledge_job(jobId=job_id, nonce=job["nonce"])["status"] == "InProgress"
    assert cbor_client.get_job_details(jobId=job_id)["jobDetails"]["id"] == job_id
    created = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    cbor_client.put_job_success_result(
        jobId=job_id, currentRevision={"revision": "r1", "changeIdentifier": "c1", "created": created}
    )

    assert sent[0].endswith("/service/CodePipeline_20150709/operation/PollForJobs")
    last = endpoint.store.job(job_id)["history"][-1]
    assert (last["event"], last["currentRevision"]["created"]) == ("succeeded", created.timestamp())


def test_cbor_errors_are_typed(endpoint: LocalCodePipeline, cbor_client: CodePipelineClient) -> None:
    with pytest.raises(cbor_client.exceptions.ValidationException, match="at 'nonce'"):
        cbor_client.acknowledge_job(jobId=JOB_ID, nonce="n" * 51)
    with pytest.raises(ClientError) as caught:
        cbor_client.list_pipelines()
    assert caught.value.response["Error"]["Code"] == "InternalFailure"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501


def cbor_post(url: str, operation_name: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any, Any]:
    request = urllib.request.Request(  # noqa: S310 - loopback
        f"{url}/service/CodePipeline_20150709/operation/{operation_name}", data=body, headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback
            return response.status, cbor2.loads(response.read()), response.headers
    except urllib.error.HTTPError as error:
        return error.code, cbor2.loads(error.read()), error.headers


def test_cbor_answers_carry_the_protocol_header_and_shape_ids(endpoint: LocalCodePipeline) -> None:
    headers = {"Content-Type": "application/cbor", "Accept": "application/cbor", "smithy-protocol": "rpc-v2-cbor"}
    body = cbor2.dumps({"jobId": JOB_ID, "nonce": "1"})

    status, answer, response_headers = cbor_post(endpoint.url, "AcknowledgeJob", body, headers)

    assert status == 400
    assert answer["__type"] == "com.amazonaws.codepipeline#JobNotFoundException"
    assert (response_headers["smithy-protocol"], response_headers["Content-Type"]) == (
        "rpc-v2-cbor",
        "application/cbor",
    )
    assert response_headers["x-amzn-RequestId"]
    status, answer, _ = cbor_post(endpoint.url, "AcknowledgeJob", body, {"Content-Type": "application/cbor"})
    assert (status, answer["__type"]) == (400, "com.amazonaws.codepipeline#ValidationException")
    status, answer, _ = cbor_post(endpoint.url, "AcknowledgeJob", b"\xff\x00", headers)
    assert (status, answer["__type"]) == (400, "com.amazonaws.codepipeline#SerializationException")


# -- HTTP as a production server handles it --------------------------------------------------------------------


def raw(url: str, request: bytes, timeout_s: float = 5) -> tuple[int, dict[str, str], bytes, bool]:
    """Send raw bytes; the answer's status, headers, body, and whether the server closed the connection."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout_s) as sock:
        sock.sendall(request)
        response = http.client.HTTPResponse(sock, method=request.split(b" ", 1)[0].decode())
        response.begin()
        body = response.read()
        closed = response.will_close
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body, closed


def service_request(body: bytes, framing: str, operation_name: str = "PollForJobs") -> bytes:
    return (
        f"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: CodePipeline_20150709.{operation_name}\r\n"
        f"Content-Type: application/x-amz-json-1.1\r\n{framing}\r\n\r\n"
    ).encode() + body


def test_a_chunked_body_is_read_as_the_body(endpoint: LocalCodePipeline) -> None:
    endpoint.store.create_job("Custom/Build/MyTool/1")
    body = json.dumps({"actionTypeId": CUSTOM}).encode()
    chunked = b"%x\r\n%s\r\n%x;ext=1\r\n%s\r\n0\r\n\r\n" % (10, body[:10], len(body) - 10, body[10:])

    status, _, answer, closed = raw(endpoint.url, service_request(chunked, "Transfer-Encoding: chunked"))

    assert (status, closed) == (200, False)
    assert len(json.loads(answer)["jobs"]) == 1


@pytest.mark.parametrize(
    ("framing", "status", "message"),
    [
        ("Content-Length: -1", 400, "not a non-negative integer"),
        ("Content-Length: abc", 400, "not a non-negative integer"),
        ("Content-Length: 2\r\nTransfer-Encoding: chunked", 400, "together"),
        ("Transfer-Encoding: gzip", 501, "not supported"),
        (f"Content-Length: {33 * 1024 * 1024}", 413, "larger than"),
    ],
)
def test_a_body_http_cannot_frame_is_refused_with_json(
    endpoint: LocalCodePipeline, framing: str, status: int, message: str
) -> None:
    answered, headers, body, closed = raw(endpoint.url, service_request(b"{}", framing))

    assert (answered, closed) == (status, True)
    assert message in json.loads(body)["message"]
    assert headers["x-amzn-requestid"]
    assert headers["content-type"] == "application/x-amz-json-1.1"


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "GET"])
def test_other_methods_get_a_json_refusal_with_a_request_id(endpoint: LocalCodePipeline, method: str) -> None:
    status, headers, body, _ = raw(
        endpoint.url, f"{method} / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode()
    )

    assert (status, headers["allow"]) == (405, "POST")
    assert headers["x-amzn-requestid"]
    if method != "HEAD":
        assert json.loads(body)["__type"] == "MethodNotAllowed"


def test_a_malformed_request_gets_a_json_answer(endpoint: LocalCodePipeline) -> None:
    status, headers, body, closed = raw(endpoint.url, b"NONSENSE\r\n\r\n")
    assert (status, closed) == (400, True)
    assert headers["x-amzn-requestid"]
    assert json.loads(body)["__type"] == "BadRequest"


def test_five_hundred_connections_at_once_are_held_and_answered() -> None:
    # Given an endpoint that listens but has not yet accepted anything, and 500 clients connecting at once
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2048:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    endpoint = LocalCodePipeline()
    host, port = endpoint.url.removeprefix("http://").split(":")
    clients = [socket.socket() for _ in range(500)]
    try:
        for client in clients:
            client.setblocking(False)
            client.connect_ex((host, int(port)))

        # Then the listen backlog holds every one of them: each connection is established, none waits on a SYN
        # being sent again (a backlog of 128 leaves the rest unconnected until the server accepts)
        pending = set(clients)
        deadline = time.monotonic() + 10
        while pending and time.monotonic() < deadline:
            _, writable, _ = select.select([], list(pending), [], 0.1)
            pending -= {c for c in writable if c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0}
        assert not pending, f"{len(pending)} of 500 connections were not established"

        # And once it serves, each held connection gets its answer
        endpoint.start()
        request = service_request(b"{}", "Content-Length: 2", "AcknowledgeJob")
        for client in clients:
            client.setblocking(True)
            client.settimeout(30)
            client.sendall(request)
        statuses = []
        for client in clients:
            response = http.client.HTTPResponse(client, method="POST")
            response.begin()
            response.read()
            statuses.append(response.status)
        assert statuses == [400] * 500  # each one a ValidationException: the request reached the service
    finally:
        for client in clients:
            client.close()
        endpoint.stop()


def test_an_endpoint_never_started_stops_at_once() -> None:
    endpoint = LocalCodePipeline(aws_url="http://127.0.0.1:1")  # its artifact front is never started either
    endpoint.stop()
    assert endpoint.artifact_url is not None
