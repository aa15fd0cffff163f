"""The template as the SAM CLI sees it. Runs in the SAM CLI's own environment (.venv-sam), which pins other
boto3 and pydantic versions than the function, and prints JSON.

    .venv-sam/bin/python tools/sam_inspect.py function template.yaml JobWorkerFunction [Key=Value ...]
        name, handler, runtime, timeout, memory and environment, resolved as `sam local invoke` resolves them
        (a value the SAM CLI cannot resolve, such as the work queue's GetAtt QueueUrl, is empty, as there)
    .venv-sam/bin/python tools/sam_inspect.py parameters template.yaml
        the template's Parameters
    .venv-sam/bin/python tools/sam_inspect.py parse samples/pipeline.yaml
        the template as the SAM CLI parses it (short-form intrinsic functions in their long form)
    .venv-sam/bin/python tools/sam_inspect.py transform template.yaml [Key=Value ...]
        the CloudFormation template the AWS::Serverless transform makes, with the parsed source beside it
    .venv-sam/bin/python tools/sam_inspect.py images python3.13 x86_64
        the images `sam local invoke` uses for a runtime: the base image it pulls (unless --skip-pull-image) and
        the "rapid" image it builds on it, with the Runtime Interface Emulator, and runs
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import docker.errors
from samcli.lib.providers.sam_function_provider import SamFunctionProvider
from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider
from samcli.lib.utils.packagetype import ZIP
from samcli.lib.utils.stream_writer import StreamWriter
from samcli.local.docker.lambda_image import LambdaImage
from samcli.local.lambdafn.env_vars import EnvironmentVariables
from samtranslator.internal.managed_policies import get_bundled_managed_policy_map
from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


def describe_function(template: str, name: str, overrides: dict[str, str]) -> dict[str, Any]:
    stacks, _ = SamLocalStackProvider.get_stacks(template, parameter_overrides=overrides)
    function = SamFunctionProvider(stacks).get(name)
    if function is None:
        raise SystemExit(f"no function {name} in {template}")
    variables = (function.environment or {}).get("Variables", {})
    # The same stringification `sam local invoke` applies (numbers to text, true/false lower-case).
    environment = EnvironmentVariables(function.runtime, variables=variables).resolve()
    return {
        "name": name,
        "handler": function.handler,
        "runtime": function.runtime,
        "architectures": function.architectures,
        # A number, whether it came from a parameter's default (a number) or from an override (text)
        "timeout": None if function.timeout is None else int(function.timeout),
        "memory": None if function.memory is None else int(function.memory),
        "environment": {key: environment[key] for key in variables},
    }


class _OfflinePolicies(ManagedPolicyLoader):
    """AWS managed policy ARNs from the translator's own bundled list: no IAM call."""

    def __init__(self) -> None:
        pass

    def load(self) -> dict[str, str]:
        return get_bundled_managed_policy_map("aws") or {}


def transformed(template: str, overrides: dict[str, str]) -> dict[str, Any]:
    source = yaml_parse(Path(template).read_text())
    document = json.loads(json.dumps(source))
    for resource in document["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":  # as `sam package` leaves it
            resource["Properties"]["CodeUri"] = "s3://artifacts/function.zip"
    output = transform(document, overrides, _OfflinePolicies())
    return {"source": source, "transformed": output}


class _NoImages:
    """A Docker client that has no image: asked for one, the SAM CLI builds it."""

    class images:  # noqa: N801 - the attribute the SAM CLI calls
        @staticmethod
        def get(name: str) -> None:
            raise docker.errors.ImageNotFound(name)

        @staticmethod
        def list(**_: Any) -> list[Any]:
            return []


def images(runtime: str, architecture: str) -> dict[str, str]:
    """What `sam local invoke` builds for a ZIP function with no layers, recorded instead of built: the SAM CLI's
    own naming, whatever its version."""
    recorded: dict[str, str] = {}

    def record(base_image: str, docker_tag: str, *_: Any, **__: Any) -> None:
        recorded.update(base=base_image, rapid=docker_tag)

    lambda_image = LambdaImage(None, skip_pull_image=True, force_image_build=False, docker_client=_NoImages())
    lambda_image._build_image = record  # type: ignore[method-assign]
    lambda_image.build(runtime, ZIP, None, [], architecture, stream=StreamWriter(io.StringIO()))
    return recorded


def main(argv: list[str]) -> int:
    command, *rest = argv
    if command == "images":
        runtime, architecture = rest
        print(json.dumps(images(runtime, architecture)))
        return 0
    template, *rest = rest
    if command == "function":
        name, *pairs = rest
        answer = describe_function(template, name, dict(p.split("=", 1) for p in pairs))
    elif command == "parameters":
        answer = yaml_parse(Path(template).read_text()).get("Parameters", {})
    elif command == "parse":
        answer = yaml_parse(Path(template).read_text())
    else:
        answer = transformed(template, dict(p.split("=", 1) for p in rest))
    print(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
