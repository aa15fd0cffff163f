"""Command line for the local CodePipeline endpoint.

    python -m codepipeline_local serve --port 4599 [--moto | --aws-url URL]
    python -m codepipeline_local create-job --action-type Custom/Build/MyTool/1 --count 3 --config ProjectName=demo
    python -m codepipeline_local create-job --action-type Custom/Build/MyTool/1 --input-artifact SourceArtifact=./src \\
        --output-artifact BuildArtifact --encryption-key new
    python -m codepipeline_local jobs
    python -m codepipeline_local time-out <job-id>
    python -m codepipeline_local artifact <job-id> BuildArtifact --extract out/
    python -m codepipeline_local faults --throttle 0.3 --latency 0.05
    python -m codepipeline_local stats

Every command but `serve` and `measure` reaches the endpoint at --url, or $AWS_ENDPOINT_URL_CODEPIPELINE.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import io
import json
import logging
import os
import sys
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .control import ControlClient, ControlError
from .jobs import DEFAULT_ACCOUNT, action_type_key, default_context
from .server import LocalCodePipeline

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "measure":
        from .measure import report  # noqa: PLC0415 - imports boto3 clients only when asked

        print(report(args.jobs, args.calls))
        return 0
    client = ControlClient(args.url)
    try:
        answer = _COMMANDS[args.command](client, args)
    except (ControlError, OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if answer is not None:
        print(json.dumps(answer, indent=2))
    return 0


def _serve(args: argparse.Namespace) -> int:
    with _local_aws(args) as aws_url:
        try:
            endpoint = LocalCodePipeline(
                host=args.host,
                port=args.port,
                dispatch_timeout_s=args.dispatch_timeout,
                action_timeout_s=args.action_timeout,
                credentials_ttl_s=args.credentials_ttl,
                aws_url=aws_url,
            )
        except OSError as error:
            reason = "is in use" if error.errno == errno.EADDRINUSE else f"cannot be listened on ({error.strerror})"
            where = f"port {args.port} on {args.host}"
            print(f"error: {where} {reason}: choose another, --port N (make endpoint ENDPOINT_PORT=N)", file=sys.stderr)
            return 1
        print(f"local CodePipeline endpoint on {endpoint.url}", flush=True)
        print(f"export AWS_ENDPOINT_URL_CODEPIPELINE={endpoint.url}", flush=True)
        if aws_url:
            print(f"local S3 and KMS on {aws_url}; workers reach artifacts through the front:", flush=True)
            print(f"export AWS_ENDPOINT_URL_S3={endpoint.artifact_url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            endpoint.serve_forever()
    return 0


@contextlib.contextmanager
def _local_aws(args: argparse.Namespace) -> Iterator[str | None]:
    """The local S3/KMS the endpoint uses: --aws-url, or a moto server started here with --moto."""
    if not args.moto:
        yield args.aws_url
        return
    from moto.server import ThreadedMotoServer  # noqa: PLC0415 - only with --moto

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def _create(client: ControlClient, args: argparse.Namespace) -> Any:
    fields: dict[str, Any] = {"configuration": dict(_pair(p) for p in args.config)}
    named = (
        ("kind", args.kind),
        ("clientId", args.client_id),
        ("clientToken", args.client_token),
        ("jobId", args.job_id),
        ("nonce", args.nonce),
        ("dispatchedNonce", args.dispatched_nonce),
        ("continuationToken", args.continuation_token),
        ("timeoutSeconds", args.timeout),
    )
    fields.update({name: value for name, value in named if value})
    if args.account_id:
        fields["accountId"] = args.account_id
    if args.created:
        fields["status"] = "Created"
    if args.pipeline_name or args.stage or args.action_name:
        fields["pipelineContext"] = default_context(
            action_type_key(args.action_type),
            args.account_id or DEFAULT_ACCOUNT,
            pipeline_name=args.pipeline_name,
            stage=args.stage,
            action=args.action_name,
        )
    if args.no_artifacts or args.input_artifact:
        fields["inputArtifacts"] = [_input_artifact(spec) for spec in args.input_artifact]
    if args.no_artifacts or args.output_artifact:
        fields["outputArtifacts"] = [{"name": name} for name in args.output_artifact]
    if args.encryption_key:
        fields["encryptionKey"] = "new" if args.encryption_key == "new" else {"id": args.encryption_key, "type": "KMS"}
    fields.update(json.loads(args.json) if args.json else {})
    return {"jobIds": client.create_jobs(args.action_type, args.count, **fields)}


def _input_artifact(spec: str) -> dict[str, Any]:
    """NAME (default content) or NAME=PATH (a directory, zipped; a .zip; or a file, zipped alone)."""
    name, sep, path = spec.partition("=")
    return {"name": name, "path": str(Path(path).resolve())} if sep else {"name": name}


def _action_type(client: ControlClient, args: argparse.Namespace) -> Any:
    definition = json.loads(Path(args.definition_file).read_text()) if args.definition_file else {}
    definition.update(json.loads(args.definition) if args.definition else {})
    client.add_action_type(args.action_type, **definition)
    return {"actionType": args.action_type}


def _artifact(client: ControlClient, args: argparse.Namespace) -> Any:
    described, content = client.artifact(args.job_id, args.name)
    if content is not None and args.out:
        Path(args.out).write_bytes(content)
        described["writtenTo"] = args.out
    if content is not None and args.extract:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            for member in archive.infolist():  # no member lands outside the directory
                target = (Path(args.extract) / member.filename).resolve()
                if not target.is_relative_to(Path(args.extract).resolve()):
                    raise ValueError(f"artifact member {member.filename!r} points outside {args.extract}")
            archive.extractall(args.extract)
        described["extractedTo"] = args.extract
    if content is not None and not (args.out or args.extract) and zipfile.is_zipfile(io.BytesIO(content)):
        described["members"] = zipfile.ZipFile(io.BytesIO(content)).namelist()
    return described


def _faults(client: ControlClient, args: argparse.Namespace) -> Any:
    settings = {
        "latencySeconds": args.latency,
        "jitterSeconds": args.jitter,
        "throttle": args.throttle,
        "http500": args.http500,
        "drop": args.drop,
        "hangAfter": args.hang_after,
        "operations": [op for op in args.operations.split(",") if op],
    }
    if args.seed is not None:
        settings["seed"] = args.seed
    return client.set_faults(**settings)


def _settings(client: ControlClient, args: argparse.Namespace) -> Any:
    named = {
        "dispatchTimeoutSeconds": args.dispatch_timeout,
        "actionTimeoutSeconds": args.action_timeout,
        "credentialsTtlSeconds": args.credentials_ttl,
    }
    return client.settings(**{name: value for name, value in named.items() if value is not None})


def _pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"{text!r} is not key=value")
    return key, value


_COMMANDS: dict[str, Callable[[ControlClient, argparse.Namespace], Any]] = {
    "create-job": _create,
    "action-type": _action_type,
    "jobs": lambda client, _: client.jobs(),
    "job": lambda client, args: client.job(args.job_id),
    "queue": lambda client, args: client.queue(args.job_id),
    "time-out": lambda client, args: client.time_out(args.job_id),
    "expire-credentials": lambda client, args: client.expire_credentials(args.job_id),
    "artifact": _artifact,
    "faults": _faults,
    "stats": lambda client, _: client.stats(),
    "reset": lambda client, _: client.reset(),
    "settings": _settings,
    "dispatch-timeout": lambda client, args: client.set_dispatch_timeout(args.seconds),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m codepipeline_local", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the endpoint in the foreground")
    serve.add_argument("--host", default="127.0.0.1", choices=["127.0.0.1", "localhost", "::1"])
    serve.add_argument("--port", type=int, default=0, help="0 picks a free port")
    serve.add_argument(
        "--dispatch-timeout", type=float, default=60.0, help="seconds before an unacknowledged job is dispatched again"
    )
    serve.add_argument("--action-timeout", type=float, default=3600.0, help="seconds before a job times out")
    serve.add_argument("--credentials-ttl", type=float, default=3600.0, help="seconds artifact credentials last")
    aws = serve.add_mutually_exclusive_group()
    aws.add_argument("--aws-url", help="a running moto server: the local S3 and KMS for artifacts")
    aws.add_argument("--moto", action="store_true", help="start a moto server here for artifacts (S3, KMS)")

    def remote(name: str, help_text: str) -> argparse.ArgumentParser:
        command = commands.add_parser(name, help=help_text)
        command.add_argument("--url", default=os.environ.get("AWS_ENDPOINT_URL_CODEPIPELINE", "http://127.0.0.1:4599"))
        return command

    _seeding_commands(remote)
    _state_commands(remote)
    measure = commands.add_parser("measure", help="per-call time of poll and acknowledge, by jobs held")
    measure.add_argument("--jobs", default="0,1000,10000", help="comma-separated numbers of jobs held")
    measure.add_argument("--calls", type=int, default=300, help="poll+acknowledge rounds per figure")
    return parser


def _seeding_commands(remote: Callable[[str, str], argparse.ArgumentParser]) -> None:
    create = remote("create-job", "seed jobs (checked as CodePipeline's model and the action type require)")
    create.add_argument("--action-type", required=True, help="Owner/Category/Provider/Version")
    create.add_argument("--count", type=int, default=1)
    create.add_argument("--kind", choices=["custom", "thirdParty"], help="default: from the owner")
    create.add_argument("--config", action="append", default=[], help="key=value of the action configuration")
    create.add_argument("--account-id", help=f"default {DEFAULT_ACCOUNT}")
    create.add_argument("--pipeline-name", help="pipeline context: the pipeline (its ARN follows)")
    create.add_argument("--stage", help="pipeline context: the stage name")
    create.add_argument("--action-name", help="pipeline context: the action name")
    create.add_argument(
        "--input-artifact",
        action="append",
        default=[],
        help="NAME or NAME=PATH (a directory, zipped; a .zip; a file), uploaded to the local S3; repeatable",
    )
    create.add_argument("--output-artifact", action="append", default=[], help="NAME; repeatable")
    create.add_argument("--no-artifacts", action="store_true", help="no input or output artifacts but those named")
    create.add_argument("--encryption-key", help="a KMS key id or ARN, or 'new' for a new key in the local KMS")
    create.add_argument("--client-id", help="partner jobs: the clientId")
    create.add_argument("--client-token", help="partner jobs: the clientToken")
    create.add_argument("--continuation-token", help="as if a previous job had continued with it")
    create.add_argument("--job-id", help="a fixed job id (count 1)")
    create.add_argument("--nonce", help="the nonce the first poll hands out")
    create.add_argument(
        "--dispatched-nonce", help="create it dispatched, as if a poll had handed it out with this nonce"
    )
    create.add_argument("--created", action="store_true", help="hold it Created until `queue`")
    create.add_argument("--timeout", type=float, help="its action timeout, in seconds")
    create.add_argument("--json", help="any control API job fields, as a JSON object (applied last)")

    action = remote("action-type", "declare an action type (or make one known)")
    action.add_argument("--action-type", required=True, help="Owner/Category/Provider/Version")
    action.add_argument(
        "--definition",
        help="JSON: configurationProperties, settings, inputArtifactDetails, outputArtifactDetails, timeoutSeconds",
    )
    action.add_argument("--definition-file", help="the same, from a file")


def _state_commands(remote: Callable[[str, str], argparse.ArgumentParser]) -> None:

    remote("jobs", "every job, with its state, data and history")
    for name, help_text in (
        ("job", "one job"),
        ("queue", "a Created job becomes Queued"),
        ("time-out", "time a job out now"),
        ("expire-credentials", "expire a job's artifact credentials now"),
    ):
        remote(name, help_text).add_argument("job_id")
    artifact = remote("artifact", "a job's artifact as the local S3 has it")
    artifact.add_argument("job_id")
    artifact.add_argument("name")
    artifact.add_argument("--out", help="write the object to this file")
    artifact.add_argument("--extract", help="extract the zip into this directory")

    faults = remote("faults", "set faults (replaces the current ones)")
    faults.add_argument("--latency", type=float, default=0.0, help="seconds added to every call")
    faults.add_argument("--jitter", type=float, default=0.0, help="plus up to this many seconds, at random")
    faults.add_argument("--throttle", type=float, default=0.0, help="share of calls answered ThrottlingException")
    faults.add_argument("--http500", type=float, default=0.0, help="share of calls answered HTTP 500")
    faults.add_argument("--drop", type=float, default=0.0, help="share of connections closed without an answer")
    faults.add_argument("--hang-after", type=int, help="after this many calls, stop answering (until faults change)")
    faults.add_argument("--operations", default="", help="comma-separated operations (default: all)")
    faults.add_argument("--seed", type=int)

    remote("stats", "calls, faults and errors seen")
    remote("reset", "forget every job, action type and fault")
    settings = remote("settings", "show or set the timeouts")
    settings.add_argument("--dispatch-timeout", type=float, help="seconds before an unacknowledged job is re-queued")
    settings.add_argument("--action-timeout", type=float, help="seconds before a new job times out")
    settings.add_argument("--credentials-ttl", type=float, help="seconds new artifact credentials last")
    timeout = remote("dispatch-timeout", "set the re-dispatch time")
    timeout.add_argument("seconds", type=float)


if __name__ == "__main__":
    sys.exit(main())
