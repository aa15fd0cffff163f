"""The whole job life cycle over real HTTP on 127.0.0.1: the local CodePipeline endpoint, moto's SQS and Secrets
Manager. A queued job is claimed by the scheduled poll, handed to the work queue, run by the work function (fed
by `consume_once`, as Lambda's SQS event source feeds it), and reported; long work continues in follow-up jobs.
Each test reads what the endpoint recorded (job states and histories) and what is left on the queue."""

from __future__ import annotations

import io
import json
import tempfile
import uuid
import zipfile
from collections import Counter
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import boto3
import botocore.session
import pytest

from codepipeline_local import Faults, LocalCodePipeline, StatusPages
from codepipeline_worker.acknowledger.claims import HANDOFF_FAILURE_MESSAGE
from codepipeline_worker.examples.url_gate import ALLOW_PRIVATE_VARIABLE
from codepipeline_worker.shared import adapter
from codepipeline_worker.shared.adapter import (
    ACKNOWLEDGER_OPERATIONS,
    CONSUMER_OPERATIONS,
    IDEMPOTENCY_OPERATIONS,
    WORKER_OPERATIONS,
)
from codepipeline_worker.shared.messages import JobMessage
from codepipeline_worker.work import Failure, Job, Outcome, StillRunning, Success
from tests.conftest import zipped
from tests.integration.conftest import (
    CLIENT_ID,
    CUSTOM,
    EVENT_TOKEN,
    PARTNER,
    REDELIVERY_WAIT_S,
    AcknowledgerFactory,
    RunnerFactory,
    S3FrontFactory,
    WorkQueues,
    WorkSide,
    WorkSideFactory,
    events,
    issued_secrets,
    last_event,
    partner_job,
    poll,
    record_requests,
)
from tests.integration.grants import Grants, expired_at_first_use

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from botocore.model import OperationModel

    from codepipeline_worker.acknowledger.service import JobService


def histories(endpoint: LocalCodePipeline) -> str:
    return json.dumps([job["history"] for job in endpoint.store.jobs()])


def by_job(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["jobId"]: entry for entry in result["results"]}


# -- one round: success, failure, an exception -------------------------------------------------------------


def test_a_queued_job_is_claimed_handed_off_run_and_reported(
    endpoint: LocalCodePipeline,
    work_queue: WorkQueues,
    make_acknowledger: AcknowledgerFactory,
    make_runner: RunnerFactory,
    work_side: WorkSideFactory,
) -> None:
    job_id = endpoint.store.create_job(CUSTOM, configuration={"ProjectName": "demo"})

    def build(job: Job) -> Outcome:
        project = job.configuration["ProjectName"]  # fetched: GetJobDetails
        return Success(summary=f"built {project}", output_variables={"Project": project, "Round": "1"})

    # When the schedule fires, the job is claimed and put on the work queue
    result = poll(make_acknowledger())
    [entry] = result["results"]
    assert (entry["jobId"], entry["outcome"], entry["status"], entry["handoff"]) == (
        job_id,
        "acknowledged",
        "InProgress",
        "queued",
    )
    assert (result["counts"]["queued"], result["counts"]["handoffFailed"]) == (1, 0)
    assert endpoint.store.job(job_id)["status"] == "InProgress"
    assert work_queue.depth() == (1, 0)

    # And when the worker takes it, it runs and reports
    worker = work_side(make_runner(build))
    assert worker.consume() == (1, 0)

    [message] = worker.messages()
    assert (message.job_id, message.job_type, message.account_id) == (job_id, "custom", "123456789012")
    assert message.action_type is not None
    assert str(message.action_type) == CUSTOM
    assert worker.answers == [{"batchItemFailures": []}]
    assert events(endpoint, job_id) == ["created", "dispatched", "acknowledged", "succeeded"]
    assert last_event(endpoint, job_id) == {
        "event": "succeeded",
        "status": "Succeeded",
        "summary": "built demo",
        "outputVariables": {"Project": "demo", "Round": "1"},
    }
    assert work_queue.is_empty()


def test_a_failure_the_work_function_returns_fails_the_job(
    endpoint: LocalCodePipeline,
    work_queue: WorkQueues,
    make_acknowledger: AcknowledgerFactory,
    make_runner: RunnerFactory,
    work_side: WorkSideFactory,
) -> None:
    job_id = endpoint.store.create_job(CUSTOM)

    def refuse(job: Job) -> Outcome:
        return Failure(type="ConfigurationError", message="ProjectName is required", external_execution_id="run-7")

    poll(make_acknowledger())
    worker = work_side(make_runner(refuse))

    # A reported failure is done with: its message is deleted, not delivered again
    assert worker.consume() == (1, 0)
    assert endpoint.store.job(job_id)["status"] == "Failed"
    assert last_event(endpoint, job_id) == {
        "event": "failed",
        "status": "Failed",
        "failureType": "ConfigurationError",
        "failureMessage": "ProjectName is required",
    }
    assert endpoint.stats()["calls"]["PutJobFailureResult"] == 1
    assert work_queue.is_empty()


def test_an_exception_fails_the_job_naming_only_its_type(
    endpoint: LocalCodePipeline,
    work_queue: WorkQueues,
    *,
    make_acknowledger: AcknowledgerFactory,
    make_runner: RunnerFactory,
    work_side: WorkSideFactory,
    emitted: Callable[[], str],
) -> None:
    marker = f"db-password-{uuid.uuid4()}"
    requests = record_requests(endpoint)
    job_id = endpoint.store.create_job(CUSTOM)

    def crash(job: Job) -> Outcome:
        raise LookupError(f"cannot connect with {marker}")

    poll(make_acknowledger())
    worker = work_side(make_runner(crash))

    assert worker.consume() == (1, 0)
    history = last_event(endpoint, job_id)
    assert (history["event"], history["status"], history["failureType"]) == ("failed", "Failed", "JobFailed")
    assert "LookupError" in history["failureMessage"]
    logs = emitted()
    assert '"error_type":"LookupError"' in logs  # the log says what was raised, and where
    # The exception's message, which may quote anything, went nowhere: not to CodePipeline, not to the log
    assert [r["operation"] for r in requests if r["operation"].startswith("Put")] == ["PutJobFailureResult"]
    assert marker not in json.dumps(requests)
    assert marker not in histories(endpoint)
    assert marker not in logs
    assert marker not in json.dumps(worker.answers)
    assert work_queue.is_empty()


@pytest.mark.parametrize("when", ["before the work side takes it", "while the work runs"])
def test_a_job_that_times_out_is_let_go_without_a_retry(
    endpoint: LocalCodePipeline,
    work_queue: WorkQueues,
    make_acknowledger: AcknowledgerFactory,
    make_runner: RunnerFactory,
    *,
    work_side: WorkSideFactory,
    when: str,
) -> None:
    # Given a job claimed and handed off, whose action times out (the endpoint's control call does what the
    # action's timeout does)
    job_id = endpoint.store.create_job(CUSTOM)
    poll(make_acknowledger())
    if when == "before the work side takes it":
        endpoint.store.time_out(job_id)

    def work(job: Job) -> Outcome:
        if when == "while the work runs":
            endpoint.store.time_out(job.id)
        return Success(summary="done, too late")

    # When the work side runs it and reports (in this process: the work changes the endpoint's store)
    worker = work_side(make_runner(work, JOB_ISOLATION="none"))
    assert worker.consume() == (1, 0)

    # Then CodePipeline refuses the result, and the work side lets the message go: no retry can change a timeout
    assert endpoint.store.job(job_id)["status"] == "TimedOut"
    assert events(endpoint, job_id)[-2:] == ["timed out", "result refused"]
    assert worker.answers == [{"batchItemFailures": []}]
    assert work_queue.is_empty()
    assert endpoint.stats()["errors"] == {"InvalidJobStateException": 1}


# -- long work continues in follow-up jobs ------------------------------------------------------------------


@pytest.fixture
def health_page() -> Iterator[StatusPages]:
    """A page that answers 503 to its first request and 200 after."""
    with StatusPages({"/health": [503, 200]}) as page:
        yield page


def test_the_example_action_continues_until_the_url_answers(
    endpoint: LocalCodePipeline,
    work_queue: WorkQueues,
    *,
    monkeypatch: pytest.MonkeyPatch,
    health_page: StatusPages,
    make_acknowledger: AcknowledgerFactory,
    make_runner: RunnerFactory,
    work_side: WorkSideFactory,
) -> None:
    # Given a deployment gate on a page that is not up yet (its query string holds a token), on 127.0.0.1
    monkeypatch.setenv(ALLOW_PRIVATE_VARIABLE, "true")
    url = health_page.url("/health?token=query-secret")
    first = endpoint.store.create_job(CUSTOM, configuration={"Url": url, "ExpectedStatus": "200", "MaxChecks": "3"})
    acknowledger = make_acknowledger()
    worker = work_side(make_runner())  # WORK_FUNCTION's default: codepipeline_worker.examples.url_gate:check_url

    # Round 1: the page answers 503, so the work goes on: the job completes with a continuation token, and
    # CodePipeline creates a follow-up job carrying it
    assert by_job(poll(acknowledger))[first]["handoff"] == "queued"
    assert worker.consume() == (1, 0)
    round_one = last_event(endpoint, first)
    follow_up = round_one.pop("followUpJobId")
    assert round_one == {
        "event": "succeeded",
        "status": "Succeeded",
        "summary": f"{health_page.url('/health')} answered 503 (200 expected); check 1 of 3",
        "percentComplete": 33,
    }
    assert endpoint.store.job(follow_up)["status"] == "Queued"
    assert endpoint.store.job(follow_up)["continuationToken"] == json.dumps({"checks": 1})
    assert work_queue.is_empty()

    # Round 2: the next poll claims the follow-up job and hands it off with the token; the page is up
    result = poll(acknowledger)
    assert [(e["jobId"], e["handoff"]) for e in result["results"]] == [(follow_up, "queued")]
    assert worker.consume() == (1, 0)
    assert [m.continuation_token for m in worker.messages()] == [None, json.dumps({"checks": 1})]
    assert last_event(endpoint, follow_up) == {
        "event": "succeeded",
        "status": "Succeeded",
        "summary": f"{health_page.url('/health')} answered 200 at check 2",
        "outputVariables": {"StatusCode": "200", "Checks": "2"},
    }
    assert health_page.answered == [("/health", 503), ("/health", 200)]
    assert "query-secret" not in histories(endpoint)
    assert work_queue.is_empty()
    assert {job["status"] for job in endpoint.store.jobs()} == {"Succeeded"}


# -- the queue refuses the job -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["custom", "thirdParty"])
def test_a_job_the_queue_refuses_is_failed_back(
    kind: str,
    endpoint: LocalCodePipeline,
    secrets_url: str,
    make_acknowledger: AcknowledgerFactory,
) -> None:
    job_id = endpoint.store.create_job(CUSTOM) if kind == "custom" else partner_job(endpoint)
    missing_queue = f"{secrets_url}/123456789012/no-such-queue-{uuid.uuid4()}"

    result = poll(make_acknowledger(queue_url=missing_queue))

    # The job was claimed, the queue refused it, and it was failed back at once, saying why
    [entry] = result["results"]
    assert (entry["jobId"], entry["jobType"], entry["outcome"], entry["handoff"]) == (
        job_id,
        kind,
        "acknowledged",
        "failedBack",
    )
    code = entry["handoffError"]
    assert code in {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}  # moto answers as SQS does
    assert (result["counts"]["queued"], result["counts"]["handoffFailed"]) == (0, 1)
    assert events(endpoint, job_id) == ["created", "dispatched", "acknowledged", "failed"]
    assert last_event(endpoint, job_id) == {
        "event": "failed",
        "status": "Failed",
        "failureType": "SystemUnavailable",
        "failureMessage": HANDOFF_FAILURE_MESSAGE.format(code=code),
    }
    reported_with = "PutJobFailureResult" if kind == "custom" else "PutThirdPartyJobFailureResult"
    assert endpoint.stats()["calls"][reported_with] == 1


# -- partner jobs --------------------------------------------------------------------------------------------


def scripted(job: Job) -> Outcome:
    """Does what the job's configuration says: Result is succeed, fail or continue (two rounds)."""
    match job.configuration.get("Result"):
        case "fail":
            return Failure(type="RevisionUnavailable", message=f"revision of {job.id} not found")
        case "continue" if job.continuation_token is None:
            return StillRunning(continuation_token="round-2", percent_complete=50, summary="half way")
        case "continue":
            return Success(summary=f"finished after {job.continuation_token}")
        case _:
            variables = None if job.type == "thirdParty" else {"JobId": job.id}
            return Success(summary=f"deployed {job.id}", external_execution_id="exec-1", output_variables=variables)


def test_partner_jobs_run_and_report_through_the_third_party_operations(
    endpoint: LocalCodePipeline,
    work_queue: WorkQueues,
    make_acknowledger: AcknowledgerFactory,
    make_runner: RunnerFactory,
    work_side: WorkSideFactory,
) -> None:
    succeeds = partner_job(endpoint, {"Result": "succeed"})
    fails = partner_job(endpoint, {"Result": "fail"})

    result = poll(make_acknowledger())
    assert {job_id: e["handoff"] for job_id, e in by_job(result).items()} == {succeeds: "queued", fails: "queued"}
    worker = work_side(make_runner(scripted))
    assert worker.consume() == (2, 0)

    # The messages name the client, by which the work side reads the token; they never carry the token
    assert {(m.job_id, m.job_type, m.client_id) for m in worker.messages()} == {
        (succeeds, "thirdParty", CLIENT_ID),
        (fails, "thirdParty", CLIENT_ID),
    }
    assert EVENT_TOKEN not in json.dumps(worker.bodies)
    assert last_event(endpoint, succeeds) == {
        "event": "succeeded",
        "status": "Succeeded",
        "summary": f"deployed {succeeds}",
        "externalExecutionId": "exec-1",
    }
    assert last_event(endpoint, fails) == {
        "event": "failed",
        "status": "Failed",
        "failureType": "RevisionUnavailable",
        "failureMessage": f"revision of {fails} not found",
    }
    calls = endpoint.stats()["calls"]
    assert (calls["PutThirdPartyJobSuccessResult"], calls["PutThirdPartyJobFailureResult"]) == (1, 1)
    assert not {"AcknowledgeJob", "GetJobDetails", "PutJobSuccessResult", "PutJobFailureResult"} & set(calls)
    assert work_queue.is_empty()


# -- only what could not be reported comes back -------------------------------------------------------------


def test_a_partner_job_without_a_token_on_the_work_side_is_the_only_message_redelivered(
    endpoint: LocalCodePipeline,
    work_queue: WorkQueues,
    *,
    secrets_url: str,
    empty_secret_id: str,
    make_acknowledger: AcknowledgerFactory,
    make_runner: RunnerFactory,
    work_side: WorkSideFactory,
) -> None:
    # Given the work side's secret has no token for the partner job's client (the acknowledger's has)
    custom = endpoint.store.create_job(CUSTOM)
    partner = partner_job(endpoint)
    poll(make_acknowledger())
    worker = work_side(make_runner(scripted, secret=empty_secret_id))

    # When both jobs come in one batch, the custom job is reported and only the partner job is left
    assert worker.consume() == (2, 1)
    [answer] = worker.answers
    failed_ids = {item["itemIdentifier"] for item in answer["batchItemFailures"]}
    assert {r["messageId"] for r in worker.records if JobMessage.from_body(r["body"]).job_id == partner} == failed_ids
    assert endpoint.store.job(custom)["status"] == "Succeeded"
    assert endpoint.store.job(partner)["status"] == "InProgress"
    # Not deleted: in flight until its visibility timeout (1 s) ends, then visible (a loaded machine may be there)
    assert sum(work_queue.depth()) == 1

    # And once the client's token is in the secret, the message, delivered again, runs and is reported
    secrets = boto3.client("secretsmanager", endpoint_url=secrets_url, region_name="us-east-1")
    secrets.put_secret_value(SecretId=empty_secret_id, SecretString=json.dumps({CLIENT_ID: EVENT_TOKEN}))
    assert worker.consume(wait_s=REDELIVERY_WAIT_S) == (1, 0)
    [first] = [r for r in worker.records[:2] if r["messageId"] in failed_ids]
    again = worker.records[2]
    assert (again["messageId"], again["body"]) == (first["messageId"], first["body"])
    assert again["attributes"]["ApproximateReceiveCount"] == "2"
    assert endpoint.store.job(partner)["status"] == "Succeeded"
    assert work_queue.is_empty()


def test_a_result_the_endpoint_refuses_to_take_is_the_only_message_redelivered(
    endpoint: LocalCodePipeline,
    work_queue: WorkQueues,
    make_acknowledger: AcknowledgerFactory,
    make_runner: RunnerFactory,
    work_side: WorkSideFactory,
) -> None:
    # Given PutJobFailureResult is throttled, and the work side does not retry
    succeeds = endpoint.store.create_job(CUSTOM, configuration={"Result": "succeed"})
    fails = endpoint.store.create_job(CUSTOM, configuration={"Result": "fail"})
    poll(make_acknowledger())
    endpoint.set_faults(Faults(throttle=1.0, operations=("PutJobFailureResult",)))
    worker = work_side(make_runner(scripted, AWS_MAX_ATTEMPTS="1"))

    # When both run in one batch, only the failure could not be reported: only its message is left
    assert worker.consume() == (2, 1)
    assert endpoint.store.job(succeeds)["status"] == "Succeeded"
    assert endpoint.store.job(fails)["status"] == "InProgress"
    assert endpoint.stats()["faults"] == {"throttle": 1}
    assert sum(work_queue.depth()) == 1  # not deleted (in flight, or visible again once its 1 s is over)

    # And when the endpoint takes results again, the message comes back, the work runs again and is reported
    endpoint.set_faults(Faults())
    assert worker.consume(wait_s=REDELIVERY_WAIT_S) == (1, 0)
    assert [m.job_id for m in worker.messages()][-1] == fails
    assert last_event(endpoint, fails)["failureType"] == "RevisionUnavailable"
    assert work_queue.is_empty()


def test_a_message_that_is_not_a_job_is_redelivered_then_dead_lettered(
    endpoint: LocalCodePipeline,
    work_queue: WorkQueues,
    *,
    make_acknowledger: AcknowledgerFactory,
    make_runner: RunnerFactory,
    work_side: WorkSideFactory,
    emitted: Callable[[], str],
) -> None:
    # Given a stray message on the work queue, next to a real job
    stray = json.dumps({"version": 1, "jobId": "not-a-uuid", "jobType": "custom", "hint": "stray-value-42"})
    work_queue.client.send_message(
        QueueUrl=work_queue.url, MessageBody=stray, MessageGroupId="stray", MessageDeduplicationId="stray"
    )
    job_id = endpoint.store.create_job(CUSTOM)
    poll(make_acknowledger())
    worker = work_side(make_runner(scripted))

    # The job runs; the stray message is answered as a failure and comes back, until maxReceiveCount (2)
    assert worker.consume() == (2, 1)
    assert endpoint.store.job(job_id)["status"] == "Succeeded"
    assert worker.consume(wait_s=REDELIVERY_WAIT_S) == (1, 1)
    assert [r["body"] for r in worker.records[2:]] == [stray]

    # Then its next receive moves it to the dead-letter queue: nothing is received, nothing is left
    assert worker.consume(wait_s=REDELIVERY_WAIT_S) == (0, 0)
    assert work_queue.is_empty()
    assert work_queue.dead_letters() == [stray]
    logs = emitted()
    assert logs.count('"message":"not a job message"') == 2
    # Alone in its batch, it failed the whole batch (Powertools raises): consume_once left it, as Lambda would
    assert "the batch failed (BatchProcessingError); its messages will be delivered again" in logs
    assert "stray-value-42" not in logs  # the values of a bad message are never echoed


# -- the whole life cycle: no secret leaks, and each function calls only what it is granted --------------


def careless(job: Job) -> Outcome:
    """`scripted`, but putting the job's artifact credentials in what it reports: the runner masks them. A job
    with artifacts reads its input and writes its output first."""
    credentials = job.artifact_credentials  # None for a job without artifacts: CodePipeline gives it none
    leak = " ".join(credentials.secrets()) if credentials is not None else "no credentials"
    if job.input_artifacts:
        with tempfile.TemporaryDirectory() as work:
            job.output().write_directory(job.input().extract(work))
    outcome = scripted(job)
    if isinstance(outcome, Failure):
        return outcome.model_copy(update={"message": f"{outcome.message} ({leak})"})
    return outcome.model_copy(update={"summary": f"{outcome.summary} ({leak})"})


class LifeCycle:
    """Custom and partner jobs that succeed, fail, and continue for a second round. Runs rounds of polls and
    work, noting the CodePipeline calls each side made (the endpoint's counts before and after each side ran)."""

    RESULTS = ("succeed", "fail", "continue")

    def __init__(self, endpoint: LocalCodePipeline, acknowledgers: list[JobService], worker: WorkSide) -> None:
        self.endpoint = endpoint
        self.acknowledgers = acknowledgers
        self.worker = worker
        self.poll_results: list[dict[str, Any]] = []
        self.acknowledger_calls: Counter[str] = Counter()
        self.worker_calls: Counter[str] = Counter()

    def create_jobs(
        self,
        custom: str = CUSTOM,
        partner: str = PARTNER,
        artifacts: tuple[list[dict[str, Any]], list[dict[str, Any]]] = ([], []),
    ) -> list[str]:
        """A custom and a partner job for each result; `artifacts`: their input and output artifacts."""
        jobs = []
        inputs, outputs = artifacts
        for result in self.RESULTS:
            configuration = {"Result": result}
            jobs.append(
                self.endpoint.store.create_job(
                    custom, configuration=configuration, input_artifacts=inputs, output_artifacts=outputs
                )
            )
            jobs.append(
                self.endpoint.store.create_job(
                    partner,
                    configuration=configuration,
                    client_id=CLIENT_ID,
                    client_token=EVENT_TOKEN,
                    input_artifacts=inputs,
                    output_artifacts=outputs,
                )
            )
        return jobs

    def _calls(self) -> Counter[str]:
        return Counter(self.endpoint.stats()["calls"])

    def run(self, rounds: int = 3) -> None:
        for _ in range(rounds):
            before = self._calls()
            for acknowledger in self.acknowledgers:
                self.poll_results.append(poll(acknowledger))
            middle = self._calls()
            self.worker.consume()
            after = self._calls()
            self.acknowledger_calls += middle - before
            self.worker_calls += after - middle


@contextmanager
def recording_calls() -> Iterator[Counter[str]]:
    """SDK clients created in the block count every call they make, as service:Operation (IAM's names): the
    functions make every client from the SDK session the adapter gives them, this block's own."""
    calls: Counter[str] = Counter()
    session = botocore.session.get_session()

    def count(**kwargs: Any) -> None:
        model: OperationModel = kwargs["model"]
        calls[f"{model.service_model.signing_name}:{model.name}"] += 1

    session.register("before-call", count)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(adapter, "sdk_session", lambda: session)
        yield calls


def test_no_secret_leaks_anywhere_in_the_life_cycle(
    endpoint: LocalCodePipeline,
    work_queue: WorkQueues,
    secrets_url: str,
    *,
    make_s3_front: S3FrontFactory,
    make_acknowledger: AcknowledgerFactory,
    make_runner: RunnerFactory,
    work_side: WorkSideFactory,
    emitted: Callable[[], str],
) -> None:
    # Given jobs with artifacts in the local S3, behind a front that accepts only the credentials the endpoint
    # issued, and refuses each job's first ones with S3's ExpiredToken answer (which quotes the session token):
    # every job fetches its details again (GetJobDetails, GetThirdPartyJobDetails: new credentials) and retries
    s3 = boto3.client("s3", endpoint_url=secrets_url, region_name="us-east-1")
    bucket = f"codepipeline-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="source.zip", Body=zipped({"app.py": b"print(1)\n"}))

    def location(name: str, key: str) -> dict[str, Any]:
        return {"name": name, "location": {"type": "S3", "s3Location": {"bucketName": bucket, "objectKey": key}}}

    grants = Grants(expired_at_first_use(endpoint.store.grant))
    make_s3_front(grants)
    life = LifeCycle(endpoint, [make_acknowledger()], work_side(make_runner(careless)))
    jobs = life.create_jobs(artifacts=([location("Source", "source.zip")], [location("Out", "out")]))

    life.run()

    # Every job ran to its end: three succeeded (two with a follow-up that succeeded), one of each kind failed
    summaries = endpoint.store.jobs()
    assert len(summaries) == len(jobs) + 2
    assert Counter(job["status"] for job in summaries) == {"Succeeded": 6, "Failed": 2}
    assert work_queue.is_empty()
    assert work_queue.dead_letters() == []
    assert len(life.worker.bodies) == 8  # every message that went through the queue, each once

    issued = issued_secrets(endpoint)
    # 8 nonces, 4 partner client tokens, and 24 sets of artifact credentials (3 values each): a custom job's poll
    # and every details call get fresh ones (the acknowledger's for partner nonces, and the work side's two: before
    # S3 refused the first credentials, and after)
    assert len(issued) == 84
    # Each of the 8 runs was refused once by S3 and read and wrote its artifacts after fetching its details again
    assert grants.refused == 8
    output = s3.get_object(Bucket=bucket, Key="out")["Body"].read()
    assert zipfile.ZipFile(io.BytesIO(output)).namelist() == ["app.py"]
    # The careless work function put artifact credentials in each summary and message: masked before reporting
    recorded = histories(endpoint)
    assert recorded.count("*** *** ***") == 8
    everything = "\n".join(
        [
            json.dumps(life.worker.events),  # every message body, with its SQS record
            json.dumps(life.worker.answers),
            json.dumps(life.poll_results),
            recorded,
            emitted(),  # logs, EMF metrics, stdout and stderr, every logger's records
        ]
    )
    assert EVENT_TOKEN not in everything
    assert [secret for secret in issued if secret in everything] == []


def test_each_function_calls_only_the_operations_it_is_granted(
    endpoint: LocalCodePipeline,
    secrets_url: str,
    *,
    work_queue: WorkQueues,
    make_acknowledger: AcknowledgerFactory,
    make_runner: RunnerFactory,
    work_side: WorkSideFactory,
) -> None:
    # Given an acknowledger that hands off, one whose queue refuses every job (it fails them back), a worker and
    # its consumer; each built with SDK clients that count their calls
    missing_queue = f"{secrets_url}/123456789012/no-such-queue-{uuid.uuid4()}"
    refused_types = ("Custom/Test/Refused/1", "ThirdParty/Test/Refused/1")
    with recording_calls() as acknowledger_sdk:
        acknowledgers = [
            make_acknowledger(),
            make_acknowledger(queue_url=missing_queue, ACTION_TYPES=",".join(refused_types)),
        ]
    with recording_calls() as worker_sdk:
        runner = make_runner(careless)
    with recording_calls() as consumer_sdk:
        worker = work_side(runner)
    life = LifeCycle(endpoint, acknowledgers, worker)
    life.create_jobs()
    refused = life.create_jobs(*refused_types)

    # When the whole life cycle runs
    life.run()

    handoffs = Counter(entry["handoff"] for result in life.poll_results for entry in result["results"])
    assert handoffs == {"queued": 8, "failedBack": len(refused)}
    assert {endpoint.store.job(job_id)["status"] for job_id in refused} == {"Failed"}
    assert work_queue.is_empty()

    # Then, as the endpoint counted them, each side made exactly the calls its role is granted, every one of them
    def granted(operations: frozenset[str], service: str) -> set[str]:
        return {op.removeprefix(f"{service}:") for op in operations if op.startswith(f"{service}:")}

    assert set(life.acknowledger_calls) == granted(ACKNOWLEDGER_OPERATIONS, "codepipeline")
    assert set(life.worker_calls) == granted(WORKER_OPERATIONS, "codepipeline")
    # And as the SDK clients counted them, SQS and DynamoDB included, and the client-token secret, which both
    # read: nothing beyond what each is granted; on these paths, the hand-off records written before the claims,
    # read by the reconciler and deleted after, and each job's once-only record
    secret = {"secretsmanager:GetSecretValue"}
    assert {"dynamodb:BatchWriteItem", "dynamodb:Query"} | secret <= set(acknowledger_sdk)
    assert set(acknowledger_sdk) <= ACKNOWLEDGER_OPERATIONS | secret
    assert {"dynamodb:PutItem", "dynamodb:UpdateItem"} | secret <= set(worker_sdk)
    assert set(worker_sdk) <= WORKER_OPERATIONS | IDEMPOTENCY_OPERATIONS | secret
    assert set(consumer_sdk) == CONSUMER_OPERATIONS
    # The two counts agree call for call (no call was retried)
    for sdk, endpoint_calls in ((acknowledger_sdk, life.acknowledger_calls), (worker_sdk, life.worker_calls)):
        assert {op: n for op, n in sdk.items() if op.startswith("codepipeline:")} == {
            f"codepipeline:{op}": n for op, n in endpoint_calls.items()
        }
