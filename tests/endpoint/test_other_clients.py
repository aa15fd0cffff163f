"""Clients nobody here wrote, against the endpoint: the AWS SDK for JavaScript v3 (pinned by tests/endpoint/js's
lock file, installed by `make test`), and the AWS CLI, whose documented examples are reproduced from the copies
the installed CLI ships (awscli/examples/codepipeline/*.rst)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from codepipeline_local import ControlClient

if TYPE_CHECKING:
    from codepipeline_local import LocalCodePipeline

JS = Path(__file__).resolve().parent / "js"
VALID_ID = "ef66c259-64f9-4a2b-8c1d-0123456789ab"  # the examples' ids ("ef66c259-64f9-EXAMPLE") are not valid ones


# -- the AWS SDK for JavaScript v3 -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def node() -> str:
    found = shutil.which("node")
    assert found, "Node.js 20 or later is needed: the endpoint is tested with the AWS SDK for JavaScript v3"
    assert (JS / "node_modules" / "@aws-sdk" / "client-codepipeline").is_dir(), (
        "the JavaScript SDK is not installed: `make js-sdk` (part of `make test`) installs it from the lock file"
    )
    return found


def test_the_javascript_sdk_runs_both_life_cycles_and_gets_every_error_typed(
    node: str, endpoint: LocalCodePipeline
) -> None:
    run = subprocess.run(  # noqa: S603 - node, on the test's own script
        [node, str(JS / "lifecycle.mjs"), endpoint.url],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, "NODE_NO_WARNINGS": "1"},
    )
    assert run.returncode == 0, run.stderr
    results = json.loads(run.stdout)

    custom = results["custom"]
    assert custom["polledIds"] == [custom["jobId"]]
    assert custom["configuration"] == {"ProjectName": "web"}
    assert custom["hasCredentials"] == ["accessKeyId", "secretAccessKey", "sessionToken"]
    assert custom["pipelineArn"].startswith("arn:aws:codepipeline:us-east-1:")
    assert (custom["ackStatus"], custom["freshCredentials"], custom["finalStatus"]) == ("InProgress", True, "Succeeded")
    partner = results["partner"]
    assert partner["polled"] == [{"clientId": "c1e7d1a0-1234-4abc-9def-0123456789ab", "jobId": partner["jobId"]}]
    assert (partner["ackStatus"], partner["nonceAfterClaim"], partner["finalStatus"]) == ("InProgress", None, "Failed")
    types = results["actionTypes"]
    assert types["createdId"] == {"category": "Test", "owner": "Custom", "provider": "JsTool", "version": "1"}
    assert types["matched"] is True
    assert types["listed"] == ["Custom/Build/JsTool/1", "Custom/Test/JsTool/1"]
    assert types["executorType"] == "JobWorker"
    assert types["afterDelete"]["name"] == "ActionTypeNotFoundException"

    errors = results["errors"]
    assert errors.pop("TimedOutAck") == "TimedOut"
    not_implemented = errors.pop("NotImplemented")
    assert (not_implemented["name"], not_implemented["httpStatusCode"]) == ("InternalFailure", 501)
    expected = {
        "JobNotFoundException": "JobNotFoundException",
        "InvalidNonceException": "InvalidNonceException",
        "ValidationException": "ValidationException",
        "InvalidClientTokenException": "InvalidClientTokenException",
        "InvalidJobException": "InvalidJobException",
        "InvalidJobStateException": "InvalidJobStateException",
        "ActionTypeNotFoundException": "ActionTypeNotFoundException",
        "OutputVariablesSizeExceededException": "OutputVariablesSizeExceededException",
        "InvalidNextTokenException": "InvalidNextTokenException",
        "PartnerInvalidJobStateException": "InvalidJobStateException",
        "FailureOfAQueuedJob": "InvalidJobStateException",
        "TimedOutResult": "InvalidJobStateException",
    }
    assert {case: got["name"] for case, got in errors.items()} == expected
    assert all(got["modeled"] and got["httpStatusCode"] == 400 for got in errors.values())
    assert (results["throttled"]["name"], results["throttled"]["httpStatusCode"]) == ("ThrottlingException", 400)


# -- the AWS CLI's documented examples -------------------------------------------------------------------------


def example(command: str) -> list[str]:
    """The literal blocks (command, input file, output) of the CLI's documented example for a command."""
    text = (resources.files("awscli") / "examples" / "codepipeline" / f"{command}.rst").read_text()
    blocks = re.findall(r"::\s*\n((?:[ \t]*\n|[ \t]+\S.*\n?)+)", text)
    return [block.strip() for block in blocks]


def without_type_hints(value: Any) -> Any:
    """The examples' outputs were captured when the service also sent `__type` members; clients drop them now."""
    if isinstance(value, dict):
        return {k: without_type_hints(v) for k, v in value.items() if k != "__type"}
    if isinstance(value, list):
        return [without_type_hints(v) for v in value]
    return value


def aws(endpoint: LocalCodePipeline, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The AWS CLI (the pinned `awscli` package), pointed at the endpoint, no profile of this machine read."""
    env = {
        **os.environ,
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
    }
    return subprocess.run(  # noqa: S603 - the test's own interpreter and the pinned CLI
        [
            sys.executable,
            "-m",
            "awscli",
            "codepipeline",
            *args,
            "--endpoint-url",
            endpoint.url,
            "--region",
            "us-east-1",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env=env,
    )


def test_the_poll_acknowledge_and_details_examples_are_reproduced(endpoint: LocalCodePipeline, tmp_path: Path) -> None:
    # Given the job the poll-for-jobs example's output shows, seeded with its data, id made valid
    _, input_file, output = example("poll-for-jobs")
    documented = without_type_hints(json.loads(output))
    [job] = documented["jobs"]
    data = job["data"]
    ControlClient(endpoint.url).create_jobs(
        "Custom/Test/MyJenkinsProviderName/1",
        jobId=VALID_ID,
        nonce=job["nonce"],
        accountId=job["accountId"],
        configuration=data["actionConfiguration"]["configuration"],
        pipelineContext=data["pipelineContext"],
        inputArtifacts=data["inputArtifacts"],
        outputArtifacts=data["outputArtifacts"],
        artifactCredentials=data["artifactCredentials"],
    )
    # The example's input queries ProjectName=MyJenkinsTestProject, yet its output's job has
    # MyJenkinsExampleTestProject, longer than the 20 characters a queryable value may have: no real action type
    # can answer both. The type here has no queryable property, so the poll leaves queryParam out.
    request = json.loads(input_file)
    del request["queryParam"]
    (tmp_path / "MyActionTypeInfo.json").write_text(json.dumps(request))

    # When the documented commands run
    polled = aws(
        endpoint, tmp_path, "poll-for-jobs", "--cli-input-json", f"file://{tmp_path / 'MyActionTypeInfo.json'}"
    )
    _, ack_output = example("acknowledge-job")
    acknowledged = aws(endpoint, tmp_path, "acknowledge-job", "--job-id", VALID_ID, "--nonce", job["nonce"])
    [_, details_output] = example("get-job-details")
    details = aws(endpoint, tmp_path, "get-job-details", "--job-id", VALID_ID)

    # Then each prints what the documentation shows (the ids aside)
    assert polled.returncode == 0, polled.stderr
    assert json.loads(polled.stdout) == {"jobs": [{**job, "id": VALID_ID}]}
    assert acknowledged.returncode == 0, acknowledged.stderr
    assert json.loads(acknowledged.stdout) == json.loads(ack_output) == {"status": "InProgress"}
    assert details.returncode == 0, details.stderr
    documented_details = without_type_hints(json.loads(details_output))["jobDetails"]
    assert json.loads(details.stdout) == {"jobDetails": {**documented_details, "id": VALID_ID}}


def test_the_documented_acknowledge_command_is_refused_as_the_service_refuses_it(
    endpoint: LocalCodePipeline, tmp_path: Path
) -> None:
    command = example("acknowledge-job")[0].split()  # aws codepipeline acknowledge-job --job-id f4f4ff82-2d11-EXAMPLE
    refused = aws(endpoint, tmp_path, *command[2:])
    assert refused.returncode != 0
    assert "ValidationException" in refused.stderr
    assert "at 'jobId' failed to satisfy constraint" in refused.stderr


def test_the_action_type_examples_are_reproduced(endpoint: LocalCodePipeline, tmp_path: Path) -> None:
    # create-custom-action-type: "returns the structure of the custom action"
    definition = json.loads(example("create-custom-action-type")[1])
    (tmp_path / "MyCustomAction.json").write_text(json.dumps(definition))
    created = aws(
        endpoint,
        tmp_path,
        "create-custom-action-type",
        "--cli-input-json",
        f"file://{tmp_path / 'MyCustomAction.json'}",
    )
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["actionType"] == {
        "id": {"category": "Build", "owner": "Custom", "provider": "MyJenkinsProviderName", "version": "1"},
        "settings": definition["settings"],
        "actionConfigurationProperties": definition["configurationProperties"],
        "inputArtifactDetails": definition["inputArtifactDetails"],
        "outputArtifactDetails": definition["outputArtifactDetails"],
    }

    # delete-custom-action-type: output "None."
    _, delete_input, _ = example("delete-custom-action-type")
    (tmp_path / "DeleteMyCustomAction.json").write_text(delete_input)
    deleted = aws(
        endpoint,
        tmp_path,
        "delete-custom-action-type",
        "--cli-input-json",
        f"file://{tmp_path / 'DeleteMyCustomAction.json'}",
    )
    assert (deleted.returncode, deleted.stdout.strip()) == (0, ""), deleted.stderr

    # list-action-types: the two types its output shows, created as they are listed (under a new version of the
    # deleted one: a deleted version is never used again), then listed
    _, list_output = example("list-action-types")
    documented = json.loads(list_output)["actionTypes"]
    for listed in documented:
        listed["id"]["version"] = "2"
        spec = {
            **{k: listed["id"][k] for k in ("category", "provider", "version")},
            "settings": listed["settings"],
            "configurationProperties": listed["actionConfigurationProperties"],
            "inputArtifactDetails": listed["inputArtifactDetails"],
            "outputArtifactDetails": listed["outputArtifactDetails"],
        }
        (tmp_path / "type.json").write_text(json.dumps(spec))
        made = aws(
            endpoint, tmp_path, "create-custom-action-type", "--cli-input-json", f"file://{tmp_path / 'type.json'}"
        )
        assert made.returncode == 0, made.stderr
    listing = aws(endpoint, tmp_path, "list-action-types", "--action-owner-filter", "Custom")
    assert listing.returncode == 0, listing.stderr
    assert json.loads(listing.stdout) == {"actionTypes": documented}
