"""template.yaml: the linters AWS users trust, and what the SAM transform makes of it."""

from __future__ import annotations

import ast
import json
import re
import subprocess
from typing import Any

import pytest
from botocore import xform_name
from botocore.session import get_session

from codepipeline_worker import handler
from codepipeline_worker.config import Settings, load_settings
from codepipeline_worker.errors import ConfigurationError
from tests.template.conftest import ROOT, Stack, tool_env

# Read by the libraries the code uses rather than by its own configuration: Powertools Parameters' cache age,
# and the SDK's endpoint variables (empty in AWS; set for local invoke).
LIBRARY_VARIABLES = {
    "POWERTOOLS_PARAMETERS_MAX_AGE",
    "AWS_ENDPOINT_URL_CODEPIPELINE",
    "AWS_ENDPOINT_URL_SECRETS_MANAGER",
}
TWO_TYPES = "Custom/Build/MyTool/1,ThirdParty/Deploy/PartnerTool/2"
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:partner-tokens-AbCdEf"


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, env=tool_env(), capture_output=True, text=True, check=False)  # noqa: S603


def test_cfn_lint_is_clean() -> None:
    done = run(str(ROOT / ".venv-sam" / "bin" / "cfn-lint"), "template.yaml")
    assert (done.returncode, done.stdout) == (0, ""), done.stdout


def test_sam_validate_lint_is_clean() -> None:
    done = run(str(ROOT / ".venv-sam" / "bin" / "sam"), "validate", "--lint")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "is a valid SAM Template" in done.stdout


def test_checkov_passes_and_every_skip_is_reasoned_in_metadata() -> None:
    done = run(
        str(ROOT / ".venv-checkov" / "bin" / "checkov"),
        "-f",
        "template.yaml",
        "--framework",
        "cloudformation",
        "--skip-download",
        "--output",
        "json",
    )
    report = json.loads(done.stdout)
    assert done.returncode == 0, report["results"].get("failed_checks")
    assert report["summary"]["failed"] == 0
    skipped = {(c["check_id"], c["resource"].split(".")[-1]) for c in report["results"]["skipped_checks"]}
    declared = set()
    for name, resource in Stack().source["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert len(skip["comment"]) > 20, (name, skip)
            declared.add((skip["id"], name))
    assert skipped == declared


def code_operations() -> set[str]:
    """Every CodePipeline operation the adapter calls, read from its source: `self._client.<method>(`."""
    tree = ast.parse((ROOT / "src" / "codepipeline_worker" / "adapter.py").read_text())
    methods = {
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Attribute)
        and node.func.value.attr == "_client"
    }
    operations = {xform_name(op): op for op in get_session().get_service_model("codepipeline").operation_names}
    return {f"codepipeline:{operations[m]}" for m in methods}


def statements(stack: Stack) -> list[dict[str, Any]]:
    role = stack.resource("JobWorkerFunctionRole")["Properties"]
    found = []
    for policy in stack.value(role["Policies"]):
        for statement in policy["PolicyDocument"]["Statement"]:
            actions = statement["Action"]
            found.append({**statement, "Action": sorted([actions] if isinstance(actions, str) else actions)})
    return found


def test_the_policy_grants_exactly_the_actions_the_code_calls() -> None:
    stack = Stack(ActionTypes=TWO_TYPES, ClientTokenSecretArn=SECRET)
    granted = {action for s in statements(stack) for action in s["Action"]}

    # The code's calls, the secret read through Powertools Parameters, and SAM's grant to the failure queue
    assert code_operations() == {
        "codepipeline:AcknowledgeJob",
        "codepipeline:AcknowledgeThirdPartyJob",
        "codepipeline:GetThirdPartyJobDetails",
        "codepipeline:PollForJobs",
        "codepipeline:PollForThirdPartyJobs",
    }
    assert granted == code_operations() | {"secretsmanager:GetSecretValue", "sqs:SendMessage"}
    assert all(s["Effect"] == "Allow" for s in statements(stack))


def test_poll_for_jobs_is_scoped_to_each_action_type_arn() -> None:
    [poll] = [s for s in statements(Stack(ActionTypes=TWO_TYPES)) if s["Action"] == ["codepipeline:PollForJobs"]]
    assert poll["Resource"] == [
        "arn:aws:codepipeline:us-east-1:123456789012:actiontype:Custom/Build/MyTool/1",
        "arn:aws:codepipeline:us-east-1:123456789012:actiontype:ThirdParty/Deploy/PartnerTool/2",
    ]


def test_only_actions_without_a_resource_type_are_granted_on_star() -> None:
    on_star = {a for s in statements(Stack()) if s["Resource"] == "*" for a in s["Action"]}
    assert on_star == {
        "codepipeline:AcknowledgeJob",
        "codepipeline:AcknowledgeThirdPartyJob",
        "codepipeline:GetThirdPartyJobDetails",
        "codepipeline:PollForThirdPartyJobs",
    }


def test_the_secret_is_readable_only_when_configured_and_only_that_one() -> None:
    assert not [s for s in statements(Stack()) if s["Action"] == ["secretsmanager:GetSecretValue"]]
    [read] = [
        s for s in statements(Stack(ClientTokenSecretArn=SECRET)) if s["Action"] == ["secretsmanager:GetSecretValue"]
    ]
    assert read["Resource"] == SECRET


def test_the_failure_queue_grant_is_the_only_other_statement() -> None:
    [send] = [s for s in statements(Stack()) if s["Action"] == ["sqs:SendMessage"]]
    assert send["Resource"] == "GetAtt:FailedInvocationsQueue.Arn"


@pytest.mark.parametrize(("tracing", "xray"), [("Disabled", False), ("Active", True)])
def test_the_x_ray_policy_and_mode_follow_the_tracing_parameter(tracing: str, xray: bool) -> None:
    stack = Stack(Tracing=tracing)
    managed = stack.resource("JobWorkerFunctionRole")["Properties"]["ManagedPolicyArns"]
    assert managed[0] == "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    assert any("XrayWriteOnly" in arn for arn in managed) is xray
    function = stack.resource("JobWorkerFunction")["Properties"]
    assert ("TracingConfig" in function) is xray
    assert stack.value(function["Environment"]["Variables"]["POWERTOOLS_TRACE_DISABLED"]) == str(not xray).lower()


def test_the_schedule_targets_the_function() -> None:
    stack = Stack(ScheduleExpression="rate(5 minutes)")
    rule = stack.resource("JobWorkerFunctionSchedule")["Properties"]
    assert stack.value(rule["ScheduleExpression"]) == "rate(5 minutes)"
    assert [stack.value(t["Arn"]) for t in rule["Targets"]] == ["GetAtt:JobWorkerFunction.Arn"]
    permission = stack.resource("JobWorkerFunctionSchedulePermission")["Properties"]
    assert stack.value(permission["SourceArn"]) == "GetAtt:JobWorkerFunctionSchedule.Arn"


def test_the_started_rule_is_filtered_to_the_configured_action_type() -> None:
    stack = Stack(ActionTypes="ThirdParty/Deploy/PartnerTool/2,Custom/Build/MyTool/1")
    rule = stack.resource("JobWorkerFunctionActionStarted")["Properties"]
    assert stack.value(rule["EventPattern"]) == {
        "source": ["aws.codepipeline"],
        "detail-type": ["CodePipeline Action Execution State Change"],
        "detail": {
            "state": ["STARTED"],
            "type": {"owner": ["ThirdParty"], "category": ["Deploy"], "provider": ["PartnerTool"], "version": ["2"]},
        },
    }
    assert [stack.value(t["Arn"]) for t in rule["Targets"]] == ["GetAtt:JobWorkerFunction.Arn"]
    assert "JobWorkerFunctionActionStartedPermission" in stack.template["Resources"]


def test_the_environment_is_exactly_what_the_code_reads() -> None:
    stack = Stack()
    variables = stack.value(stack.resource("JobWorkerFunction")["Properties"]["Environment"]["Variables"])
    configuration = {field.alias for field in Settings.model_fields.values()}

    assert configuration <= set(variables), configuration - set(variables)
    assert set(variables) - configuration == LIBRARY_VARIABLES
    # And with the template's defaults, the configuration loads
    settings = load_settings({k: str(v) for k, v in variables.items()})
    assert settings.action_type_names() == ["Custom/Build/MyTool/1"]
    assert settings.tracing_disabled is True


def test_the_function_runs_python_3_13_on_arm64_in_128_mb_with_a_handler_that_exists() -> None:
    stack = Stack()
    function = stack.resource("JobWorkerFunction")["Properties"]
    assert (function["Runtime"], stack.value(function["Architectures"]), function["MemorySize"]) == (
        "python3.13",
        ["arm64"],
        128,
    )
    assert function["Timeout"] == 60
    module, name = function["Handler"].rsplit(".", 1)
    assert module == handler.__name__
    assert callable(getattr(handler, name))
    assert stack.value(function["LoggingConfig"]) == {"LogGroup": "Ref:JobWorkerLogGroup"}
    assert "ReservedConcurrentExecutions" not in stack.value(function)
    reserved = Stack(ReservedConcurrency="5")
    assert reserved.value(reserved.resource("JobWorkerFunction")["Properties"])["ReservedConcurrentExecutions"] == "5"


def test_failed_invocations_are_retried_once_then_kept_in_an_encrypted_queue() -> None:
    stack = Stack()
    config = stack.resource("JobWorkerFunctionEventInvokeConfig")["Properties"]
    assert config["MaximumRetryAttempts"] == 1
    assert stack.value(config["DestinationConfig"]) == {
        "OnFailure": {"Destination": "GetAtt:FailedInvocationsQueue.Arn"}
    }
    assert stack.resource("FailedInvocationsQueue")["Properties"]["SqsManagedSseEnabled"] is True
    log_group = stack.resource("JobWorkerLogGroup")["Properties"]
    assert stack.value(log_group["RetentionInDays"]) == "30"


def test_alarms_watch_errors_poll_failures_and_the_failure_queue() -> None:
    stack = Stack(AlarmTopicArn="arn:aws:sns:us-east-1:123456789012:ops")
    alarms = {
        stack.value(a["Properties"]["MetricName"]): stack.value(a["Properties"])
        for a in stack.of_type("AWS::CloudWatch::Alarm").values()
    }
    assert set(alarms) == {"Errors", "PollFailures", "ApproximateNumberOfMessagesVisible"}
    assert alarms["Errors"]["Dimensions"] == [{"Name": "FunctionName", "Value": "Ref:JobWorkerFunction"}]
    assert alarms["PollFailures"]["Namespace"] == "CodePipelineJobWorker"
    assert (
        alarms["ApproximateNumberOfMessagesVisible"]["Dimensions"][0]["Value"]
        == "GetAtt:FailedInvocationsQueue.QueueName"
    )
    assert all(a["AlarmActions"] == ["arn:aws:sns:us-east-1:123456789012:ops"] for a in alarms.values())


def test_the_custom_action_type_is_registered_only_when_asked() -> None:
    assert Stack().resource("CustomActionType")["Condition"] == "RegisterActionType"
    stack = Stack(RegisterCustomActionType="true", PollQueryParam="ProjectName=web")
    assert stack.conditions["RegisterActionType"] is True
    action = stack.value(stack.resource("CustomActionType")["Properties"])
    assert (action["Category"], action["Provider"], action["Version"]) == ("Build", "MyTool", "1")
    assert action["ConfigurationProperties"][0]["Name"] == "ProjectName"
    assert action["ConfigurationProperties"][0]["Queryable"] is True


@pytest.mark.parametrize(
    "action_types",
    [
        "Custom/Build/MyTool/1",
        TWO_TYPES,
        "ThirdParty/Deploy/P_t-1/v2",
        "AWS/Build/CodeBuild/1",
        "Custom/Compile/MyTool/1",
        "Custom/Build/My Tool/1",
        "Custom/Build/MyTool/1.0",
        "Custom/Build/MyTool",
        "Custom/Build/MyTool/1,",
    ],
)
def test_the_action_types_parameter_accepts_what_the_code_accepts(action_types: str) -> None:
    pattern = Stack().source["Parameters"]["ActionTypes"]["AllowedPattern"]
    try:
        load_settings({"ACTION_TYPES": action_types})
        accepted = True
    except ConfigurationError:
        accepted = False
    assert bool(re.fullmatch(pattern, action_types)) is accepted
