"""The stack's custom resource: it registers the custom action type with the properties the work function's module
declares, keeps it across updates that do not change them, refuses an update that would, and deletes it with the
stack; every request is answered on its ResponseURL (a real PUT on 127.0.0.1), FAILED with a one-line reason."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, cast

import pytest

from codepipeline_worker.registrar import cloudformation
from codepipeline_worker.registrar.cloudformation import MAX_REASON, CustomResourceRequest, answer, send_response
from codepipeline_worker.registrar.handler import lambda_handler
from codepipeline_worker.registrar.service import NOT_REGISTERED, Registrar
from codepipeline_worker.shared.adapter import ActionTypeRegistry

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from aws_lambda_powertools.utilities.typing import LambdaContext

    from tests.conftest import FakeLambdaContext
    from tests.unit.conftest import Stubbed

EXAMPLE = "codepipeline_worker.examples.url_gate:check_url"
ACTION_TYPE = {"category": "Build", "provider": "MyTool", "version": "1"}
ARTIFACTS = {"minimumCount": 0, "maximumCount": 5}
EXAMPLE_PROPERTIES = [
    {
        "name": "Url",
        "required": True,
        "key": False,
        "secret": False,
        "type": "String",
        "description": "The http:// or https:// address to check",
    },
    {
        "name": "ExpectedStatus",
        "required": False,
        "key": False,
        "secret": False,
        "type": "Number",
        "description": "The HTTP status that passes (default 200)",
    },
    {
        "name": "MaxChecks",
        "required": False,
        "key": False,
        "secret": False,
        "type": "Number",
        "description": "How many checks, one per claim, before the job fails (default 10)",
    },
]
QUERYABLE = {
    "name": "ProjectName",
    "required": True,
    "key": True,
    "secret": False,
    "queryable": True,
    "type": "String",
    "description": "The property PollForJobs filters on (PollQueryParam)",
}


class Responses:
    """CloudFormation's pre-signed response URL, on 127.0.0.1: keeps every PUT body and its headers."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, Any], dict[str, str]]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((json.loads(body), dict(self.headers)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/stack-response?X-Amz-Signature=abc"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def declaring_modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Work functions' modules: one declares its one property secret, one two queryable properties."""
    declarations = {
        "secret_key_q4": "[ConfigurationProperty(name='Project', required=True, secret=True)]",
        "two_queryable_q3": "[ConfigurationProperty(name=n, required=True, queryable=True) for n in 'AB']",
    }
    for name, declared in declarations.items():
        (tmp_path / f"{name}.py").write_text(
            f"from codepipeline_worker.work import ConfigurationProperty\nCONFIGURATION_PROPERTIES = {declared}\n"
        )
    monkeypatch.syspath_prepend(str(tmp_path))


@pytest.fixture
def responses() -> Iterator[Responses]:
    server = Responses()
    yield server
    server.close()


def request(
    responses: Responses, request_type: str, physical_id: str | None = None, **properties: str
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "RequestType": request_type,
        "ResponseURL": responses.url,
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/worker/0f1e2d3c",
        "RequestId": "5d7a3e1c-0000-4000-8000-000000000001",
        "LogicalResourceId": "ActionType",
        "ResourceType": "Custom::CodePipelineActionType",
        "ResourceProperties": {
            "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:worker-ActionTypeFunction",
            "ActionType": "Custom/Build/MyTool/1",
            "WorkEntryPoint": EXAMPLE,
            "PollQueryParam": "",
            **properties,
        },
    }
    if physical_id is not None:
        event["PhysicalResourceId"] = physical_id
    return event


def registered(properties: list[dict[str, Any]], version: str = "1") -> dict[str, Any]:
    """ListActionTypes' answer with the action type registered with these properties."""
    return {
        "actionTypes": [
            {
                "id": {"owner": "Custom", **ACTION_TYPE, "version": version},
                "actionConfigurationProperties": properties,
                "inputArtifactDetails": ARTIFACTS,
                "outputArtifactDetails": ARTIFACTS,
            }
        ]
    }


def handle(codepipeline: Stubbed, responses: Responses, event: dict[str, Any], context: FakeLambdaContext) -> Any:
    client, _ = codepipeline
    answer = lambda_handler(event, cast("LambdaContext", context), registrar=Registrar(ActionTypeRegistry(client)))
    [(sent, headers)] = responses.received
    assert sent == answer
    # The pre-signed URL's signature covers no content type
    assert headers.get("Content-Type", "") == ""
    return sent


@pytest.mark.parametrize(
    ("query_param", "properties"),
    [
        ("", EXAMPLE_PROPERTIES),
        # The query parameter's key: a property of its own, or a declared one made queryable
        ("ProjectName=web", [*EXAMPLE_PROPERTIES, QUERYABLE]),
        ("Url=web", [{**EXAMPLE_PROPERTIES[0], "queryable": True}, *EXAMPLE_PROPERTIES[1:]]),
    ],
)
def test_create_registers_the_action_type_with_the_declared_properties(
    query_param: str,
    properties: list[dict[str, Any]],
    codepipeline: Stubbed,
    responses: Responses,
    lambda_context: FakeLambdaContext,
) -> None:
    _, stubber = codepipeline
    stubber.add_response("list_action_types", {"actionTypes": []}, {"actionOwnerFilter": "Custom"})
    stubber.add_response(
        "create_custom_action_type",
        {"actionType": registered(properties)["actionTypes"][0]},
        {
            **ACTION_TYPE,
            "configurationProperties": properties,
            "inputArtifactDetails": ARTIFACTS,
            "outputArtifactDetails": ARTIFACTS,
        },
    )

    sent = handle(codepipeline, responses, request(responses, "Create", PollQueryParam=query_param), lambda_context)

    assert sent == {
        "Status": "SUCCESS",
        "PhysicalResourceId": "Custom/Build/MyTool/1",
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/worker/0f1e2d3c",
        "RequestId": "5d7a3e1c-0000-4000-8000-000000000001",
        "LogicalResourceId": "ActionType",
        "Data": {"ActionType": "Custom/Build/MyTool/1"},
    }


@pytest.mark.parametrize(
    ("action_type", "creates"),
    [
        # Something else changed (MaxAttempts): the action type is registered as asked, nothing else is called
        ("Custom/Build/MyTool/1", False),
        # A new version: registered under a new physical id, and CloudFormation then deletes the old one
        ("Custom/Build/MyTool/2", True),
    ],
)
def test_an_update_keeps_or_registers_the_action_type_as_asked(
    action_type: str, creates: bool, codepipeline: Stubbed, responses: Responses, lambda_context: FakeLambdaContext
) -> None:
    _, stubber = codepipeline
    # CodePipeline may answer `queryable: false` where the request left it out: the comparison reads them as one
    answered = [{**p, "queryable": False} for p in EXAMPLE_PROPERTIES]
    stubber.add_response("list_action_types", registered(answered, version="1"))
    if creates:
        stubber.add_response("create_custom_action_type", {"actionType": registered([], "2")["actionTypes"][0]})

    event = request(responses, "Update", "Custom/Build/MyTool/1", ActionType=action_type, MaxAttempts="5")
    sent = handle(codepipeline, responses, event, lambda_context)

    assert (sent["Status"], sent["PhysicalResourceId"]) == ("SUCCESS", action_type)


def test_an_update_that_would_change_a_registered_version_fails_naming_the_way_out(
    codepipeline: Stubbed, responses: Responses, lambda_context: FakeLambdaContext
) -> None:
    _, stubber = codepipeline
    stubber.add_response("list_action_types", registered(EXAMPLE_PROPERTIES[:1]))

    event = request(responses, "Update", physical_id="Custom/Build/MyTool/1")
    sent = handle(codepipeline, responses, event, lambda_context)

    assert sent["Status"] == "FAILED"
    assert sent["PhysicalResourceId"] == "Custom/Build/MyTool/1"  # CloudFormation keeps the old one
    assert sent["Reason"] == (
        "Custom/Build/MyTool/1 is registered with other configuration properties, and CodePipeline never changes a "
        "registered version: give ActionTypes a new version (for example Custom/Build/MyTool/2)"
    )


def test_delete_removes_the_action_type_it_registered(
    codepipeline: Stubbed, responses: Responses, lambda_context: FakeLambdaContext
) -> None:
    _, stubber = codepipeline
    stubber.add_response("list_action_types", registered(EXAMPLE_PROPERTIES))
    stubber.add_response("delete_custom_action_type", {}, ACTION_TYPE)

    sent = handle(codepipeline, responses, request(responses, "Delete", "Custom/Build/MyTool/1"), lambda_context)

    assert sent["Status"] == "SUCCESS"


@pytest.mark.parametrize("physical_id", [NOT_REGISTERED, "Custom/Build/MyTool/1"])
def test_delete_succeeds_when_there_is_nothing_to_remove(
    physical_id: str, codepipeline: Stubbed, responses: Responses, lambda_context: FakeLambdaContext
) -> None:
    """A Create that failed (CloudFormation deletes it on rollback), or an action type already gone."""
    _, stubber = codepipeline
    if physical_id != NOT_REGISTERED:
        stubber.add_response("list_action_types", {"actionTypes": []})

    sent = handle(codepipeline, responses, request(responses, "Delete", physical_id), lambda_context)

    assert (sent["Status"], sent["PhysicalResourceId"]) == ("SUCCESS", physical_id)


@pytest.mark.parametrize(
    ("properties", "reason"),
    [
        (
            {"ActionType": "ThirdParty/Deploy/PartnerTool/2"},
            "ActionTypes: the first action type (ThirdParty/Deploy/PartnerTool/2) owner ThirdParty cannot be "
            "registered: only Custom action types are yours to register",
        ),
        (
            {"WorkEntryPoint": "actions.not_there_x1:run"},
            "WorkEntryPoint: module actions.not_there_x1 cannot be imported (ModuleNotFoundError: No module named "
            "'actions.not_there_x1')",
        ),
        ({"WorkEntryPoint": "not a reference"}, "invalid resource properties: WorkEntryPoint: String should match"),
        (
            {"ActionType": "Custom/Build"},
            "ActionTypes: the first action type (Custom/Build) must be Custom/Category/Provider/Version",
        ),
        (
            {"WorkEntryPoint": "two_queryable_q3:run"},
            "WorkEntryPoint: two_queryable_q3.CONFIGURATION_PROPERTIES: more than one queryable property; "
            "CodePipeline allows one per action type",
        ),
        # The query parameter's key names a declared property that cannot be queryable
        (
            {"WorkEntryPoint": "secret_key_q4:run", "PollQueryParam": "Project=web"},
            "WorkEntryPoint secret_key_q4:run with PollQueryParam: 1: a queryable property must be required and not "
            "secret",
        ),
    ],
)
@pytest.mark.usefixtures("declaring_modules")
def test_what_cannot_be_registered_fails_with_one_line_before_any_call(
    properties: dict[str, str],
    reason: str,
    codepipeline: Stubbed,
    responses: Responses,
    lambda_context: FakeLambdaContext,
) -> None:
    sent = handle(codepipeline, responses, request(responses, "Create", **properties), lambda_context)

    assert (sent["Status"], sent["PhysicalResourceId"]) == ("FAILED", NOT_REGISTERED)
    assert sent["Reason"].startswith(reason), sent["Reason"]
    assert "\n" not in sent["Reason"]


def test_a_refused_call_fails_with_its_code(
    codepipeline: Stubbed, responses: Responses, lambda_context: FakeLambdaContext
) -> None:
    _, stubber = codepipeline
    stubber.add_response("list_action_types", {"actionTypes": []})
    stubber.add_client_error("create_custom_action_type", "LimitExceededException", "too many action types: 50")

    sent = handle(codepipeline, responses, request(responses, "Create"), lambda_context)

    assert sent["Status"] == "FAILED"
    assert sent["Reason"] == "CreateCustomActionType failed: LimitExceededException"


def test_an_unexpected_failure_is_answered_too(
    codepipeline: Stubbed, responses: Responses, lambda_context: FakeLambdaContext
) -> None:
    client, _ = codepipeline

    class Broken(Registrar):
        def create(self, resource: Any) -> str:
            raise KeyError("boom")

    registrar = Broken(ActionTypeRegistry(client))
    lambda_handler(request(responses, "Create"), cast("LambdaContext", lambda_context), registrar=registrar)

    [(sent, _)] = responses.received
    assert sent["Status"] == "FAILED"
    assert sent["Reason"] == "KeyError; the function's log has where"


def test_the_response_is_sent_again_after_a_server_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cloudformation, "RESPONSE_PAUSE_S", 0.0)
    attempts: list[int] = []

    class Flaky(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            attempts.append(1)
            self.send_response(503 if len(attempts) == 1 else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        send_response(f"http://127.0.0.1:{server.server_address[1]}/r", {"Status": "SUCCESS"})
    finally:
        server.shutdown()
        server.server_close()

    assert len(attempts) == 2


def test_a_long_reason_is_cut_to_fit_cloudformations_limit(responses: Responses) -> None:
    event = CustomResourceRequest.model_validate(request(responses, "Create"))

    body = answer(event, "FAILED", NOT_REGISTERED, "x" * 5000)

    assert len(body["Reason"]) == MAX_REASON
    assert len(json.dumps(body)) < 4096
