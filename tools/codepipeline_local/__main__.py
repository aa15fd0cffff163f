"""Command line for the local CodePipeline endpoint.

    python -m codepipeline_local serve --port 4599
    python -m codepipeline_local create-job --action-type Custom/Build/MyTool/1 --count 3 --config ProjectName=demo
    python -m codepipeline_local jobs
    python -m codepipeline_local faults --throttle 0.3 --latency 0.05
    python -m codepipeline_local stats

Every command but `serve` reaches the endpoint at --url, or $AWS_ENDPOINT_URL_CODEPIPELINE.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from typing import TYPE_CHECKING, Any

from .control import ControlClient, ControlError
from .server import LocalCodePipeline

if TYPE_CHECKING:
    from collections.abc import Callable


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    client = ControlClient(args.url)
    try:
        answer = _COMMANDS[args.command](client, args)
    except (ControlError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(json.dumps(answer, indent=2))
    return 0


def _serve(args: argparse.Namespace) -> int:
    endpoint = LocalCodePipeline(host=args.host, port=args.port, dispatch_timeout_s=args.dispatch_timeout)
    print(f"local CodePipeline endpoint on {endpoint.url}", flush=True)
    print(f"export AWS_ENDPOINT_URL_CODEPIPELINE={endpoint.url}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        endpoint.serve_forever()
    return 0


def _create(client: ControlClient, args: argparse.Namespace) -> Any:
    fields: dict[str, Any] = {"configuration": dict(_pair(p) for p in args.config)}
    named = (
        ("clientId", args.client_id),
        ("clientToken", args.client_token),
        ("jobId", args.job_id),
        ("dispatchedNonce", args.dispatched_nonce),
    )
    for name, value in named:
        if value:
            fields[name] = value
    return {"jobIds": client.create_jobs(args.action_type, args.count, **fields)}


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


def _pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"{text!r} is not key=value")
    return key, value


_COMMANDS: dict[str, Callable[[ControlClient, argparse.Namespace], Any]] = {
    "create-job": _create,
    "jobs": lambda client, _: client.jobs(),
    "job": lambda client, args: client.job(args.job_id),
    "faults": _faults,
    "stats": lambda client, _: client.stats(),
    "reset": lambda client, _: client.reset(),
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

    def remote(name: str, help_text: str) -> argparse.ArgumentParser:
        command = commands.add_parser(name, help=help_text)
        command.add_argument("--url", default=os.environ.get("AWS_ENDPOINT_URL_CODEPIPELINE", "http://127.0.0.1:4599"))
        return command

    create = remote("create-job", "queue jobs")
    create.add_argument("--action-type", required=True, help="Owner/Category/Provider/Version")
    create.add_argument("--count", type=int, default=1)
    create.add_argument("--config", action="append", default=[], help="key=value of the action configuration")
    create.add_argument("--client-id", help="partner jobs: the clientId")
    create.add_argument("--client-token", help="partner jobs: the clientToken")
    create.add_argument("--job-id", help="a fixed job id (count 1)")
    create.add_argument(
        "--dispatched-nonce", help="create it dispatched, as if a poll had handed it out with this nonce"
    )

    remote("jobs", "every job, with its state and history")
    job = remote("job", "one job")
    job.add_argument("job_id")

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
    remote("reset", "forget every job and fault")
    timeout = remote("dispatch-timeout", "set the re-dispatch time")
    timeout.add_argument("seconds", type=float)
    return parser


if __name__ == "__main__":
    sys.exit(main())
