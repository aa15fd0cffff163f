// The local CodePipeline endpoint, driven by the AWS SDK for JavaScript v3: a custom and a partner life cycle,
// the action-type operations, and every error the job operations can answer. Prints one JSON object: what each
// step got. Run by tests/endpoint/test_other_clients.py: node lifecycle.mjs <endpoint url>
import {
  AcknowledgeJobCommand,
  AcknowledgeThirdPartyJobCommand,
  ActionTypeNotFoundException,
  CodePipelineClient,
  CodePipelineServiceException,
  CreateCustomActionTypeCommand,
  DeleteCustomActionTypeCommand,
  GetActionTypeCommand,
  GetJobDetailsCommand,
  GetThirdPartyJobDetailsCommand,
  InvalidClientTokenException,
  InvalidJobException,
  InvalidJobStateException,
  InvalidNextTokenException,
  InvalidNonceException,
  JobNotFoundException,
  ListActionTypesCommand,
  ListPipelinesCommand,
  OutputVariablesSizeExceededException,
  PollForJobsCommand,
  PollForThirdPartyJobsCommand,
  PutJobFailureResultCommand,
  PutJobSuccessResultCommand,
  PutThirdPartyJobFailureResultCommand,
  PutThirdPartyJobSuccessResultCommand,
  ValidationException,
} from "@aws-sdk/client-codepipeline";

const endpoint = process.argv[2];
const client = new CodePipelineClient({
  endpoint,
  region: "us-east-1",
  credentials: { accessKeyId: "local", secretAccessKey: "local" },
  maxAttempts: 1,
});
const CUSTOM = { owner: "Custom", category: "Build", provider: "JsTool", version: "1" };
const PARTNER = { owner: "ThirdParty", category: "Deploy", provider: "JsPartner", version: "1" };
const CLIENT_ID = "c1e7d1a0-1234-4abc-9def-0123456789ab";
const TOKEN = "js-partner-token";
const UNKNOWN = "99999999-abcd-9999-abcd-999999abcdef";

async function control(method, route, body) {
  const response = await fetch(`${endpoint}/_control/${route}`, {
    method,
    headers: { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const answer = await response.json();
  if (!response.ok) throw new Error(`control ${route}: ${answer.message}`);
  return answer;
}

const seed = async (fields) => (await control("POST", "jobs", { count: 1, ...fields })).jobIds[0];
const status = async (jobId) => (await control("GET", `jobs/${jobId}`)).status;
const send = (command) => client.send(command);

// What a call that must fail got: the exception's name, whether it is the SDK's modeled class, the HTTP status.
async function failure(call, modeled) {
  try {
    await call();
    return { name: null };
  } catch (error) {
    return {
      name: error.name,
      modeled: modeled === undefined ? null : error instanceof modeled,
      serviceException: error instanceof CodePipelineServiceException,
      httpStatusCode: error.$metadata?.httpStatusCode ?? null,
      message: error.message,
    };
  }
}

async function customLifeCycle() {
  const jobId = await seed({ actionType: "Custom/Build/JsTool/1", configuration: { ProjectName: "web" } });
  const polled = await send(new PollForJobsCommand({ actionTypeId: CUSTOM, maxBatchSize: 5 }));
  const [job] = polled.jobs;
  const ack = await send(new AcknowledgeJobCommand({ jobId, nonce: job.nonce }));
  const details = await send(new GetJobDetailsCommand({ jobId }));
  await send(
    new PutJobSuccessResultCommand({
      jobId,
      executionDetails: { summary: "built", percentComplete: 100, externalExecutionId: "js-1" },
      outputVariables: { Version: "1.2.3" },
    }),
  );
  return {
    polledIds: polled.jobs.map((j) => j.id),
    jobId,
    configuration: job.data.actionConfiguration.configuration,
    hasCredentials: Object.keys(job.data.artifactCredentials).sort(),
    pipelineArn: job.data.pipelineContext.pipelineArn,
    ackStatus: ack.status,
    detailsId: details.jobDetails.id,
    freshCredentials: details.jobDetails.data.artifactCredentials.accessKeyId !== job.data.artifactCredentials.accessKeyId,
    finalStatus: await status(jobId),
  };
}

async function partnerLifeCycle() {
  const jobId = await seed({ actionType: "ThirdParty/Deploy/JsPartner/1", clientId: CLIENT_ID, clientToken: TOKEN });
  const polled = await send(new PollForThirdPartyJobsCommand({ actionTypeId: PARTNER, maxBatchSize: 5 }));
  const details = await send(new GetThirdPartyJobDetailsCommand({ jobId, clientToken: TOKEN }));
  const ack = await send(
    new AcknowledgeThirdPartyJobCommand({ jobId, nonce: details.jobDetails.nonce, clientToken: TOKEN }),
  );
  const claimed = await send(new GetThirdPartyJobDetailsCommand({ jobId, clientToken: TOKEN }));
  await send(
    new PutThirdPartyJobFailureResultCommand({
      jobId,
      clientToken: TOKEN,
      failureDetails: { type: "JobFailed", message: "the deployment was refused" },
    }),
  );
  return {
    polled: polled.jobs,
    jobId,
    ackStatus: ack.status,
    nonceAfterClaim: claimed.jobDetails.nonce ?? null,
    finalStatus: await status(jobId),
  };
}

async function actionTypes() {
  const created = await send(
    new CreateCustomActionTypeCommand({
      category: "Test",
      provider: "JsTool",
      version: "1",
      configurationProperties: [
        { name: "ProjectName", required: true, key: true, secret: false, queryable: true, type: "String" },
      ],
      inputArtifactDetails: { minimumCount: 0, maximumCount: 1 },
      outputArtifactDetails: { minimumCount: 0, maximumCount: 1 },
    }),
  );
  const jobId = await seed({ actionType: "Custom/Test/JsTool/1", configuration: { ProjectName: "api" } });
  const testType = { ...CUSTOM, category: "Test" };
  const matched = await send(new PollForJobsCommand({ actionTypeId: testType, queryParam: { ProjectName: "api" } }));
  const listed = await send(new ListActionTypesCommand({ actionOwnerFilter: "Custom" }));
  const declared = await send(new GetActionTypeCommand(PARTNER));
  await send(new DeleteCustomActionTypeCommand({ category: "Test", provider: "JsTool", version: "1" }));
  return {
    createdId: created.actionType.id,
    matched: matched.jobs.map((j) => j.id).join() === jobId,
    listed: listed.actionTypes.map((t) => `${t.id.owner}/${t.id.category}/${t.id.provider}/${t.id.version}`).sort(),
    executorType: declared.actionType.executor.type,
    afterDelete: await failure(() => send(new PollForJobsCommand({ actionTypeId: testType, queryParam: { ProjectName: "api" } })), ActionTypeNotFoundException),
  };
}

async function errors() {
  const queued = await seed({ actionType: "Custom/Build/JsTool/1" });
  const partner = await seed({ actionType: "ThirdParty/Deploy/JsPartner/1", clientId: CLIENT_ID, clientToken: TOKEN });
  const dispatched = await seed({ actionType: "Custom/Build/JsTool/1", dispatchedNonce: "7" });
  await send(new AcknowledgeJobCommand({ jobId: dispatched, nonce: "7" }));
  const timedOut = await seed({ actionType: "Custom/Build/JsTool/1", dispatchedNonce: "8" });
  await send(new AcknowledgeJobCommand({ jobId: timedOut, nonce: "8" }));
  await control("POST", `jobs/${timedOut}/time-out`, {});
  const big = Object.fromEntries(Array.from({ length: 130 }, (_, n) => [`Key${n}`, "v".repeat(990)]));
  return {
    JobNotFoundException: await failure(() => send(new AcknowledgeJobCommand({ jobId: UNKNOWN, nonce: "1" })), JobNotFoundException),
    InvalidNonceException: await failure(() => send(new AcknowledgeJobCommand({ jobId: queued, nonce: "1" })), InvalidNonceException),
    ValidationException: await failure(() => send(new AcknowledgeJobCommand({ jobId: "not-a-job-id", nonce: "1" })), ValidationException),
    InvalidClientTokenException: await failure(
      () => send(new GetThirdPartyJobDetailsCommand({ jobId: partner, clientToken: "wrong" })),
      InvalidClientTokenException,
    ),
    InvalidJobException: await failure(
      () => send(new GetThirdPartyJobDetailsCommand({ jobId: partner, clientToken: TOKEN })),
      InvalidJobException,
    ),
    InvalidJobStateException: await failure(() => send(new PutJobSuccessResultCommand({ jobId: queued })), InvalidJobStateException),
    ActionTypeNotFoundException: await failure(
      () => send(new PollForJobsCommand({ actionTypeId: { ...CUSTOM, provider: "Nobody" } })),
      ActionTypeNotFoundException,
    ),
    OutputVariablesSizeExceededException: await failure(
      () => send(new PutJobSuccessResultCommand({ jobId: dispatched, outputVariables: big })),
      OutputVariablesSizeExceededException,
    ),
    InvalidNextTokenException: await failure(() => send(new ListActionTypesCommand({ nextToken: "bogus" })), InvalidNextTokenException),
    PartnerInvalidJobStateException: await failure(
      () => send(new PutThirdPartyJobSuccessResultCommand({ jobId: partner, clientToken: TOKEN })),
      InvalidJobStateException,
    ),
    FailureOfAQueuedJob: await failure(
      () => send(new PutJobFailureResultCommand({ jobId: queued, failureDetails: { type: "JobFailed", message: "m" } })),
      InvalidJobStateException,
    ),
    TimedOutAck: (await send(new AcknowledgeJobCommand({ jobId: timedOut, nonce: "8" }))).status,
    TimedOutResult: await failure(() => send(new PutJobSuccessResultCommand({ jobId: timedOut })), InvalidJobStateException),
    NotImplemented: await failure(() => send(new ListPipelinesCommand({}))),
  };
}

async function throttled() {
  await control("POST", "faults", { throttle: 1.0, operations: ["PollForJobs"] });
  try {
    return await failure(() => send(new PollForJobsCommand({ actionTypeId: CUSTOM })));
  } finally {
    await control("POST", "faults", {});
  }
}

await control("POST", "action-types", { actionType: "ThirdParty/Deploy/JsPartner/1", timeoutSeconds: 600 });
const results = {
  custom: await customLifeCycle(),
  partner: await partnerLifeCycle(),
  actionTypes: await actionTypes(),
  errors: await errors(),
  throttled: await throttled(),
};
process.stdout.write(JSON.stringify(results));
