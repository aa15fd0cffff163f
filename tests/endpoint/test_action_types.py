"""Action types as CodePipeline has them: the four operations that manage them, queryParam as the API reference
defines it, and the service's other operations answered as an emulator answers what it lacks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError

from codepipeline_local import ControlClient, ControlError
from tests.endpoint.conftest import CUSTOM, PARTNER, client_for

if TYPE_CHECKING:
    from mypy_boto3_codepipeline import CodePipelineClient

    from codepipeline_local import LocalCodePipeline

PROJECT = {"name": "ProjectName", "required": True, "key": True, "secret": False, "queryable": True, "type": "String"}
TOKEN = {"name": "ApiToken", "required": False, "key": False, "secret": True, "description": "for the tool"}
DETAILS = {"minimumCount": 0, "maximumCount": 1}
SETTINGS = {"entityUrlTemplate": "https://tool.example/{Config:ProjectName}/"}


def create(client: CodePipelineClient, **overrides: Any) -> dict[str, Any]:
    """CreateCustomActionType for Custom/Build/MyTool/1 with a queryable property."""
    params: dict[str, Any] = {
        "category": "Build",
        "provider": "MyTool",
        "version": "1",
        "settings": SETTINGS,
        "configurationProperties": [PROJECT, TOKEN],
        "inputArtifactDetails": DETAILS,
        "outputArtifactDetails": DETAILS,
        **overrides,
    }
    answer: Any = client.create_custom_action_type(**params)
    return dict(answer)


def test_a_custom_action_type_is_created_listed_and_deleted(client: CodePipelineClient) -> None:
    created = create(client, tags=[{"key": "team", "value": "build"}])

    expected = {
        "id": CUSTOM,
        "settings": SETTINGS,
        "actionConfigurationProperties": [PROJECT, TOKEN],
        "inputArtifactDetails": DETAILS,
        "outputArtifactDetails": DETAILS,
    }
    assert created["actionType"] == expected
    assert created["tags"] == [{"key": "team", "value": "build"}]
    assert client.list_action_types(actionOwnerFilter="Custom")["actionTypes"] == [expected]
    assert client.list_action_types(actionOwnerFilter="ThirdParty")["actionTypes"] == []

    client.delete_custom_action_type(category="Build", provider="MyTool", version="1")

    assert client.list_action_types()["actionTypes"] == []
    with pytest.raises(client.exceptions.ActionTypeNotFoundException):
        client.poll_for_jobs(actionTypeId=CUSTOM)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"configurationProperties": [PROJECT, {**PROJECT, "name": "Other"}]}, "at most one queryable"),
        ({"configurationProperties": [{**PROJECT, "required": False}]}, "must be required and not secret"),
        ({"configurationProperties": [{**PROJECT, "secret": True}]}, "must be required and not secret"),
        ({"configurationProperties": [PROJECT, PROJECT]}, "names must be unique"),
        ({"inputArtifactDetails": {"minimumCount": 2, "maximumCount": 1}}, "greater than maximumCount"),
        ({"outputArtifactDetails": {"minimumCount": 0, "maximumCount": 6}}, "less than or equal to 5"),
        ({"configurationProperties": [{**PROJECT, "description": "d" * 161}]}, "less than or equal to 160"),
    ],
)
def test_an_action_type_codepipeline_would_refuse_is_refused(
    client: CodePipelineClient, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(client.exceptions.ValidationException, match=message):
        create(client, **overrides)
    assert client.list_action_types()["actionTypes"] == []


def test_an_existing_or_deleted_version_cannot_be_created(client: CodePipelineClient) -> None:
    create(client)
    with pytest.raises(client.exceptions.ValidationException, match="already exists"):
        create(client)
    client.delete_custom_action_type(category="Build", provider="MyTool", version="1")
    with pytest.raises(client.exceptions.ValidationException, match="never used"):
        create(client)
    with pytest.raises(client.exceptions.ValidationException, match="does not exist"):
        client.delete_custom_action_type(category="Build", provider="MyTool", version="1")
    assert create(client, version="2")["actionType"]["id"]["version"] == "2"


def test_a_type_implied_by_seeded_jobs_can_then_be_declared(
    endpoint: LocalCodePipeline, client: CodePipelineClient
) -> None:
    # Given jobs seeded before their type was declared
    web = endpoint.store.create_job("Custom/Build/MyTool/1", configuration={"ProjectName": "web"})
    endpoint.store.create_job("Custom/Build/MyTool/1", configuration={"ProjectName": "api"})

    # When the type is declared with a queryable property, then the queued jobs are matched on it
    create(client)
    jobs = client.poll_for_jobs(actionTypeId=CUSTOM, maxBatchSize=10, queryParam={"ProjectName": "web"})["jobs"]
    assert [j["id"] for j in jobs] == [web]


def test_list_action_types_pages(endpoint: LocalCodePipeline, client: CodePipelineClient) -> None:
    for version in range(60):
        endpoint.store.add_action_type(f"Custom/Build/MyTool/{version}")
    first = client.list_action_types()
    second = client.list_action_types(nextToken=first["nextToken"])

    assert len(first["actionTypes"]) + len(second["actionTypes"]) == 60
    assert "nextToken" not in second
    paginated = client.get_paginator("list_action_types").paginate(actionOwnerFilter="Custom")
    assert sum(len(page["actionTypes"]) for page in paginated) == 60
    with pytest.raises(client.exceptions.InvalidNextTokenException):
        client.list_action_types(nextToken="not-a-token")
    with pytest.raises(client.exceptions.InvalidNextTokenException):  # a token of another filter
        client.list_action_types(nextToken=first["nextToken"], actionOwnerFilter="ThirdParty")


def test_get_action_type_describes_a_partner_type(endpoint: LocalCodePipeline, client: CodePipelineClient) -> None:
    ControlClient(endpoint.url).add_action_type(
        "ThirdParty/Deploy/PartnerTool/2",
        configurationProperties=[PROJECT, TOKEN],
        inputArtifactDetails=DETAILS,
        outputArtifactDetails={"minimumCount": 0, "maximumCount": 0},
        settings={"thirdPartyConfigurationUrl": "https://partner.example/setup", **SETTINGS},
        timeoutSeconds=900,
    )

    declared = client.get_action_type(**PARTNER)["actionType"]

    assert declared["id"] == PARTNER
    assert declared["executor"] == {
        "configuration": {"jobWorkerExecutorConfiguration": {"pollingAccounts": ["123456789012"]}},
        "type": "JobWorker",
        "jobTimeout": 900,
    }
    assert declared["properties"] == [
        {"name": "ProjectName", "optional": False, "key": True, "noEcho": False, "queryable": True},
        {
            "name": "ApiToken",
            "optional": True,
            "key": False,
            "noEcho": True,
            "queryable": False,
            "description": "for the tool",
        },
    ]
    assert declared["urls"] == {
        "configurationUrl": "https://partner.example/setup",
        "entityUrlTemplate": SETTINGS["entityUrlTemplate"],
    }
    with pytest.raises(client.exceptions.ActionTypeNotFoundException):
        client.get_action_type(**PARTNER | {"version": "3"})
    with pytest.raises(ClientError, match="ValidationException"):  # GetActionType takes AWS or ThirdParty only
        client.get_action_type(**CUSTOM)


# -- queryParam -----------------------------------------------------------------------------------------------


@pytest.fixture
def queryable_type(client: CodePipelineClient) -> None:
    create(client)


@pytest.mark.usefixtures("queryable_type")
@pytest.mark.parametrize("query", [{}, {"Other": "web"}])
def test_a_poll_must_name_the_queryable_property(client: CodePipelineClient, query: dict[str, str]) -> None:
    with pytest.raises(client.exceptions.ValidationException, match="queryable configuration property 'ProjectName'"):
        client.poll_for_jobs(actionTypeId=CUSTOM, queryParam=query)


def test_a_type_without_a_queryable_property_takes_no_query(
    endpoint: LocalCodePipeline, client: CodePipelineClient
) -> None:
    endpoint.store.create_job("Custom/Build/MyTool/1", configuration={"ProjectName": "web"})
    with pytest.raises(client.exceptions.ValidationException, match="no queryable configuration property"):
        client.poll_for_jobs(actionTypeId=CUSTOM, queryParam={"ProjectName": "web"})
    assert len(client.poll_for_jobs(actionTypeId=CUSTOM, queryParam={})["jobs"]) == 1


@pytest.mark.usefixtures("queryable_type")
def test_a_poll_gets_only_the_jobs_its_query_matches(endpoint: LocalCodePipeline, client: CodePipelineClient) -> None:
    web = [endpoint.store.create_job("Custom/Build/MyTool/1", configuration={"ProjectName": "web"}) for _ in range(2)]
    api = endpoint.store.create_job("Custom/Build/MyTool/1", configuration={"ProjectName": "api"})

    polled = client.poll_for_jobs(actionTypeId=CUSTOM, maxBatchSize=10, queryParam={"ProjectName": "web"})["jobs"]

    assert [j["id"] for j in polled] == web
    assert client.poll_for_jobs(actionTypeId=CUSTOM, queryParam={"ProjectName": "web"})["jobs"] == []
    assert [j["id"] for j in client.poll_for_jobs(actionTypeId=CUSTOM, queryParam={"ProjectName": "api"})["jobs"]] == [
        api
    ]


@pytest.mark.usefixtures("queryable_type")
@pytest.mark.parametrize(
    ("configuration", "fields", "problem"),
    [
        ({}, {}, "'ProjectName' of Custom/Build/MyTool/1 is required"),
        ({"ProjectName": "web", "Extra": "1"}, {}, "'Extra' is not a configuration property"),
        ({"ProjectName": "x" * 21}, {}, "takes up to 20 letters"),
        ({"ProjectName": "my project"}, {}, "takes up to 20 letters"),
        ({"ProjectName": "web"}, {"outputArtifacts": [{"name": "A"}, {"name": "B"}]}, "0 to 1 output artifacts"),
    ],
)
def test_a_job_its_declared_type_cannot_have_is_refused(
    endpoint: LocalCodePipeline, configuration: dict[str, str], fields: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ControlError) as refused:
        ControlClient(endpoint.url).create_jobs("Custom/Build/MyTool/1", configuration=configuration, **fields)
    assert problem in str(refused.value)


@pytest.mark.usefixtures("queryable_type")
def test_a_declared_type_with_no_artifacts_gets_jobs_without_any(
    endpoint: LocalCodePipeline, client: CodePipelineClient
) -> None:
    create(client, version="2", inputArtifactDetails={"minimumCount": 0, "maximumCount": 0})
    job_id = endpoint.store.create_job("Custom/Build/MyTool/2", configuration={"ProjectName": "web"})
    job = endpoint.store.job(job_id)
    assert (len(job["inputArtifacts"]), len(job["outputArtifacts"])) == (0, 1)


# -- the rest of the service ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("list_pipelines", {}),
        ("get_pipeline", {"name": "web"}),
        ("start_pipeline_execution", {"name": "web"}),
        (
            "put_approval_result",
            {
                "pipelineName": "p",
                "stageName": "s",
                "actionName": "a",
                "result": {"summary": "s", "status": "Approved"},
                "token": "t",
            },
        ),
    ],
)
def test_other_operations_answer_that_the_local_endpoint_lacks_them(
    endpoint: LocalCodePipeline, method: str, params: dict[str, Any]
) -> None:
    with pytest.raises(ClientError) as caught:
        getattr(client_for(endpoint.url, attempts=3), method)(**params)

    response = caught.value.response
    assert (response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]) == (501, "InternalFailure")
    assert "is not implemented by the local endpoint" in response["Error"]["Message"]
    assert response["ResponseMetadata"]["RetryAttempts"] == 0
