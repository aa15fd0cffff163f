"""What a function's cold start loads: one SDK session, and nothing its event path does not use."""

from __future__ import annotations

import gc
import hashlib
import json
import os
import subprocess
import sys
from typing import Any

import pytest

from codepipeline_worker.shared.startup import collector_paused
from tests.conftest import closed_port

# Imports a handler as Lambda's runtime does (argv[1]), counting botocore sessions and data loaders as they are
# made; for the work function, then makes a job's S3 client.
PROBE = """
import json, sys
import botocore.loaders, botocore.session

made = {"sessions": 0, "loaders": 0}
for cls, key in ((botocore.session.Session, "sessions"), (botocore.loaders.Loader, "loaders")):
    def counting(self, *args, _init=cls.__init__, _key=key, **kwargs):
        made[_key] += 1
        _init(self, *args, **kwargs)
    cls.__init__ = counting

import gc, importlib
collections = []
gc.callbacks.append(lambda phase, info: collections.append(info["generation"]) if phase == "start" else None)
importlib.import_module(sys.argv[1])
gc.callbacks.clear()
if sys.argv[1] == "codepipeline_worker.work.handler":
    from types import SimpleNamespace
    from pydantic import SecretStr
    from codepipeline_worker.shared.s3 import create_s3_client
    create_s3_client(SimpleNamespace(access_key_id=SecretStr("a"), secret_access_key=SecretStr("b"),
                                     session_token=SecretStr("c")))

built = []
if sys.argv[1] == "codepipeline_worker.acknowledger.handler":
    from codepipeline_worker.acknowledger import events, results
    events.parse_event({"jobId": "00000000-0000-4000-8000-000000000000", "nonce": "1"})
    results.JobResult(job_id="j", job_type="custom", outcome="acknowledged").to_json()
    built = [name for module in (events, results) for name, cls in vars(module).items()
             if getattr(cls, "__pydantic_complete__", False) and cls.__module__ == module.__name__]

names = ("boto3", "aws_lambda_powertools.utilities.parameters", "aws_xray_sdk", "codepipeline_worker.work",
         "codepipeline_worker.examples")
print(json.dumps({**made, "imported": [name for name in names if name in sys.modules], "built": sorted(built),
                  "collections": collections, "collector_on": gc.isenabled(), "frozen": gc.get_freeze_count()}))
"""


# The template's acknowledger (queue on) imported as Lambda's runtime does, then one direct custom job handled by
# its handler, the job's calls answered by botocore's Stubber: what the execution environment then holds.
DIRECT_JOB_PROBE = """
import json, sys
from botocore.stub import Stubber
from pydantic import BaseModel

from codepipeline_worker.acknowledger import handler
from codepipeline_worker.acknowledger.claims import Handoffs
from codepipeline_worker.acknowledger.service import JobService
from codepipeline_worker.shared.adapter import CodePipelineAdapter, HandoffLedger, WorkQueue, sdk_session

JOB = "11111111-abcd-4bcd-8bcd-0123456789ab"
settings = handler.settings
codepipeline, sqs, dynamodb = (sdk_session().create_client(name) for name in ("codepipeline", "sqs", "dynamodb"))
answers = Stubber(codepipeline)
answers.add_response("acknowledge_job", {"status": "InProgress"}, {"jobId": JOB, "nonce": "1"})
queue = Stubber(sqs)
body = sys.argv[1]
queue.add_response(
    "send_message",
    {"MessageId": "m-1", "MD5OfMessageBody": __import__("hashlib").md5(body.encode()).hexdigest()},
    {"QueueUrl": settings.job_queue_url, "MessageBody": body, "MessageGroupId": sys.argv[2],
     "MessageDeduplicationId": sys.argv[2]},
)
handoffs = Handoffs(WorkQueue(sqs, settings.job_queue_url), HandoffLedger(dynamodb, settings.job_table_name))
service = JobService(settings, CodePipelineAdapter(codepipeline), None, handoffs=handoffs)

class Context:
    function_name = "acknowledger"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:acknowledger"
    aws_request_id = "r-1"
    def get_remaining_time_in_millis(self):
        return 60_000

with answers, queue:
    result = handler.lambda_handler({"jobId": JOB, "nonce": "1"}, Context(), service)
    answers.assert_no_pending_responses()
    queue.assert_no_pending_responses()

def models(cls):
    for sub in cls.__subclasses__():
        if sub.__module__.startswith("codepipeline_worker."):
            yield sub
        yield from models(sub)

defined = sorted({m.__name__ for m in models(BaseModel)})
built = sorted({m.__name__ for m in models(BaseModel) if m.__pydantic_complete__})
imported = sorted(name for name in sys.modules if name.startswith("codepipeline_worker."))
print(json.dumps({"result": result, "defined": defined, "built": built, "imported": imported}))
"""


def cold_start(handler: str = "codepipeline_worker.acknowledger.handler", **environment: str) -> dict[str, Any]:
    return _probe([PROBE, handler], **environment)


def _probe(args: list[str], **environment: str) -> dict[str, Any]:
    port = closed_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "ACTION_TYPES": "Custom/Build/MyTool/1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "JOB_QUEUE_URL": f"http://127.0.0.1:{port}/123456789012/work.fifo",
        "JOB_TABLE_NAME": "jobs",
        **environment,
    }
    done = subprocess.run(  # noqa: S603 - this interpreter on a probe above
        [sys.executable, "-c", *args], env=env, capture_output=True, text=True, check=True
    )
    answer: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return answer


def test_the_template_s_acknowledger_imports_neither_boto3_nor_what_its_events_do_not_use() -> None:
    answer = cold_start()

    assert answer["imported"] == []
    assert (answer["sessions"], answer["loaders"]) == (1, 1)


def test_a_direct_job_builds_only_the_models_it_uses() -> None:
    """The event's kind picks its model; the batch, schedule, state-change and partner models, and the batch's
    and poll's results, are built when such an event first comes, not at the cold start (about 4 ms of CPU)."""
    answer = cold_start()

    assert answer["built"] == ["CustomJobEvent", "JobResult"]


def test_a_direct_job_s_execution_environment_never_imports_or_defines_what_batches_and_polls_use() -> None:
    """Imported and handled: the direct job acknowledged and its message (its ids) queued. Neither the init nor
    the job imported the full hand-off message (its eight models defined and built at import, about 8 ms), the
    batch, schedule and state-change events, the batch's and poll's results, or the reconciler; the models
    defined are those the settings, a direct job and its result need, and only the ones it used are built."""
    job = "11111111-abcd-4bcd-8bcd-0123456789ab"
    body = json.dumps({"version": 1, "jobId": job, "jobType": "custom"}, separators=(",", ":"))
    dedup_id = hashlib.sha256(f"custom:{job}".encode()).hexdigest()

    answer = _probe([DIRECT_JOB_PROBE, body, dedup_id])

    assert (answer["result"]["outcome"], answer["result"]["handoff"]) == ("acknowledged", "queued")
    never = {"shared.messages", "acknowledger.batch_and_poll_events", "acknowledger.batch_and_poll_results"}
    never |= {"acknowledger.reconcile", "work"}
    assert not {f"codepipeline_worker.{name}" for name in never} & set(answer["imported"])
    assert answer["defined"] == sorted(
        [
            *("CommonSettings", "Settings", "QueryParam", "EnvelopeModel", "ActionTypeId", "PollTarget"),
            *("DirectEvent", "CustomJobEvent", "ThirdPartyJobEvent"),
            *("ResultModel", "JobResult", "RejectedResult"),
        ]
    )
    assert answer["built"] == ["CommonSettings", "CustomJobEvent", "JobResult", "QueryParam", "Settings"]


def test_only_tracing_on_imports_the_x_ray_sdk() -> None:
    answer = cold_start(POWERTOOLS_TRACE_DISABLED="false")

    assert "aws_xray_sdk" in answer["imported"]


def test_the_client_token_secret_is_read_through_the_same_sdk_session() -> None:
    """Powertools' SecretsProvider, left to itself, builds a boto3 session and loads botocore's data again."""
    answer = cold_start(CLIENT_TOKEN_SECRET_ID="client-tokens")

    assert (answer["sessions"], answer["loaders"]) == (1, 1)
    assert "aws_lambda_powertools.utilities.parameters" in answer["imported"]


def test_the_work_function_makes_its_clients_and_each_job_s_s3_client_from_one_sdk_session() -> None:
    answer = cold_start("codepipeline_worker.work.handler")

    assert (answer["sessions"], answer["loaders"]) == (1, 1)
    assert "boto3" not in answer["imported"]


@pytest.mark.parametrize("handler", ["codepipeline_worker.acknowledger.handler", "codepipeline_worker.work.handler"])
def test_a_function_s_init_runs_without_the_cyclic_garbage_collector_and_leaves_it_on(handler: str) -> None:
    """Without the pause: 35 collections in the acknowledger's init, 44 in the work function's, finding next to
    nothing to free (about 20 ms of CPU, 7 % of the acknowledger's cold start: docs/benchmarks.md). With it, the
    few before it starts and as it ends (the packages' own modules). What the init made is frozen, so that the
    collector does not scan it again after."""
    answer = cold_start(handler)

    assert len(answer["collections"]) <= 3, answer["collections"]
    assert answer["collector_on"] is True
    assert answer["frozen"] > 50_000


def test_the_collector_comes_back_when_an_init_fails_and_stays_off_when_it_was_off() -> None:
    def failing_init() -> None:
        with collector_paused():
            assert not gc.isenabled()
            raise ValueError("bad setting")

    assert gc.isenabled()
    with pytest.raises(ValueError, match="bad setting"):
        failing_init()
    assert gc.isenabled()
    gc.unfreeze()

    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
        gc.unfreeze()
