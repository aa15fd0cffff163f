"""template.yaml: the linters AWS users trust, and what the SAM transform makes of it."""

from __future__ import annotations

import ast
import json
import re
import subprocess
from typing import TYPE_CHECKING, Any

import pytest
from aws_lambda_powertools.utilities.batch import EventType
from botocore import xform_name
from botocore.session import get_session

from codepipeline_worker.acknowledger import handler
from codepipeline_worker.acknowledger.config import Settings, load_settings
from codepipeline_worker.dead_letter import handler as dead_letter_handler
from codepipeline_worker.dead_letter.config import DeadLetterSettings
from codepipeline_worker.shared.adapter import (
    ACKNOWLEDGER_OPERATIONS,
    CONSUMER_OPERATIONS,
    DEAD_LETTER_OPERATIONS,
    HANDOFF_INDEX,
    IDEMPOTENCY_OPERATIONS,
    REGISTRAR_OPERATIONS,
    WORK_QUEUE_OPERATIONS,
    WORKER_OPERATIONS,
)
from codepipeline_worker.shared.config import (
    DEFAULT_METRICS_NAMESPACE,
    DEFAULT_SERVICE_NAME,
    CommonSettings,
    load_config,
)
from codepipeline_worker.shared.errors import ConfigurationError
from codepipeline_worker.work import handler as worker_handler
from codepipeline_worker.work.config import DEFAULT_WORK_FUNCTION, WorkerSettings
from codepipeline_worker.work.properties import declared_properties
from local_resources import JOB_TABLE_SCHEMA, MAX_RECEIVE_COUNT, WORK_QUEUE_ATTRIBUTES
from tests.template.conftest import ROOT, Stack, sam_inspect, tool_env

if TYPE_CHECKING:
    from pathlib import Path

ACKNOWLEDGER = "JobWorkerFunction"
WORKER = "WorkFunction"
DEAD_LETTER = "DeadLetterFunction"
REGISTRAR = "ActionTypeFunction"
FUNCTIONS = [ACKNOWLEDGER, WORKER, DEAD_LETTER]
ALL_FUNCTIONS = [*FUNCTIONS, REGISTRAR]
# Read by the libraries the code uses rather than by its own configuration: Powertools Parameters' cache age,
# and the SDK's endpoint variables (empty in AWS; set for local invoke). The dead-letter handler makes no SQS call.
LIBRARY_VARIABLES = {
    ACKNOWLEDGER: {
        "POWERTOOLS_PARAMETERS_MAX_AGE",
        "PYDANTIC_DISABLE_PLUGINS",  # pydantic's own: no plugin scan at the cold start
        "AWS_ENDPOINT_URL_CODEPIPELINE",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER",
        "AWS_ENDPOINT_URL_SQS",
        "AWS_ENDPOINT_URL_DYNAMODB",
    },
    WORKER: {
        "POWERTOOLS_PARAMETERS_MAX_AGE",
        "AWS_ENDPOINT_URL_CODEPIPELINE",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER",
        "AWS_ENDPOINT_URL_DYNAMODB",
        "AWS_ENDPOINT_URL_SQS",
        "URL_GATE_ALLOW_PRIVATE_ADDRESSES",  # the example action's, which it reads itself
    },
    DEAD_LETTER: {
        "POWERTOOLS_PARAMETERS_MAX_AGE",
        "AWS_ENDPOINT_URL_CODEPIPELINE",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER",
        "AWS_ENDPOINT_URL_DYNAMODB",
    },
    REGISTRAR: {"POWERTOOLS_PARAMETERS_MAX_AGE", "AWS_ENDPOINT_URL_CODEPIPELINE"},
}
SETTINGS: dict[str, type[CommonSettings]] = {
    ACKNOWLEDGER: Settings,
    WORKER: WorkerSettings,
    DEAD_LETTER: DeadLetterSettings,
    REGISTRAR: CommonSettings,
}
# IAM's name for an SQS batch operation: the action of its single form.
IAM_ACTIONS = {
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
    "sqs:SendMessageBatch": "sqs:SendMessage",
}
# What Lambda's SQS event source mapping needs of the function's role ("Execution role permissions" in the
# Lambda guide; the actions of the AWSLambdaSQSQueueExecutionRole managed policy).
SQS_POLLER_ACTIONS = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}
# The actions these functions call that have no resource type in IAM's Service Authorization Reference: they
# can be granted on "*" only. (codepipeline:PollForJobs has one, the action type; every SQS action, the queue.)
NO_RESOURCE_TYPE = {
    "codepipeline:AcknowledgeJob",
    "codepipeline:AcknowledgeThirdPartyJob",
    "codepipeline:GetJobDetails",
    "codepipeline:GetThirdPartyJobDetails",
    "codepipeline:PollForThirdPartyJobs",
    "codepipeline:PutJobFailureResult",
    "codepipeline:PutJobSuccessResult",
    "codepipeline:PutThirdPartyJobFailureResult",
    "codepipeline:PutThirdPartyJobSuccessResult",
    "codepipeline:ListActionTypes",
}
SECRET_READ = "secretsmanager:GetSecretValue"
TWO_TYPES = "Custom/Build/MyTool/1,ThirdParty/Deploy/PartnerTool/2"
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:partner-tokens-AbCdEf"
TOPIC = "arn:aws:sns:us-east-1:123456789012:ops"
# What CloudFormation resolves the work queue's URL and the table's name to, for loading the settings with the
# template's values.
QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/worker-WorkQueue-AbCdEf.fifo"
TABLE_NAME = "worker-JobTable-AbCdEf"
# The calls of partner jobs (and of custom jobs): granted only when ActionTypes holds an action type of that owner.
PARTNER_OPERATIONS = {
    "codepipeline:PollForThirdPartyJobs",
    "codepipeline:GetThirdPartyJobDetails",
    "codepipeline:AcknowledgeThirdPartyJob",
    "codepipeline:PutThirdPartyJobSuccessResult",
    "codepipeline:PutThirdPartyJobFailureResult",
}
CUSTOM_OPERATIONS = {
    "codepipeline:PollForJobs",
    "codepipeline:AcknowledgeJob",
    "codepipeline:GetJobDetails",
    "codepipeline:PutJobSuccessResult",
    "codepipeline:PutJobFailureResult",
}
PARTNER_ONLY = "ThirdParty/Deploy/PartnerTool/2"


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, env=tool_env(), capture_output=True, text=True, check=False)  # noqa: S603


def test_cfn_lint_is_clean() -> None:
    done = run(str(ROOT / ".venv-sam" / "bin" / "cfn-lint"), "template.yaml")
    assert (done.returncode, done.stdout) == (0, ""), done.stdout


def test_cfn_lint_is_clean_on_the_sample_pipeline() -> None:
    done = run(str(ROOT / ".venv-sam" / "bin" / "cfn-lint"), "samples/pipeline.yaml")
    assert (done.returncode, done.stdout) == (0, ""), done.stdout


def test_the_sample_pipeline_runs_the_action_type_the_stack_outputs_with_the_example_configuration() -> None:
    worker = Stack()
    output = worker.value(worker.template["Outputs"]["ActionType"]["Value"])
    sample = Stack.plain("samples/pipeline.yaml", ActionType=output)
    assert re.fullmatch(sample.template["Parameters"]["ActionType"]["AllowedPattern"], output)
    assert sample.template["Parameters"]["ActionType"]["Default"] == output
    [stage] = [s for s in sample.template["Resources"]["Pipeline"]["Properties"]["Stages"] if s["Name"] == "Check"]
    [action] = stage["Actions"]
    assert sample.value(action["ActionTypeId"]) == dict(
        zip(("Owner", "Category", "Provider", "Version"), output.split("/"), strict=True)
    )
    required = {p.name for p in declared_properties(DEFAULT_WORK_FUNCTION) if p.required}
    assert required <= set(action["Configuration"]) <= {p.name for p in declared_properties(DEFAULT_WORK_FUNCTION)}
    assert sample.value(action["Configuration"]) == {"Url": "https://example.com/"}


def test_sam_validate_lint_is_clean() -> None:
    done = run(str(ROOT / ".venv-sam" / "bin" / "sam"), "validate", "--lint")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "is a valid SAM Template" in done.stdout


def checkov(template: Path) -> set[tuple[str, str]]:
    """checkov on a template: it must pass; returns the (check, resource) pairs it skipped."""
    done = run(
        str(ROOT / ".venv-checkov" / "bin" / "checkov"),
        "-f",
        str(template),
        "--framework",
        "cloudformation",
        "--skip-download",
        "--output",
        "json",
    )
    report = json.loads(done.stdout)
    assert done.returncode == 0, report["results"].get("failed_checks")
    assert report["summary"]["failed"] == 0
    return {(c["check_id"], c["resource"].split(".")[-1]) for c in report["results"]["skipped_checks"]}


def test_checkov_passes_and_every_skip_is_reasoned_in_metadata(tmp_path: Path) -> None:
    # checkov leaves out resources whose condition is false with the parameters' defaults: the action type's
    # function and log group are checked in a copy of the template that registers the action type by default.
    source = (ROOT / "template.yaml").read_text()
    registering = tmp_path / "template.yaml"
    declaration = '  RegisterCustomActionType:\n    Type: String\n    Default: "{}"'
    registering.write_text(source.replace(declaration.format("false"), declaration.format("true")))
    assert registering.read_text() != source
    skipped = checkov(ROOT / "template.yaml") | checkov(registering)
    declared = set()
    for name, resource in Stack().source["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert len(skip["comment"]) > 20, (name, skip)
            declared.add((skip["id"], name))
    assert skipped == declared


# -- least privilege ----------------------------------------------------------------------------------------


def code_operations() -> set[str]:
    """Every AWS operation the adapter calls, read from its source: `self._client.<method>(`, each method
    looked up in the CodePipeline and SQS service models (the clients the adapter builds)."""
    tree = ast.parse((ROOT / "src" / "codepipeline_worker" / "shared" / "adapter.py").read_text())
    methods = {
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Attribute)
        and node.func.value.attr == "_client"
    }
    session = get_session()
    operations: dict[str, list[str]] = {}
    for service in ("codepipeline", "sqs", "dynamodb"):  # each also the prefix of its IAM actions
        for operation in session.get_service_model(service).operation_names:
            operations.setdefault(xform_name(operation), []).append(f"{service}:{operation}")
    unknown = methods - set(operations)
    assert not unknown, f"not a CodePipeline, SQS or DynamoDB operation: {unknown}"
    ambiguous = {m for m in methods if len(operations[m]) > 1}
    assert not ambiguous, ambiguous
    return {operations[m][0] for m in methods}


def statements(stack: Stack, function: str = ACKNOWLEDGER) -> list[dict[str, Any]]:
    role = stack.resource(f"{function}Role")["Properties"]
    found = []
    for policy in stack.value(role["Policies"]):
        for statement in policy["PolicyDocument"]["Statement"]:
            actions = statement["Action"]
            found.append({**statement, "Action": sorted([actions] if isinstance(actions, str) else actions)})
    return found


def granted(stack: Stack, function: str) -> set[str]:
    return {action for s in statements(stack, function) for action in s["Action"]}


def iam(operations: frozenset[str]) -> set[str]:
    return {IAM_ACTIONS.get(operation, operation) for operation in operations}


def test_the_declared_operations_are_the_ones_the_code_calls() -> None:
    assert code_operations() == (
        ACKNOWLEDGER_OPERATIONS
        | WORKER_OPERATIONS
        | CONSUMER_OPERATIONS
        | IDEMPOTENCY_OPERATIONS
        | WORK_QUEUE_OPERATIONS
        | DEAD_LETTER_OPERATIONS
        | REGISTRAR_OPERATIONS
    )


def test_the_acknowledger_is_granted_exactly_its_operations() -> None:
    stack = Stack(ActionTypes=TWO_TYPES, ClientTokenSecretArn=SECRET)
    # Its calls, and the secret read through Powertools Parameters. SAM's grant to the failure queue
    # (sqs:SendMessage, for the OnFailure destination) is an action it already has, on another queue.
    assert granted(stack, ACKNOWLEDGER) == iam(ACKNOWLEDGER_OPERATIONS) | {SECRET_READ}
    assert all(s["Effect"] == "Allow" for s in statements(stack, ACKNOWLEDGER))


def test_the_work_function_is_granted_exactly_its_operations_and_what_its_event_source_needs() -> None:
    stack = Stack(ActionTypes=TWO_TYPES, ClientTokenSecretArn=SECRET)
    expected = WORKER_OPERATIONS | IDEMPOTENCY_OPERATIONS | iam(WORK_QUEUE_OPERATIONS) | SQS_POLLER_ACTIONS
    assert granted(stack, WORKER) == expected | {SECRET_READ}
    assert granted(Stack(ActionTypes=TWO_TYPES), WORKER) == expected
    assert all(s["Effect"] == "Allow" for s in statements(stack, WORKER))
    [poller] = [s for s in statements(stack, WORKER) if s["Action"] == sorted(SQS_POLLER_ACTIONS)]
    assert poller["Resource"] == "GetAtt:WorkQueue.Arn"
    # The jobs not started are released on the work queue only
    [release] = [s for s in statements(stack, WORKER) if s["Action"] == ["sqs:ChangeMessageVisibility"]]
    assert release["Resource"] == "GetAtt:WorkQueue.Arn"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_owners_operations_are_granted_only_when_action_types_name_that_owner(function: str) -> None:
    both = granted(Stack(ActionTypes=TWO_TYPES), function)
    custom_only = granted(Stack(), function)  # the default: Custom/Build/MyTool/1
    partner_only = granted(Stack(ActionTypes=PARTNER_ONLY), function)

    assert both & PARTNER_OPERATIONS
    assert both & CUSTOM_OPERATIONS
    assert custom_only == both - PARTNER_OPERATIONS
    assert partner_only == both - CUSTOM_OPERATIONS
    several = Stack(ActionTypes=f"Custom/Build/A/1,Custom/Test/B/1,{PARTNER_ONLY}")
    assert several.conditions["HasCustom"]
    assert several.conditions["HasThirdParty"]


def test_each_function_reaches_only_its_own_records_in_the_job_table() -> None:
    stack = Stack()
    keys = {}
    for function, prefix in ((ACKNOWLEDGER, "handoff#*"), (WORKER, "work#*"), (DEAD_LETTER, "work#*")):
        [items] = [s for s in statements(stack, function) if s["Resource"] == "GetAtt:JobTable.Arn"]
        assert items["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [prefix]}}
        keys[function] = set(items["Action"])
    assert keys[ACKNOWLEDGER] == {a for a in ACKNOWLEDGER_OPERATIONS if a.startswith("dynamodb:")} - {"dynamodb:Query"}
    assert keys[WORKER] == IDEMPOTENCY_OPERATIONS
    assert keys[DEAD_LETTER] == {"dynamodb:UpdateItem"}  # a failed-back job's record marked done, nothing read
    # The reconciler's query, on the sparse index that holds the hand-off records only
    [query] = [s for s in statements(stack, ACKNOWLEDGER) if s["Action"] == ["dynamodb:Query"]]
    assert query["Resource"] == "GetAtt:JobTable.Arn/index/pending"
    assert not [s for s in statements(stack, WORKER) if "dynamodb:Query" in s["Action"]]


def test_the_dead_letter_handler_is_granted_exactly_its_operations_on_the_dead_letter_queue() -> None:
    stack = Stack(ActionTypes=TWO_TYPES, ClientTokenSecretArn=SECRET)
    assert granted(stack, DEAD_LETTER) == DEAD_LETTER_OPERATIONS | {SECRET_READ} | SQS_POLLER_ACTIONS
    assert granted(Stack(ActionTypes=TWO_TYPES), DEAD_LETTER) == DEAD_LETTER_OPERATIONS | SQS_POLLER_ACTIONS
    assert all(s["Effect"] == "Allow" for s in statements(stack, DEAD_LETTER))
    [poller] = [s for s in statements(stack, DEAD_LETTER) if s["Action"] == sorted(SQS_POLLER_ACTIONS)]
    assert poller["Resource"] == "GetAtt:WorkDeadLetterQueue.Arn"


@pytest.mark.parametrize("function", ALL_FUNCTIONS)
def test_only_actions_without_a_resource_type_are_granted_on_star(function: str) -> None:
    stack = Stack(ActionTypes=TWO_TYPES, ClientTokenSecretArn=SECRET, RegisterCustomActionType="true")
    on_star = {a for s in statements(stack, function) if s["Resource"] == "*" for a in s["Action"]}
    assert on_star <= NO_RESOURCE_TYPE
    assert on_star == granted(stack, function) & NO_RESOURCE_TYPE


def test_poll_for_jobs_is_scoped_to_each_action_type_arn() -> None:
    [poll] = [s for s in statements(Stack(ActionTypes=TWO_TYPES)) if s["Action"] == ["codepipeline:PollForJobs"]]
    assert poll["Resource"] == [
        "arn:aws:codepipeline:us-east-1:123456789012:actiontype:Custom/Build/MyTool/1",
        "arn:aws:codepipeline:us-east-1:123456789012:actiontype:ThirdParty/Deploy/PartnerTool/2",
    ]


@pytest.mark.parametrize("function", FUNCTIONS)
def test_the_secret_is_readable_only_when_configured_and_only_that_one(function: str) -> None:
    assert not [s for s in statements(Stack(), function) if s["Action"] == [SECRET_READ]]
    [read] = [s for s in statements(Stack(ClientTokenSecretArn=SECRET), function) if s["Action"] == [SECRET_READ]]
    assert read["Resource"] == SECRET


def test_the_acknowledger_sends_to_the_work_queue_and_sam_to_the_failure_queue_only() -> None:
    sends = [s["Resource"] for s in statements(Stack()) if s["Action"] == ["sqs:SendMessage"]]
    assert sorted(sends) == ["GetAtt:FailedInvocationsQueue.Arn", "GetAtt:WorkQueue.Arn"]
    sqs = [s for s in statements(Stack()) if any(a.startswith("sqs:") for a in s["Action"])]
    assert all(s["Action"] == ["sqs:SendMessage"] for s in sqs)


@pytest.mark.parametrize(("tracing", "xray"), [("Disabled", False), ("Active", True)])
@pytest.mark.parametrize("function", ALL_FUNCTIONS)
def test_the_x_ray_policy_and_mode_follow_the_tracing_parameter(function: str, tracing: str, xray: bool) -> None:
    stack = Stack(Tracing=tracing, RegisterCustomActionType="true")
    managed = stack.resource(f"{function}Role")["Properties"]["ManagedPolicyArns"]
    assert managed[0] == "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    assert any("XrayWriteOnly" in arn for arn in managed) is xray
    # No other managed policy: in particular not AWSLambdaSQSQueueExecutionRole, which is on every queue
    assert len(managed) == 1 + xray
    properties = stack.resource(function)["Properties"]
    assert ("TracingConfig" in properties) is xray
    assert stack.value(properties["Environment"]["Variables"]["POWERTOOLS_TRACE_DISABLED"]) == str(not xray).lower()


# -- the acknowledger's triggers -----------------------------------------------------------------------------


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


# -- configuration -------------------------------------------------------------------------------------------


def environment(stack: Stack, function: str) -> dict[str, str]:
    variables = stack.value(stack.resource(function)["Properties"]["Environment"]["Variables"])
    deployed = {"GetAtt:WorkQueue.QueueUrl": QUEUE_URL, "Ref:JobTable": TABLE_NAME}
    return {k: deployed.get(str(v), str(v)) for k, v in variables.items()}


@pytest.mark.parametrize("function", ALL_FUNCTIONS)
def test_the_environment_is_exactly_what_the_code_reads(function: str) -> None:
    variables = environment(Stack(RegisterCustomActionType="true"), function)
    configuration = {field.alias for field in SETTINGS[function].model_fields.values()}
    if function == REGISTRAR:
        configuration -= {"CLIENT_TOKEN_SECRET_ID", "JOB_TABLE_NAME"}  # it reads no partner token, keeps no records

    assert configuration <= set(variables), configuration - set(variables)
    assert set(variables) - configuration == LIBRARY_VARIABLES[function]


def test_the_acknowledger_loads_with_the_template_defaults_and_hands_off_to_the_work_queue() -> None:
    stack = Stack()
    assert stack.resource(ACKNOWLEDGER)["Properties"]["Environment"]["Variables"]["JOB_QUEUE_URL"] == {
        "Fn::GetAtt": ["WorkQueue", "QueueUrl"]
    }
    settings = load_settings(environment(stack, ACKNOWLEDGER))
    assert settings.action_type_names() == ["Custom/Build/MyTool/1"]
    assert (settings.job_queue_url, settings.job_table_name) == (QUEUE_URL, TABLE_NAME)
    assert settings.tracing_disabled is True
    # The template's defaults are the code's: a function deployed with them runs as one run without them
    defaults = load_settings({"ACTION_TYPES": "Custom/Build/MyTool/1"})
    assert (settings.max_batch_size, settings.ack_concurrency, settings.max_attempts) == (
        defaults.max_batch_size,
        defaults.ack_concurrency,
        defaults.max_attempts,
    )
    assert (settings.connect_timeout_s, settings.read_timeout_s) == (1, 2)


def test_the_work_function_loads_with_the_template_defaults() -> None:
    settings = load_config(WorkerSettings, environment(Stack(), WORKER))
    assert settings.work_function == DEFAULT_WORK_FUNCTION
    assert settings.client_token_secret_id is None
    assert (settings.max_attempts, settings.job_table_name) == (3, TABLE_NAME)
    # Each job's limit shared from the function's timeout by a full batch of the event source's size; the jobs not
    # started released on the work queue
    assert (settings.job_time_limit_s, settings.work_batch_size, settings.job_isolation) == (0, 10, "process")
    assert settings.job_queue_url == QUEUE_URL
    sized = load_config(WorkerSettings, environment(Stack(JobTimeLimit="120", WorkBatchSize="2"), WORKER))
    assert (sized.job_time_limit_s, sized.work_batch_size) == (120, 2)
    custom = Stack(WorkEntryPoint="mypackage.actions:run", ClientTokenSecretArn=SECRET, MaxAttempts="2")
    settings = load_config(WorkerSettings, environment(custom, WORKER))
    assert (settings.work_function, settings.client_token_secret_id, settings.max_attempts) == (
        "mypackage.actions:run",
        SECRET,
        2,
    )


def test_under_sam_local_invoke_the_acknowledger_loads_and_hands_off_nothing() -> None:
    """The SAM CLI cannot resolve the queue's URL: it leaves JOB_QUEUE_URL empty, which the code reads as unset
    (a Ref would resolve to the bare logical id, which fails the cold start)."""
    described = sam_inspect("function", "template.yaml", ACKNOWLEDGER)
    assert described["environment"]["JOB_QUEUE_URL"] == ""
    settings = load_settings(described["environment"])
    assert settings.job_queue_url is None
    worker = sam_inspect("function", "template.yaml", WORKER)
    worker_settings = load_config(WorkerSettings, worker["environment"])
    assert (worker_settings.work_function, worker_settings.job_queue_url) == (DEFAULT_WORK_FUNCTION, None)
    assert (worker["handler"], worker["timeout"], worker["memory"]) == (
        "codepipeline_worker.work.handler.lambda_handler",
        300,
        256,
    )


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


@pytest.mark.parametrize(
    "reference",
    [
        DEFAULT_WORK_FUNCTION,
        "mypackage:run",
        "my_package.sub.module:_run2",
        "_private:f",
        "mypackage.run",
        "my-package:run",
        "mypackage:run.it",
        "mypackage:",
        ":run",
        "1package:run",
        "mypackage.:run",
        "mypackage:run ",
        "mypackage::run",
        "",
    ],
)
def test_the_work_entry_point_parameter_accepts_what_the_code_accepts(reference: str) -> None:
    parameter = Stack().source["Parameters"]["WorkEntryPoint"]
    assert parameter["Default"] == DEFAULT_WORK_FUNCTION
    try:
        load_config(WorkerSettings, {"WORK_FUNCTION": reference, "JOB_TABLE_NAME": TABLE_NAME})
        accepted = True
    except ConfigurationError:
        accepted = False
    assert bool(re.fullmatch(parameter["AllowedPattern"], reference)) is accepted


# -- the functions ------------------------------------------------------------------------------------------


def test_the_acknowledger_runs_python_3_13_on_arm64_in_128_mb_with_a_handler_that_exists() -> None:
    stack = Stack()
    function = stack.resource(ACKNOWLEDGER)["Properties"]
    assert (function["Runtime"], stack.value(function["Architectures"]), function["MemorySize"]) == (
        "python3.13",
        ["arm64"],
        128,
    )
    # A partner poll's worst case, 10 calls of 12 s (3 attempts of 1 s to connect and 2 s to read, and the
    # pauses), fits, with a minute to poll on; more attempts would not (MaxAttempts stops at 3)
    assert function["Timeout"] == 180
    assert stack.source["Parameters"]["MaxAttempts"]["MaxValue"] == 3
    from codepipeline_worker.acknowledger.budget import Budget

    budget = Budget.of(load_settings(environment(stack, ACKNOWLEDGER)))
    assert budget.poll_s("ThirdParty", hand_off=True) == 120 <= function["Timeout"] - 60
    module, name = function["Handler"].rsplit(".", 1)
    assert module == handler.__name__
    assert callable(getattr(handler, name))
    assert stack.value(function["LoggingConfig"]) == {"LogGroup": "Ref:JobWorkerLogGroup"}
    assert "ReservedConcurrentExecutions" not in stack.value(function)
    reserved = Stack(ReservedConcurrency="5")
    assert reserved.value(reserved.resource(ACKNOWLEDGER)["Properties"])["ReservedConcurrentExecutions"] == "5"


def test_the_work_function_runs_python_3_13_on_arm64_with_a_handler_that_exists() -> None:
    stack = Stack()
    function = stack.value(stack.resource(WORKER)["Properties"])
    assert (function["Runtime"], function["Architectures"], function["MemorySize"], function["Timeout"]) == (
        "python3.13",
        ["arm64"],
        "256",
        "300",
    )
    module, name = function["Handler"].rsplit(".", 1)
    assert module == worker_handler.__name__
    assert callable(getattr(worker_handler, name))
    assert function["LoggingConfig"] == {"LogGroup": "Ref:WorkLogGroup"}
    assert stack.source["Resources"][WORKER]["Properties"]["CodeUri"] == "src/"
    log_group = stack.value(stack.resource("WorkLogGroup")["Properties"])
    assert log_group == {"LogGroupName": "/aws/lambda/worker-work", "RetentionInDays": "30"}
    timeout = stack.source["Parameters"]["WorkTimeout"]
    assert (timeout["Default"], max(timeout["AllowedValues"])) == (300, 900)
    sized = Stack(WorkTimeout="900", WorkMemorySize="1024", Architecture="x86_64")
    function = sized.value(sized.resource(WORKER)["Properties"])
    assert (function["Timeout"], function["MemorySize"], function["Architectures"]) == ("900", "1024", ["x86_64"])


def test_the_work_queue_is_an_encrypted_fifo_queue_with_a_dead_letter_queue_and_six_times_the_timeout_to_run() -> None:
    stack = Stack()
    queue = stack.value(stack.resource("WorkQueue")["Properties"])
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["RedrivePolicy"] == {"deadLetterTargetArn": "GetAtt:WorkDeadLetterQueue.Arn", "maxReceiveCount": 5}
    # FIFO, deduplicated per message group (each job its own), high throughput; as the local runs make it
    assert {k: str(queue[k]).lower() for k in WORK_QUEUE_ATTRIBUTES} == {
        k: v.lower() for k, v in WORK_QUEUE_ATTRIBUTES.items()
    }
    assert MAX_RECEIVE_COUNT == 5
    dead_letters = stack.value(stack.resource("WorkDeadLetterQueue")["Properties"])
    # Six times the dead-letter handler's timeout, for its event source
    dead_letter_timeout = stack.value(stack.resource(DEAD_LETTER)["Properties"])["Timeout"]
    assert dead_letters == {
        "FifoQueue": True,
        "SqsManagedSseEnabled": True,
        "MessageRetentionPeriod": 1209600,
        "VisibilityTimeout": 6 * dead_letter_timeout,
    }
    # AWS's advice for an SQS event source: a visibility timeout at least six times the function's timeout, for
    # every timeout the parameter allows
    assert stack.source["Resources"][WORKER]["Properties"]["Timeout"] == {"Ref": "WorkTimeout"}
    for timeout in stack.source["Parameters"]["WorkTimeout"]["AllowedValues"]:
        stack.values["WorkTimeout"] = str(timeout)
        visibility = stack.value(stack.resource("WorkQueue")["Properties"]["VisibilityTimeout"])
        assert 6 * timeout <= visibility <= 43200, (timeout, visibility)


def test_every_queue_refuses_access_without_tls() -> None:
    stack = Stack()
    policies = {
        stack.value(p["Properties"]["Queues"])[0].removeprefix("Ref:"): stack.value(p["Properties"]["PolicyDocument"])
        for p in stack.of_type("AWS::SQS::QueuePolicy").values()
    }
    assert (
        set(policies)
        == set(stack.of_type("AWS::SQS::Queue"))
        == {
            "WorkQueue",
            "WorkDeadLetterQueue",
            "FailedInvocationsQueue",
        }
    )
    for queue, document in policies.items():
        assert document["Statement"] == [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "sqs:*",
                "Resource": f"GetAtt:{queue}.Arn",
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ]


def test_the_work_function_takes_batches_from_the_work_queue_and_reports_batch_item_failures() -> None:
    stack = Stack()
    mappings = stack.of_type("AWS::Lambda::EventSourceMapping")
    assert set(mappings) == {"WorkEventSource", "DeadLetterEventSource"}
    name, mapping = "WorkEventSource", mappings["WorkEventSource"]
    assert stack.value(mapping["Properties"]) == {
        "FunctionName": "Ref:WorkFunction",
        "EventSourceArn": "GetAtt:WorkQueue.Arn",
        "BatchSize": "10",
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "Enabled": True,
    }
    smaller = Stack(WorkBatchSize="1")
    assert smaller.value(smaller.resource(name)["Properties"]["BatchSize"]) == "1"
    # The handler reads SQS batches and answers batchItemFailures (test_built_artifact runs it on one)
    assert worker_handler.processor.event_type is EventType.SQS


def test_the_job_table_is_kept_on_demand_encrypted_recoverable_and_expiring() -> None:
    stack = Stack()
    table = stack.resource("JobTable")
    assert (table["DeletionPolicy"], table["UpdateReplacePolicy"]) == ("Retain", "Retain")
    properties = stack.value(table["Properties"])
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["SSESpecification"] == {"SSEEnabled": True}
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    # The attribute both the hand-off records and the once-only records expire by
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    # The key schema and the index the code queries, as the local runs make them
    schema = {k: properties[k] for k in ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes")}
    assert schema == {k: v for k, v in JOB_TABLE_SCHEMA.items() if k != "BillingMode"}
    assert JOB_TABLE_SCHEMA["GlobalSecondaryIndexes"][0]["IndexName"] == HANDOFF_INDEX
    for function in FUNCTIONS:
        assert environment(stack, function)["JOB_TABLE_NAME"] == TABLE_NAME


def test_the_dead_letter_handler_takes_the_dead_letters_with_batch_item_failures() -> None:
    stack = Stack()
    function = stack.value(stack.resource(DEAD_LETTER)["Properties"])
    assert (function["Runtime"], function["Architectures"], function["MemorySize"], function["Timeout"]) == (
        "python3.13",
        ["arm64"],
        128,
        60,
    )
    module, name = function["Handler"].rsplit(".", 1)
    assert module == dead_letter_handler.__name__
    assert callable(getattr(dead_letter_handler, name))
    assert dead_letter_handler.processor.event_type is EventType.SQS
    assert function["LoggingConfig"] == {"LogGroup": "Ref:DeadLetterLogGroup"}
    log_group = stack.value(stack.resource("DeadLetterLogGroup")["Properties"])
    assert log_group == {"LogGroupName": "/aws/lambda/worker-dead-letters", "RetentionInDays": "30"}
    assert stack.value(stack.resource("DeadLetterEventSource")["Properties"]) == {
        "FunctionName": "Ref:DeadLetterFunction",
        "EventSourceArn": "GetAtt:WorkDeadLetterQueue.Arn",
        "BatchSize": 10,
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "Enabled": True,
    }
    # It stands behind the work function the stack deploys: one that cannot start is named in its failures
    settings = load_config(DeadLetterSettings, environment(Stack(WorkEntryPoint="mypackage.actions:run"), DEAD_LETTER))
    assert settings.work_function == "mypackage.actions:run"


def test_failed_invocations_are_retried_twice_then_kept_in_an_encrypted_queue() -> None:
    stack = Stack()
    config = stack.resource("JobWorkerFunctionEventInvokeConfig")["Properties"]
    assert config["MaximumRetryAttempts"] == 2
    assert stack.value(config["DestinationConfig"]) == {
        "OnFailure": {"Destination": "GetAtt:FailedInvocationsQueue.Arn"}
    }
    assert stack.resource("FailedInvocationsQueue")["Properties"]["SqsManagedSseEnabled"] is True
    log_group = stack.resource("JobWorkerLogGroup")["Properties"]
    assert stack.value(log_group["RetentionInDays"]) == "30"


# -- alarms, the action type, outputs ------------------------------------------------------------------------


def emitted_metric_names() -> set[str]:
    """The metric names the code emits: `add_metric(name="...")` literals, and the values of the mappings
    from outcome to metric name."""
    names = set()
    for path in (ROOT / "src" / "codepipeline_worker").rglob("*.py"):
        names |= set(re.findall(r'add_metric\(name="(\w+)"', path.read_text()))
        names |= set(re.findall(r':\s*"(Jobs\w+|Results\w+|Handoff\w+)"', path.read_text()))
        names |= set(re.findall(r'metric="(\w+)"', path.read_text()))
    return names


def test_alarms_watch_both_functions_the_hand_off_and_both_queues_of_failures() -> None:
    stack = Stack(AlarmTopicArn=TOPIC)
    alarms = {name: stack.value(a["Properties"]) for name, a in stack.of_type("AWS::CloudWatch::Alarm").items()}
    watched = {
        name: (a["Namespace"], a["MetricName"], {d["Name"]: d["Value"] for d in a["Dimensions"]})
        for name, a in alarms.items()
    }
    service = {"service": DEFAULT_SERVICE_NAME}
    assert watched == {
        "FunctionErrorsAlarm": ("AWS/Lambda", "Errors", {"FunctionName": "Ref:JobWorkerFunction"}),
        "PollFailuresAlarm": (DEFAULT_METRICS_NAMESPACE, "PollFailures", service),
        "FailedInvocationsAlarm": (
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            {"QueueName": "GetAtt:FailedInvocationsQueue.QueueName"},
        ),
        "HandoffFailuresAlarm": (DEFAULT_METRICS_NAMESPACE, "HandoffFailures", service),
        "HandoffsPendingAlarm": (DEFAULT_METRICS_NAMESPACE, "HandoffsPending", service),
        "JobsFailedAlarm": (DEFAULT_METRICS_NAMESPACE, "JobsFailed", service),
        "InvalidEventsAlarm": (DEFAULT_METRICS_NAMESPACE, "InvalidEvents", service),
        "WorkFunctionErrorsAlarm": ("AWS/Lambda", "Errors", {"FunctionName": "Ref:WorkFunction"}),
        "WorkErrorsAlarm": (DEFAULT_METRICS_NAMESPACE, "WorkErrors", service),
        "WorkDeadLetterAlarm": (
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            {"QueueName": "GetAtt:WorkDeadLetterQueue.QueueName"},
        ),
        "WorkTimeoutsAlarm": (DEFAULT_METRICS_NAMESPACE, "WorkTimeouts", service),
        "ResultsRejectedAlarm": (DEFAULT_METRICS_NAMESPACE, "ResultsRejected", service),
        "JobsFailedBackAlarm": (DEFAULT_METRICS_NAMESPACE, "JobsFailedBack", service),
        "DeadLettersNotFailedBackAlarm": (DEFAULT_METRICS_NAMESPACE, "DeadLettersNotFailedBack", service),
        "DeadLetterFunctionErrorsAlarm": ("AWS/Lambda", "Errors", {"FunctionName": "Ref:DeadLetterFunction"}),
    }
    for alarm in alarms.values():
        assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
        assert alarm["TreatMissingData"] == "notBreaching"
        assert alarm["AlarmActions"] == [TOPIC]
    default = Stack()
    assert not [
        a
        for a in default.of_type("AWS::CloudWatch::Alarm").values()
        if "AlarmActions" in default.value(a["Properties"])
    ]
    # The custom metrics alarmed on are ones the code emits, in the namespace and service the functions use
    custom = {a["MetricName"] for a in alarms.values() if a["Namespace"] == DEFAULT_METRICS_NAMESPACE}
    assert custom <= emitted_metric_names()
    for function in FUNCTIONS:
        settings = load_config(CommonSettings, environment(stack, function))
        assert (settings.metrics_namespace, settings.service_name) == (DEFAULT_METRICS_NAMESPACE, DEFAULT_SERVICE_NAME)


def example_properties() -> set[str]:
    """The action-configuration properties the example work function reads: `config.get("<name>"`."""
    source = (ROOT / "src" / "codepipeline_worker" / "examples" / "url_gate.py").read_text()
    return set(re.findall(r'config\.get\("(\w+)"', source))


def test_the_action_type_is_registered_only_when_asked() -> None:
    stack = Stack()
    assert stack.conditions["RegisterActionType"] is False
    for name in (REGISTRAR, "ActionType", "ActionTypeLogGroup"):
        assert stack.source["Resources"][name]["Condition"] == "RegisterActionType"
    registered = Stack(RegisterCustomActionType="true", ActionTypes=TWO_TYPES, PollQueryParam="ProjectName=web")
    resource = registered.resource("ActionType")
    assert resource["Type"] == "Custom::CodePipelineActionType"
    # The first action type, the work function's module and the query parameter: what the custom resource reads
    assert registered.value(resource["Properties"]) == {
        "ServiceToken": f"GetAtt:{REGISTRAR}.Arn",
        "ActionType": "Custom/Build/MyTool/1",
        "WorkEntryPoint": DEFAULT_WORK_FUNCTION,
        "PollQueryParam": "ProjectName=web",
    }
    properties = registered.resource(REGISTRAR)["Properties"]
    assert properties["Handler"] == "codepipeline_worker.registrar.handler.lambda_handler"
    # The same code as the work function: it imports the work function's module
    assert registered.source["Resources"][REGISTRAR]["Properties"]["CodeUri"] == "src/"
    assert registered.source["Resources"][WORKER]["Properties"]["CodeUri"] == "src/"


def test_the_action_type_function_may_register_and_delete_that_action_type_only() -> None:
    stack = Stack(RegisterCustomActionType="true", ActionTypes="Custom/Deploy/Gate/3,ThirdParty/Deploy/PartnerTool/2")
    assert granted(stack, REGISTRAR) == REGISTRAR_OPERATIONS
    [register] = [s for s in statements(stack, REGISTRAR) if "codepipeline:CreateCustomActionType" in s["Action"]]
    assert register["Action"] == ["codepipeline:CreateCustomActionType", "codepipeline:DeleteCustomActionType"]
    assert register["Resource"] == "arn:aws:codepipeline:us-east-1:123456789012:actiontype:Custom/Deploy/Gate/3"


def test_the_functions_share_their_metadata_so_that_sam_build_builds_their_code_once() -> None:
    """`sam build` groups functions with the same CodeUri, runtime, architecture and Metadata into one build;
    any difference in Metadata builds (and installs the dependencies of) each function on its own."""
    functions = {n: r for n, r in Stack().source["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}
    assert set(functions) == {ACKNOWLEDGER, WORKER, DEAD_LETTER, REGISTRAR}
    assert len({json.dumps(f.get("Metadata"), sort_keys=True) for f in functions.values()}) == 1
    assert {f["Properties"]["CodeUri"] for f in functions.values()} == {"src/"}


def test_the_example_declares_every_property_it_reads() -> None:
    declared = {p.name: p for p in declared_properties(DEFAULT_WORK_FUNCTION)}
    assert set(declared) == example_properties()
    assert [name for name, p in declared.items() if p.required] == ["Url"]


def test_the_outputs_name_the_action_type_the_queues_and_the_functions() -> None:
    stack = Stack(ActionTypes=TWO_TYPES)
    outputs = {name: stack.value(o["Value"]) for name, o in stack.template["Outputs"].items()}
    assert outputs == {
        "ActionType": "Custom/Build/MyTool/1",
        "JobWorkerFunctionName": "Ref:JobWorkerFunction",
        "JobWorkerFunctionArn": "GetAtt:JobWorkerFunction.Arn",
        "LogGroupName": "Ref:JobWorkerLogGroup",
        "FailedInvocationsQueueUrl": "Ref:FailedInvocationsQueue",
        "WorkQueueUrl": "Ref:WorkQueue",
        "JobTableName": "Ref:JobTable",
        "WorkDeadLetterQueueUrl": "Ref:WorkDeadLetterQueue",
        "WorkFunctionName": "Ref:WorkFunction",
        "WorkLogGroupName": "Ref:WorkLogGroup",
        "DeadLetterFunctionName": "Ref:DeadLetterFunction",
        "DeadLetterLogGroupName": "Ref:DeadLetterLogGroup",
    }


# -- the guard between make build and sam deploy ---------------------------------------------------------------


def fake_build(root: Path, machine: int) -> Path:
    """A build whose one shared object is an ELF header for `machine` (62 x86_64, 183 aarch64)."""
    library = root / "build" / "WorkFunction" / "pydantic_core" / "_pydantic_core.so"
    library.parent.mkdir(parents=True)
    library.write_bytes(b"\x7fELF" + bytes(14) + machine.to_bytes(2, "little") + bytes(44))
    (root / "build" / "template.yaml").write_text("Resources: {}\n")
    return root / "build"


def deploy_check(*args: str) -> subprocess.CompletedProcess[str]:
    return run(str(ROOT / ".venv-sam" / "bin" / "python"), str(ROOT / "tools" / "deploy_check.py"), *args)


def test_make_deploy_refuses_a_build_for_another_architecture(tmp_path: Path) -> None:
    """What `make invoke` used to leave in .aws-sam/build on this machine: x86_64 code, for an arm64 stack."""
    host_build = fake_build(tmp_path, 62)

    refused = deploy_check("--build", str(host_build))
    chosen = deploy_check("--build", str(host_build), "--architecture", "x86_64")

    assert deploy_check("--print").stdout == "arm64\n"  # the template's default; samconfig.toml sets none
    assert refused.returncode == 1
    assert refused.stderr.splitlines() == [
        f"{host_build}/WorkFunction/pydantic_core/_pydantic_core.so is x86_64 code, but the stack deploys arm64 "
        "(template.yaml's default): make build builds arm64; to deploy x86_64, set Architecture=x86_64 in "
        "samconfig.toml (sam deploy --guided asks)"
    ]
    assert chosen.returncode == 0, chosen.stderr
    arm = deploy_check("--build", str(fake_build(tmp_path / "arm", 183)))
    assert arm.returncode == 0, arm.stderr
