/**
 * The SAM template, the CDK stack and the functions must not drift apart.
 *
 * functions/on-upload/environment.json and functions/transcode/environment.json
 * are the functions' own statements of their contracts (their unit tests check
 * them against the code): binary name, environment variables with defaults, and
 * event wiring: on-upload takes the S3 events in event_wiring.s3_events for
 * every key under the source prefix (no suffix filter) and forwards videos to
 * transcode, which no S3 notification feeds. This suite checks both templates
 * against them, including the permissions that wiring needs (and no more), and
 * the two templates against each other:
 * the same parameters with the same defaults and constraints, and, for several
 * parameter sets, the same resources with the same properties (compared in a
 * canonical form where logical IDs are replaced by roles such as
 * "SourceBucket", "Queue" or "TranscodeQueue").
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { getManifest } from 'cargo-lambda-cdk/lib/cargo';
import { describe, expect, it } from 'vitest';
import { PUBLIC_BASE_URL_VARIABLE } from '../lib/delivery';
import { DEFAULTS, PARAMETER_SPECS, resolveParameters } from '../lib/parameters';
import { VISIBILITY_TIMEOUT_FACTOR } from '../lib/queue-worker';
import {
  FFMPEG_PATH,
  ON_UPLOAD_BINARY,
  ON_UPLOAD_ENVIRONMENT,
  ON_UPLOAD_MANIFEST,
  REPO_ROOT,
  TRANSCODE_BINARY,
  TRANSCODE_ENVIRONMENT,
  TRANSCODE_MANIFEST,
} from '../lib/stack';
import {
  canonicalModel,
  canonicalStatements,
  checkovSkips,
  conditionValue,
  lintIgnores,
  evaluateSam,
  failedRules,
  type Json,
  loadEnvironmentJson,
  loadSamTemplate,
  SAM_TEMPLATE_PATH,
  sourceBucketDependencies,
  synthCdk,
  TRANSCODE_ENVIRONMENT_JSON_PATH,
  writeTestZip,
} from './cfn';

const sam = loadSamTemplate();
const samFunctions = Object.entries<Json>(sam.Resources).filter(([, r]) => r.Type === 'AWS::Serverless::Function');

const LAYER = 'arn:aws:lambda:us-east-1:123456789012:layer:ffmpeg:3';
/** A layer zip in S3 for the stack to publish (SAM's TranscodeFfmpegLayer). */
const LAYER_ZIP = { FfmpegLayerZipBucket: 'mediaflow-artifacts', FfmpegLayerZipKey: 'layers/ffmpeg-arm64-5e2f.zip' };

/** The two workers: canonical name prefix, contract, and what the CDK app builds. */
const WORKERS = [
  {
    prefix: '',
    contract: loadEnvironmentJson(),
    binary: ON_UPLOAD_BINARY,
    manifest: ON_UPLOAD_MANIFEST,
    environment: ON_UPLOAD_ENVIRONMENT as readonly string[],
    samFunction: 'OnUploadFunction',
  },
  {
    prefix: 'Transcode',
    contract: loadEnvironmentJson(TRANSCODE_ENVIRONMENT_JSON_PATH),
    binary: TRANSCODE_BINARY,
    manifest: TRANSCODE_MANIFEST,
    environment: TRANSCODE_ENVIRONMENT as readonly string[],
    samFunction: 'TranscodeFunction',
  },
] as const;
const [ON_UPLOAD, TRANSCODE] = WORKERS;

/** Parameter sets both tools are compared under (SAM parameter names and values). */
const PARAMETER_SETS: Record<string, Record<string, string | number>> = {
  defaults: {},
  'single bucket, prefixes, alarm email': {
    BucketMode: 'single',
    SourcePrefix: 'uploads/',
    OutputPrefix: 'media/',
    AlarmEmail: 'ops@example.com',
  },
  'x86_64, slow variants, reserved concurrency, existing topic': {
    Architecture: 'x86_64',
    MemorySize: 4096,
    Timeout: 300,
    ReservedConcurrency: '25',
    BatchSize: 1,
    MaximumConcurrency: 25,
    MaxReceiveCount: 3,
    LogLevel: 'DEBUG',
    LogRetentionDays: 90,
    NoncurrentVersionDays: 7,
    QueueAgeAlarmSeconds: 3600,
    BucketNamePrefix: 'photos',
    OutputPrefix: 'v1/',
    SourcePrefix: 'in/',
    VariantsConfig: 'variant = [{ name = "thumb", width = 256, formats = ["webp"] }]',
    AlarmTopicArn: 'arn:aws:sns:eu-west-1:123456789012:ops',
  },
  'video (ffmpeg layer), otherwise defaults': {
    FfmpegLayerArn: LAYER,
  },
  'video, animated GIFs to video, single bucket, alarm email, transcode sizing': {
    FfmpegLayerArn: LAYER,
    AnimatedGifToVideo: 'true',
    BucketMode: 'single',
    SourcePrefix: 'uploads/',
    OutputPrefix: 'media/',
    AlarmEmail: 'ops@example.com',
    TranscodeMemorySize: 10240,
    TranscodeTimeout: 600,
    TranscodeEphemeralStorage: 10240,
    TranscodeBatchSize: 2,
    TranscodeMaximumConcurrency: 2,
  },
  'video x86_64, animated GIFs as stills, existing topic, variants config': {
    FfmpegLayerArn: 'arn:aws:lambda:eu-west-1:123456789012:layer:ffmpeg-x86_64:12',
    AnimatedGifToVideo: 'false',
    Architecture: 'x86_64',
    SourcePrefix: 'in/',
    OutputPrefix: 'v1/',
    VariantsConfig: 'variant = [{ name = "thumb", width = 256, formats = ["webp"] }]',
    AlarmTopicArn: 'arn:aws:sns:eu-west-1:123456789012:ops',
    LogLevel: 'DEBUG',
    MaxReceiveCount: 2,
    TranscodeTimeout: 300,
  },
  'video from a layer zip in S3 that the stack publishes, otherwise defaults': LAYER_ZIP,
  'video x86_64 from a layer zip in S3, animated GIFs to video, single bucket': {
    FfmpegLayerZipBucket: 'artifacts.example.com',
    FfmpegLayerZipKey: 'ffmpeg-x86_64.zip',
    Architecture: 'x86_64',
    AnimatedGifToVideo: 'true',
    BucketMode: 'single',
    SourcePrefix: 'uploads/',
    OutputPrefix: 'media/',
  },
  'AnimatedGifToVideo without a layer (no video; on-upload makes stills of GIFs)': {
    AnimatedGifToVideo: 'true',
  },
  'backfill at scale, otherwise defaults': { BackfillAtScale: 'true' },
  'no delivery, no access logs, otherwise defaults': { Delivery: 'none', AccessLogs: 'false' },
  'no delivery, access logs (a log bucket without ACLs), single bucket': {
    Delivery: 'none',
    BucketMode: 'single',
    SourcePrefix: 'uploads/',
    OutputPrefix: 'media/',
  },
  'delivery without access logs, video, output prefix': { AccessLogs: 'false', FfmpegLayerArn: LAYER, OutputPrefix: 'v1/' },
  'tracing, video, backfill, single bucket, delivery, access logs kept 30 days': {
    Tracing: 'Active',
    FfmpegLayerArn: LAYER,
    BackfillAtScale: 'true',
    BucketMode: 'single',
    SourcePrefix: 'uploads/',
    OutputPrefix: 'media/',
    AccessLogRetentionDays: 30,
  },
  'tracing without video or backfill, no delivery': { Tracing: 'Active', Delivery: 'none' },
  'backfill at scale tuned, single bucket with prefixes, video, existing topic': {
    BackfillAtScale: 'true',
    BackfillMaxConcurrency: 500,
    BackfillToleratedFailurePercentage: 5,
    BackfillInventoryRetentionDays: 3,
    BucketMode: 'single',
    SourcePrefix: 'uploads/',
    OutputPrefix: 'media/',
    FfmpegLayerArn: LAYER,
    AlarmTopicArn: 'arn:aws:sns:eu-west-1:123456789012:ops',
    LogRetentionDays: 90,
  },
};

/** The EMF metrics the functions write (crates/pipeline/src/metrics.rs), read from the Rust source. */
const METRICS_RS = readFileSync(path.join(REPO_ROOT, 'crates', 'pipeline', 'src', 'metrics.rs'), 'utf8');
const EMF_METRICS = [
  ...[...METRICS_RS.matchAll(/\("(\w+)", "(?:Milliseconds|Bytes|Count)"\)/g)].map((m) => m[1]),
  ...[...METRICS_RS.matchAll(/"Metrics": \[\{"Name": "(\w+)"/g)].map((m) => m[1]),
];
const EMF_NAMESPACE = /pub const NAMESPACE: &str = "(\w+)";/.exec(METRICS_RS)?.[1];
const EMF_DIMENSIONS = [...new Set([...METRICS_RS.matchAll(/"Dimensions": (\[\[[^\]]*\]\])/g)].map((m) => m[1]))];

/** Every metric a dashboard widget shows, as "namespace metric dimension=value ..." (and the widget's region). */
function dashboardMetrics(dashboard: Json): string[] {
  return dashboard.DashboardBody.widgets.flatMap((w: Json) =>
    w.properties.metrics.map((m: Json[]) => {
      const [namespace, metric, ...rest] = m.filter((x) => typeof x === 'string') as string[];
      const dims = [];
      for (let i = 0; i < rest.length; i += 2) dims.push(`${rest[i]}=${rest[i + 1]}`);
      const options = m.find((x) => typeof x === 'object') ?? {};
      const region = options.region ?? w.properties.region;
      return `${namespace} ${metric} ${dims.join(' ')} @${region}`;
    }),
  );
}

/** The canonical names of everything that belongs to the backfill at scale. */
const BACKFILL_RESOURCES = [
  'BackfillInventoryBucket',
  'BackfillInventoryBucketPolicy',
  'BackfillLogGroup',
  'BackfillRole',
  'BackfillRoleStatements',
  'BackfillStateMachine',
];
const BACKFILL_OUTPUTS = ['BackfillInventoryBucketName', 'BackfillStateMachineArn'];

/** Whether the transcode worker exists and takes the GIFs, under a parameter set. */
function videoOf(parameters: Record<string, string | number>): { video: boolean; gifToVideo: boolean } {
  const video =
    String(parameters.FfmpegLayerArn ?? DEFAULTS.FfmpegLayerArn) !== '' ||
    String(parameters.FfmpegLayerZipBucket ?? DEFAULTS.FfmpegLayerZipBucket) !== '';
  const gifToVideo = video && String(parameters.AnimatedGifToVideo ?? DEFAULTS.AnimatedGifToVideo) === 'true';
  return { video, gifToVideo };
}

/** A parameter's value under a parameter set, as a string (the default unless set). */
function valueOf(parameters: Record<string, string | number>, name: string): string {
  return String(parameters[name] ?? DEFAULTS[name]);
}

/** The outputs as an IAM resource in the canonical model: "${Bucket.Arn}/<OutputPrefix>*". */
function outputsArn(parameters: Record<string, string | number>): string {
  const bucket = valueOf(parameters, 'BucketMode') === 'single' ? 'SourceBucket' : 'OutputBucket';
  return `\${${bucket}.Arn}/${valueOf(parameters, 'OutputPrefix')}*`;
}

/**
 * Whether an object ARN pattern of the canonical model ("${Bucket.Arn}/key*")
 * could match an upload: a key under SourcePrefix in the source bucket.
 */
function coversUploads(resource: string, sourcePrefix: string): boolean {
  const match = /^\$\{(\w+)\.Arn\}\/(.*)$/.exec(resource);
  if (!match) return resource.includes('*'); // anything else with a wildcard: assume the worst
  const [, bucket, pattern] = match;
  if (bucket !== 'SourceBucket') return false;
  const keys = pattern.split('*')[0];
  return keys.startsWith(sourcePrefix) || sourcePrefix.startsWith(keys);
}

describe('environment.json (the function contracts)', () => {
  it('names the on-upload and transcode functions and binaries', () => {
    expect(ON_UPLOAD.contract.function).toBe('on-upload');
    expect(ON_UPLOAD.contract.binary).toBe(ON_UPLOAD_BINARY);
    expect(TRANSCODE.contract.function).toBe('transcode');
    expect(TRANSCODE.contract.binary).toBe(TRANSCODE_BINARY);
  });

  it('on-upload takes every object created or removed under the prefix, forwards videos; S3 never feeds transcode', () => {
    const onUpload = ON_UPLOAD.contract.event_wiring;
    const transcode = TRANSCODE.contract.event_wiring;
    expect(onUpload.s3_events).toEqual(['s3:ObjectCreated:*', 's3:ObjectRemoved:*']);
    expect(onUpload.forwards_videos_to).toBe(TRANSCODE.contract.function);
    expect(transcode.s3_events).toEqual([]);
    expect(transcode.fed_by).toBe(ON_UPLOAD.contract.function);
    // No suffix lists left for a template to route by.
    for (const worker of WORKERS) {
      expect(worker.contract.event_wiring.suffixes, worker.binary).toBeUndefined();
      expect(worker.contract.event_wiring.suffixes_when_animated_gif, worker.binary).toBeUndefined();
    }
    // Where it forwards to.
    expect(ON_UPLOAD.contract.variables.map((v: Json) => v.name)).toContain('MEDIAFLOW_VIDEO_QUEUE_URL');
  });

  it('both functions are members of the one Cargo workspace (one target/ directory for both builds)', () => {
    const workspace = getManifest(path.join(REPO_ROOT, 'Cargo.toml')).workspace;
    for (const worker of WORKERS) {
      expect(workspace?.members).toContain(path.relative(REPO_ROOT, path.dirname(worker.manifest)));
    }
  });

  describe.each(WORKERS.map((w) => [w.binary, w] as const))('%s', (_, worker) => {
    it('SAM builds that binary with cargo-lambda for provided.al2023, in the workspace holding the crate', () => {
      const found = samFunctions.filter(([, fn]) => fn.Metadata?.BuildProperties?.Binary === worker.contract.binary);
      expect(found.map(([id]) => id)).toEqual([worker.samFunction]);
      const [, fn] = found[0];
      const { checkov: _skips, 'cfn-lint': _ignores, ...build } = fn.Metadata;
      expect(build).toEqual({
        BuildMethod: 'rust-cargolambda',
        BuildProperties: { Binary: worker.contract.binary },
      });
      expect(fn.Properties.Runtime).toBe('provided.al2023');
      expect(fn.Properties.Handler).toBe('bootstrap');
      // CodeUri is the Cargo workspace with the function crate as a member, so
      // `cargo lambda build --bin <binary>` run there finds the binary and
      // every function builds into the workspace's one target/ directory.
      const codeUri = path.resolve(path.dirname(SAM_TEMPLATE_PATH), fn.Properties.CodeUri);
      expect(codeUri).toBe(REPO_ROOT);
      const workspace = getManifest(path.join(codeUri, 'Cargo.toml')).workspace;
      expect(workspace?.members).toContain(path.relative(codeUri, path.dirname(worker.manifest)));
    });

    it('CDK builds that binary from the function crate', () => {
      const manifest = getManifest(worker.manifest);
      expect(manifest.package?.name).toBe(worker.contract.function);
      // Either an explicit [[bin]] or the package's default binary (src/main.rs).
      const bins = manifest.bin?.map((bin) => bin.name) ?? [manifest.package?.name];
      expect(bins).toContain(worker.contract.binary);
    });

    it('the CDK stack sets exactly the variables the function reads', () => {
      // MEDIAFLOW_PUBLIC_BASE_URL only with Delivery=cloudfront (lib/delivery.ts).
      expect([...worker.environment, PUBLIC_BASE_URL_VARIABLE].sort()).toEqual(
        worker.contract.variables.map((v: Json) => v.name).sort(),
      );
    });

    it('MEDIAFLOW_PUBLIC_BASE_URL is optional, and empty (as absent) by default', () => {
      const v = worker.contract.variables.find((x: Json) => x.name === PUBLIC_BASE_URL_VARIABLE);
      expect(v).toMatchObject({ required: false, default: '' });
    });
  });

  it('SAM deploys the transcode function only with an ffmpeg layer, and gives it that layer', () => {
    const fn = sam.Resources.TranscodeFunction;
    expect(fn.Condition).toBe('HasVideo');
    // An existing layer by ARN, or one the stack publishes from a zip in S3.
    expect(sam.Conditions.HasFfmpegLayerArn).toEqual({ 'Fn::Not': [{ 'Fn::Equals': [{ Ref: 'FfmpegLayerArn' }, ''] }] });
    expect(sam.Conditions.PublishesFfmpegLayer).toEqual({
      'Fn::And': [
        { 'Fn::Not': [{ 'Fn::Equals': [{ Ref: 'FfmpegLayerZipBucket' }, ''] }] },
        { 'Fn::Not': [{ 'Fn::Equals': [{ Ref: 'FfmpegLayerZipKey' }, ''] }] },
      ],
    });
    expect(sam.Conditions.HasVideo).toEqual({
      'Fn::Or': [{ Condition: 'HasFfmpegLayerArn' }, { Condition: 'PublishesFfmpegLayer' }],
    });
    expect(fn.Properties.Layers).toEqual([
      { 'Fn::If': ['HasFfmpegLayerArn', { Ref: 'FfmpegLayerArn' }, { Ref: 'TranscodeFfmpegLayer' }] },
    ]);
    expect(sam.Resources.TranscodeFfmpegLayer.Condition).toBe('PublishesFfmpegLayer');
    for (const [id, r] of Object.entries<Json>(sam.Resources)) {
      if (id.startsWith('Transcode') && id !== 'TranscodeFfmpegLayer') expect(r.Condition, id).toBe('HasVideo');
    }
    for (const [id, o] of Object.entries<Json>(sam.Outputs)) {
      if (id.startsWith('Transcode')) expect(o.Condition, id).toBe('HasVideo');
    }
  });

  describe.each(Object.entries(PARAMETER_SETS))('with %s', (_, parameters) => {
    const samModel = canonicalModel(evaluateSam(sam, parameters));
    const cdkTemplate = synthCdk(parameters).toJSON();
    const cdkModel = canonicalModel(cdkTemplate);
    const { video, gifToVideo } = videoOf(parameters);
    const backfill = valueOf(parameters, 'BackfillAtScale') === 'true';
    const delivery = valueOf(parameters, 'Delivery') === 'cloudfront';
    const accessLogs = valueOf(parameters, 'AccessLogs') === 'true';
    const tracing = valueOf(parameters, 'Tracing') === 'Active';
    const single = valueOf(parameters, 'BucketMode') === 'single';
    const present = video ? WORKERS : [ON_UPLOAD];
    const sourcePrefix = valueOf(parameters, 'SourcePrefix');
    const outputs = outputsArn(parameters);

    for (const [tool, model, template] of [
      ['SAM', samModel, evaluateSam(sam, parameters)],
      ['CDK', cdkModel, cdkTemplate],
    ] as const) {
      it(`${tool}: the transcode function and everything it owns exist only with an ffmpeg layer`, () => {
        const transcode = [...Object.keys(model.resources), ...Object.keys(model.outputs)].filter((n) =>
          n.startsWith('Transcode'),
        );
        if (video) {
          expect(transcode).toEqual(
            expect.arrayContaining([
              'TranscodeFunction',
              'TranscodeQueue',
              'TranscodeDeadLetterQueue',
              'TranscodeEventSourceMapping',
              'TranscodeLogGroup',
              'TranscodeRole',
              'TranscodeRoleStatements',
              'TranscodeQueueUrl',
              'TranscodeDeadLetterQueueUrl',
              'TranscodeDeadLetterQueueArn',
              'TranscodeFunctionArn',
              'TranscodeLogGroupName',
            ]),
          );
        } else {
          expect(transcode).toEqual([]);
        }
      });

      it(`${tool}: the backfill at scale exists only with BackfillAtScale=true, with least privilege`, () => {
        const names = [...Object.keys(model.resources), ...Object.keys(model.outputs)].filter((n) =>
          n.startsWith('Backfill'),
        );
        const inventory = model.resources.SourceBucket.InventoryConfigurations;
        if (!backfill) {
          expect(names).toEqual([]);
          expect(inventory).toBeUndefined();
          return;
        }
        expect(names.sort()).toEqual([...BACKFILL_RESOURCES, ...BACKFILL_OUTPUTS].sort());
        // Daily CSV of the current versions under SourcePrefix, with Size and ETag.
        expect(inventory).toStrictEqual([
          {
            Id: 'mediaflow-backfill',
            Enabled: true,
            ScheduleFrequency: 'Daily',
            IncludedObjectVersions: 'Current',
            OptionalFields: ['Size', 'ETag'],
            ...(sourcePrefix ? { Prefix: sourcePrefix } : {}),
            Destination: { BucketArn: '${BackfillInventoryBucket.Arn}', Format: 'CSV' },
          },
        ]);
        // Private, encrypted, TLS only, S3 Inventory of this source bucket may write, reports expire.
        const bucket = model.resources.BackfillInventoryBucket;
        expect(bucket.BucketEncryption.ServerSideEncryptionConfiguration).toEqual([
          { ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } },
        ]);
        expect(Object.values(bucket.PublicAccessBlockConfiguration)).toEqual([true, true, true, true]);
        expect(bucket.OwnershipControls).toEqual({ Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] });
        expect(bucket.LifecycleConfiguration.Rules).toContainEqual({
          Id: 'expire-inventory-reports',
          Status: 'Enabled',
          ExpirationInDays: Number(valueOf(parameters, 'BackfillInventoryRetentionDays')),
        });
        expect(model.resources.BackfillInventoryBucketPolicy).toStrictEqual(
          canonicalStatements([
            {
              Effect: 'Allow',
              Principal: { Service: 's3.amazonaws.com' },
              Action: 's3:PutObject',
              Resource: '${BackfillInventoryBucket.Arn}/*',
              Condition: {
                ArnLike: { 'aws:SourceArn': '${SourceBucket.Arn}' },
                StringEquals: { 'aws:SourceAccount': '${AWS::AccountId}' },
              },
            },
            {
              Effect: 'Deny',
              Principal: '*',
              Action: 's3:*',
              Resource: ['${BackfillInventoryBucket.Arn}', '${BackfillInventoryBucket.Arn}/*'],
              Condition: { Bool: { 'aws:SecureTransport': 'false' } },
            },
          ]),
        );
        // Read the reports, send to on-upload's queue, run its own child
        // workflows, deliver its logs (the one "*": those actions take no ARN).
        const arn = 'arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}';
        // (With Tracing=Active also X-Ray's statement: see the tracing test.)
        const withoutXray = model.resources.BackfillRoleStatements.filter(
          (st: Json) => !st.Action.some((a: string) => a.startsWith('xray:')),
        );
        expect(withoutXray).toStrictEqual(
          canonicalStatements([
            { Effect: 'Allow', Action: 's3:GetObject', Resource: '${BackfillInventoryBucket.Arn}/*' },
            { Effect: 'Allow', Action: 'sqs:SendMessage', Resource: '${Queue.Arn}' },
            {
              Effect: 'Allow',
              Action: 'states:StartExecution',
              Resource: `${arn}:stateMachine:\${AWS::StackName}-backfill`,
            },
            {
              Effect: 'Allow',
              Action: ['states:DescribeExecution', 'states:StopExecution'],
              Resource: [
                `${arn}:execution:\${AWS::StackName}-backfill:*`,
                `${arn}:execution:\${AWS::StackName}-backfill/*`,
              ],
            },
            {
              Effect: 'Allow',
              Action: [
                'logs:CreateLogDelivery',
                'logs:GetLogDelivery',
                'logs:UpdateLogDelivery',
                'logs:DeleteLogDelivery',
                'logs:ListLogDeliveries',
                'logs:PutResourcePolicy',
                'logs:DescribeResourcePolicies',
                'logs:DescribeLogGroups',
              ],
              Resource: '*',
            },
          ]),
        );
        expect(model.resources.BackfillRole.AssumeRolePolicyDocument).toEqual([
          { Effect: 'Allow', Principal: { Service: 'states.amazonaws.com' }, Action: ['sts:AssumeRole'] },
        ]);
        // STANDARD, named for the ARNs above, logging to its log group.
        const machine = model.resources.BackfillStateMachine;
        expect(machine.StateMachineName).toBe('${AWS::StackName}-backfill');
        expect(machine.StateMachineType).toBe('STANDARD');
        expect(machine.RoleArn).toBe('${BackfillRole.Arn}');
        expect(machine.LoggingConfiguration).toEqual({
          Level: 'ERROR',
          IncludeExecutionData: false,
          Destinations: [{ CloudWatchLogsLogGroup: { LogGroupArn: '${BackfillLogGroup.Arn}' } }],
        });
        expect(model.resources.BackfillLogGroup).toEqual({
          LogGroupName: '/aws/vendedlogs/states/${AWS::StackName}-backfill',
          RetentionInDays: Number(valueOf(parameters, 'LogRetentionDays')),
          DeletionPolicy: 'Delete',
        });
        expect(machine.DefinitionSubstitutions).toStrictEqual({
          QueueUrl: '${Queue}',
          MaxConcurrency: valueOf(parameters, 'BackfillMaxConcurrency'),
          ToleratedFailurePercentage: valueOf(parameters, 'BackfillToleratedFailurePercentage'),
        });
        expect(model.outputs.BackfillStateMachineArn).toBe('${BackfillStateMachine.Arn}');
        expect(model.outputs.BackfillInventoryBucketName).toBe('${BackfillInventoryBucket}');
      });

      it(`${tool}: the backfill's Distributed Map reads the manifest and sends batches of 10 to the uploads queue`, () => {
        if (!backfill) return;
        const definition = model.resources.BackfillStateMachine.Definition;
        const map = definition.States.Backfill;
        expect(definition.States[definition.StartAt].Next).toBe('Backfill');
        expect(map.Type).toBe('Map');
        expect(map.ItemReader).toEqual({
          Resource: 'arn:aws:states:::s3:getObject',
          ReaderConfig: { InputType: 'MANIFEST' },
          Parameters: { 'Bucket.$': '$.Bucket', 'Key.$': '$.Key' },
        });
        expect(map.ItemProcessor.ProcessorConfig).toEqual({ Mode: 'DISTRIBUTED', ExecutionType: 'EXPRESS' });
        expect(map.ItemBatcher).toEqual({ MaxItemsPerBatch: 10 });
        // The settings come from the substitutions, as numbers.
        expect(map.MaxConcurrencyPath).toBe('$.MaxConcurrency');
        expect(map.ToleratedFailurePercentagePath).toBe('$.ToleratedFailurePercentage');
        expect(definition.States.Settings.Parameters).toEqual({
          'Bucket.$': '$.Bucket',
          'Key.$': '$.Key',
          'MaxConcurrency.$': "States.StringToJson('${MaxConcurrency}')",
          'ToleratedFailurePercentage.$': "States.StringToJson('${ToleratedFailurePercentage}')",
        });
        const send = map.ItemProcessor.States[map.ItemProcessor.StartAt];
        expect(send.Resource).toBe('arn:aws:states:::aws-sdk:sqs:sendMessageBatch');
        expect(send.Parameters).toEqual({ QueueUrl: '${QueueUrl}', 'Entries.$': '$.Items' });
        expect(Object.keys(map.ItemSelector).sort()).toEqual(['Id.$', 'MessageBody.$']);
        // Every placeholder the definition uses is substituted, and nothing else.
        const placeholders = new Set([...JSON.stringify(definition).matchAll(/\$\{(\w+)\}/g)].map((m) => m[1]));
        expect([...placeholders].sort()).toEqual(
          Object.keys(model.resources.BackfillStateMachine.DefinitionSubstitutions).sort(),
        );
      });

      for (const worker of present) {
        const name = (role: string) => `${worker.prefix}${role}`;
        const fn = () => model.resources[name('Function')];

        it(`${tool} ${worker.binary}: environment variables match the contract`, () => {
          const vars = fn().Environment.Variables;
          // Every variable of the contract; MEDIAFLOW_PUBLIC_BASE_URL only with
          // Delivery=cloudfront (absent, the function's default, otherwise).
          const expected = worker.contract.variables
            .map((v: Json) => v.name)
            .filter((name: string) => delivery || name !== PUBLIC_BASE_URL_VARIABLE);
          expect(Object.keys(vars).sort()).toEqual(expected.sort());
          for (const v of worker.contract.variables) {
            if (v.required) {
              // Required variables are wired to a resource, never left to a default.
              expect(vars[v.name], v.name).toMatch(/^\$\{(SourceBucket|OutputBucket)\}$/);
            }
          }
          const single = parameters.BucketMode === 'single';
          expect(vars.MEDIAFLOW_OUTPUT_BUCKET).toBe(single ? '${SourceBucket}' : '${OutputBucket}');
        });

        it(`${tool} ${worker.binary}: optional variables default to the contract's defaults`, () => {
          const vars = fn().Environment.Variables;
          // The parameter each optional variable is set from, or its fixed value.
          const parameterOf: Record<string, string> = {
            MEDIAFLOW_OUTPUT_PREFIX: 'OutputPrefix',
            MEDIAFLOW_CONFIG: 'VariantsConfig',
          };
          const fixed: Record<string, string> = {
            // Empty: path-style S3 addressing only with an endpoint override.
            MEDIAFLOW_S3_PATH_STYLE: '',
            // In both functions: animated GIFs become videos only when transcode exists.
            MEDIAFLOW_ANIMATED_GIF: gifToVideo ? 'true' : '',
            ...(worker === TRANSCODE
              ? {
                  // The layer's bin/ffmpeg, extracted to /opt; ffprobe next to it.
                  MEDIAFLOW_FFMPEG: FFMPEG_PATH,
                  MEDIAFLOW_FFPROBE: '',
                }
              : {
                  // Where on-upload forwards videos: the transcode queue's URL, or nothing.
                  MEDIAFLOW_VIDEO_QUEUE_URL: video ? '${TranscodeQueue}' : '',
                }),
            // The distribution's URL: its root, no trailing slash (the
            // functions append "/" and the whole output key); absent without it.
            ...(delivery ? { [PUBLIC_BASE_URL_VARIABLE]: 'https://${DeliveryDistribution.DomainName}' } : {}),
          };
          // Absent from the template: the function takes its default.
          const absent = delivery ? [] : [PUBLIC_BASE_URL_VARIABLE];
          // Set away from the contract's default when the feature is on.
          const on: Record<string, boolean> = {
            MEDIAFLOW_ANIMATED_GIF: gifToVideo,
            MEDIAFLOW_VIDEO_QUEUE_URL: video,
            [PUBLIC_BASE_URL_VARIABLE]: delivery,
          };
          const optional = worker.contract.variables.filter((v: Json) => !v.required);
          expect(optional.map((v: Json) => v.name).sort()).toEqual(
            [...Object.keys(parameterOf), ...Object.keys(fixed), ...absent].sort(),
          );
          for (const v of optional) {
            if (absent.includes(v.name)) {
              expect(vars[v.name], v.name).toBeUndefined();
              continue;
            }
            if (v.name in fixed) {
              expect(vars[v.name], v.name).toBe(fixed[v.name]);
              if (!on[v.name]) expect(vars[v.name], v.name).toBe(v.default);
              continue;
            }
            const parameter = parameterOf[v.name];
            // The SAM parameter and the CDK context value default to the function's own default ...
            expect(DEFAULTS[parameter], parameter).toBe(v.default);
            expect(sam.Parameters[parameter].Default, parameter).toBe(v.default);
            // ... and the template passes the parameter through unchanged.
            expect(vars[v.name], v.name).toBe(String(parameters[parameter] ?? v.default));
          }
        });

        it(`${tool} ${worker.binary}: event wiring matches the contract`, () => {
          expect(worker.contract.event_wiring.source).toBe('sqs');
          const esm = model.resources[name('EventSourceMapping')];
          expect(esm.EventSourceArn).toBe(`\${${name('Queue')}.Arn}`);
          expect(esm.FunctionName).toBe(`\${${name('Function')}}`);
          expect(esm.FunctionResponseTypes).toEqual(worker.contract.event_wiring.function_response_types);
          // Notified of exactly the contract's S3 events, each once (none for transcode).
          const notifications = model.resources.SourceBucket.NotificationConfiguration.QueueConfigurations.filter(
            (n: Json) => n.Queue === `\${${name('Queue')}.Arn}`,
          );
          expect(notifications.map((n: Json) => n.Event).sort()).toEqual(
            [...worker.contract.event_wiring.s3_events].sort(),
          );
        });

        it(`${tool} ${worker.binary}: visibility timeout is at least 6x the function timeout`, () => {
          expect(model.resources[name('Queue')].VisibilityTimeout).toBeGreaterThanOrEqual(
            VISIBILITY_TIMEOUT_FACTOR * fn().Timeout,
          );
        });
      }

      it(`${tool}: the source bucket sends on-upload's events for every key under SourcePrefix, to it only`, () => {
        const notification = model.resources.SourceBucket.NotificationConfiguration;
        expect(Object.keys(notification)).toEqual(['QueueConfigurations']);
        // The prefix rule only (no filter at all without a prefix): S3 filters see
        // neither the content nor the letter case, on-upload decides by the bytes.
        const filter = sourcePrefix ? { Filter: { S3Key: { Rules: [{ Name: 'prefix', Value: sourcePrefix }] } } } : {};
        const byEvent = (a: Json, b: Json) => a.Event.localeCompare(b.Event);
        const expected = ON_UPLOAD.contract.event_wiring.s3_events.map((event: string) => ({
          Event: event,
          Queue: '${Queue.Arn}',
          ...filter,
        }));
        expect([...notification.QueueConfigurations].sort(byEvent)).toStrictEqual(expected.sort(byEvent));
        const bucketName = `${valueOf(parameters, 'BucketNamePrefix')}-source-\${StackUuid}`;
        expect(model.resources.QueuePolicy).toContainEqual({
          Effect: 'Allow',
          Principal: { Service: 's3.amazonaws.com' },
          Action: ['sqs:SendMessage'],
          Resource: ['${Queue.Arn}'],
          Condition: {
            ArnEquals: { 'aws:SourceArn': `arn:\${AWS::Partition}:s3:::${bucketName}` },
            StringEquals: { 'aws:SourceAccount': '${AWS::AccountId}' },
          },
        });
        expect(model.resources.SourceBucket.BucketName).toBe(bucketName);
      });

      it(`${tool}: the source bucket is created after on-upload's queue policy (S3 checks it), not transcode's`, () => {
        const dependencies = sourceBucketDependencies(template);
        expect(dependencies).toContain('QueuePolicy');
        expect(dependencies.filter((d) => d.startsWith('Transcode'))).toEqual([]);
      });

      it(`${tool}: only on-upload feeds the transcode queue: no S3 notification, no service in its policy`, () => {
        const queues = model.resources.SourceBucket.NotificationConfiguration.QueueConfigurations.map(
          (n: Json) => n.Queue,
        );
        expect(queues.filter((q: string) => q.includes('Transcode'))).toEqual([]);
        // Only on-upload's queue lets a service (S3) send.
        for (const [n, statements] of Object.entries<Json>(model.resources)) {
          if (n.endsWith('QueuePolicy') && n !== 'QueuePolicy') {
            expect(JSON.stringify(statements), n).not.toMatch(/amazonaws\.com/);
          }
        }
        if (video) {
          expect(model.resources.TranscodeQueuePolicy).toStrictEqual([
            {
              Effect: 'Deny',
              Principal: '*',
              Action: ['sqs:*'],
              Resource: ['${TranscodeQueue.Arn}'],
              Condition: { Bool: { 'aws:SecureTransport': 'false' } },
            },
          ]);
        }
      });

      it(`${tool}: on-upload may send only to the transcode queue, and only with video; transcode sends nowhere`, () => {
        const sends = (worker: string) =>
          (model.resources[`${worker}RoleStatements`] ?? []).filter((s: Json) =>
            s.Action.some((a: string) => /^(sqs:(Send|\*)|\*$)/.test(a)),
          );
        expect(sends('')).toStrictEqual(
          video ? [{ Effect: 'Allow', Action: ['sqs:SendMessage'], Resource: ['${TranscodeQueue.Arn}'] }] : [],
        );
        expect(sends('Transcode')).toEqual([]);
        const vars = model.resources.Function.Environment.Variables;
        expect(vars.MEDIAFLOW_VIDEO_QUEUE_URL).toBe(video ? '${TranscodeQueue}' : '');
        if (video) {
          const transcodeVars = model.resources.TranscodeFunction.Environment.Variables;
          expect(vars.MEDIAFLOW_ANIMATED_GIF).toBe(transcodeVars.MEDIAFLOW_ANIMATED_GIF);
        }
      });

      for (const worker of present) {
        it(`${tool} ${worker.binary}: S3: read the uploads; write, read and delete the outputs; modify no upload`, () => {
          const s3 = model.resources[`${worker.prefix}RoleStatements`].filter((s: Json) =>
            s.Action.some((a: string) => a.startsWith('s3:')),
          );
          const single = valueOf(parameters, 'BucketMode') === 'single';
          expect(s3).toStrictEqual(
            canonicalStatements([
              { Effect: 'Allow', Action: ['s3:GetObject'], Resource: [`\${SourceBucket.Arn}/${sourcePrefix}*`] },
              { Effect: 'Allow', Action: ['s3:PutObject'], Resource: [outputs] },
              { Effect: 'Allow', Action: ['s3:GetObject'], Resource: [outputs] },
              { Effect: 'Allow', Action: ['s3:DeleteObject'], Resource: [outputs] },
              {
                Effect: 'Allow',
                Action: ['s3:ListBucket'],
                Resource: single ? ['${SourceBucket.Arn}'] : ['${OutputBucket.Arn}', '${SourceBucket.Arn}'],
              },
            ]),
          );
          // Originals are never modified: nothing that writes or deletes reaches SourcePrefix.
          for (const s of s3) {
            if (!s.Action.some((a: string) => !/^s3:(Get|List)/.test(a))) continue;
            for (const r of s.Resource) expect(coversUploads(r, sourcePrefix), `${s.Action} ${r}`).toBe(false);
          }
        });
      }
    }

    for (const [tool, model] of [
      ['SAM', samModel],
      ['CDK', cdkModel],
    ] as const) {
      const bucket = single ? 'SourceBucket' : 'OutputBucket';
      const outputPrefix = valueOf(parameters, 'OutputPrefix');

      it(`${tool}: Delivery=cloudfront serves the outputs, and only them, through CloudFront with an origin access control`, () => {
        const names = [...Object.keys(model.resources), ...Object.keys(model.outputs)].filter((n) =>
          n.startsWith('Delivery'),
        );
        const mentionsCloudFront = Object.entries<Json>(model.resources)
          .filter(([n, r]) => n.endsWith('Policy') && JSON.stringify(r).includes('cloudfront.amazonaws.com'))
          .map(([n]) => n);
        if (!delivery) {
          expect(names).toEqual([]);
          expect(mentionsCloudFront).toEqual([]);
          for (const w of present) {
            expect(model.resources[`${w.prefix}Function`].Environment.Variables[PUBLIC_BASE_URL_VARIABLE]).toBeUndefined();
          }
          return;
        }
        expect(names.sort()).toEqual([
          'DeliveryCachePolicy',
          'DeliveryDistribution',
          'DeliveryDistributionId',
          'DeliveryDomainName',
          'DeliveryOriginAccessControl',
          'DeliveryUrl',
        ]);
        const name = `${valueOf(parameters, 'BucketNamePrefix')}-output-\${StackUuid}`;
        // SigV4 on every request, an S3 origin access control (no legacy OAI).
        expect(model.resources.DeliveryOriginAccessControl.OriginAccessControlConfig).toEqual({
          Name: name,
          Description: expect.any(String),
          OriginAccessControlOriginType: 's3',
          SigningBehavior: 'always',
          SigningProtocol: 'sigv4',
        });
        // The object's Cache-Control decides (MinTTL 0); a day without one; a year at most.
        const cache = model.resources.DeliveryCachePolicy.CachePolicyConfig;
        expect(cache).toMatchObject({ Name: name, MinTTL: 0, DefaultTTL: 86400, MaxTTL: 31536000 });
        expect(cache.ParametersInCacheKeyAndForwardedToOrigin).toEqual({
          EnableAcceptEncodingGzip: true,
          EnableAcceptEncodingBrotli: true,
          CookiesConfig: { CookieBehavior: 'none' },
          HeadersConfig: { HeaderBehavior: 'none' },
          QueryStringsConfig: { QueryStringBehavior: 'none' },
        });
        const config = model.resources.DeliveryDistribution.DistributionConfig;
        expect(config).toMatchObject({ Enabled: true, HttpVersion: 'http2and3', IPV6Enabled: true });
        // The bucket's root (no OriginPath: the URL path is the whole key), signed by the OAC.
        expect(config.Origins).toStrictEqual([
          {
            Id: 'outputs',
            DomainName: `\${${bucket}.RegionalDomainName}`,
            OriginAccessControlId: '${DeliveryOriginAccessControl.Id}',
            S3OriginConfig: { OriginAccessIdentity: '' },
          },
        ]);
        expect(config.CacheBehaviors).toBeUndefined();
        expect(config.DefaultCacheBehavior).toStrictEqual({
          TargetOriginId: 'outputs',
          ViewerProtocolPolicy: 'redirect-to-https',
          AllowedMethods: ['GET', 'HEAD'],
          CachedMethods: ['GET', 'HEAD'],
          Compress: true,
          CachePolicyId: '${DeliveryCachePolicy}',
          ResponseHeadersPolicyId: 'e61eb60c-9c35-4d20-a928-2b84e02af89c',
        });
        expect(config.ViewerCertificate).toEqual({ CloudFrontDefaultCertificate: true });
        // Only this distribution, only GetObject, only under OutputPrefix, no failure records.
        expect(mentionsCloudFront).toEqual([`${bucket}Policy`]);
        const statements = model.resources[`${bucket}Policy`].filter((st: Json) =>
          JSON.stringify(st).includes('cloudfront.amazonaws.com'),
        );
        expect(statements).toStrictEqual(
          canonicalStatements([
            {
              Effect: 'Allow',
              Principal: { Service: 'cloudfront.amazonaws.com' },
              Action: 's3:GetObject',
              Resource: `\${${bucket}.Arn}/${outputPrefix}*`,
              Condition: {
                StringEquals: {
                  'AWS:SourceArn': 'arn:${AWS::Partition}:cloudfront::${AWS::AccountId}:distribution/${DeliveryDistribution}',
                },
              },
            },
            {
              Effect: 'Deny',
              Principal: { Service: 'cloudfront.amazonaws.com' },
              Action: 's3:GetObject',
              Resource: `\${${bucket}.Arn}/${outputPrefix}failed/*.json`,
            },
          ]),
        );
        for (const st of statements) {
          for (const r of st.Resource) expect(coversUploads(r, sourcePrefix), r).toBe(false);
        }
        // Block Public Access stays on.
        expect(Object.values(model.resources[bucket].PublicAccessBlockConfiguration)).toEqual([true, true, true, true]);
        // Both functions build each output's URL on the distribution's root.
        for (const w of present) {
          expect(model.resources[`${w.prefix}Function`].Environment.Variables[PUBLIC_BASE_URL_VARIABLE], w.binary).toBe(
            'https://${DeliveryDistribution.DomainName}',
          );
        }
        expect(model.outputs).toMatchObject({
          DeliveryUrl: 'https://${DeliveryDistribution.DomainName}',
          DeliveryDistributionId: '${DeliveryDistribution}',
          DeliveryDomainName: '${DeliveryDistribution.DomainName}',
        });
      });

      it(`${tool}: AccessLogs=true: one private bucket for the buckets' S3 access logs and the distribution's logs`, () => {
        const logged: Record<string, string> = {
          SourceBucket: 's3/source/',
          ...(single ? {} : { OutputBucket: 's3/output/' }),
          ...(backfill ? { BackfillInventoryBucket: 's3/inventory/' } : {}),
        };
        const config = model.resources.DeliveryDistribution?.DistributionConfig;
        if (!accessLogs) {
          expect(model.resources.AccessLogBucket).toBeUndefined();
          expect(model.resources.AccessLogBucketPolicy).toBeUndefined();
          for (const b of Object.keys(logged)) expect(model.resources[b].LoggingConfiguration, b).toBeUndefined();
          if (config) expect(config.Logging).toBeUndefined();
          expect(model.outputs.AccessLogBucketName).toBeUndefined();
          return;
        }
        const logs = model.resources.AccessLogBucket;
        expect(logs.BucketEncryption.ServerSideEncryptionConfiguration).toEqual([
          { ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } },
        ]);
        expect(Object.values(logs.PublicAccessBlockConfiguration)).toEqual([true, true, true, true]);
        // ACLs only for CloudFront's standard logs (legacy), which write through one.
        expect(logs.OwnershipControls).toEqual({
          Rules: [{ ObjectOwnership: delivery ? 'BucketOwnerPreferred' : 'BucketOwnerEnforced' }],
        });
        expect(logs.LifecycleConfiguration.Rules).toContainEqual({
          Id: 'expire-access-logs',
          Status: 'Enabled',
          ExpirationInDays: Number(valueOf(parameters, 'AccessLogRetentionDays')),
        });
        expect(logs.DeletionPolicy).toBe('Retain');
        expect(logs.LoggingConfiguration).toBeUndefined();
        for (const [b, prefix] of Object.entries(logged)) {
          expect(model.resources[b].LoggingConfiguration, b).toEqual({
            DestinationBucketName: '${AccessLogBucket}',
            LogFilePrefix: prefix,
          });
        }
        expect(model.resources.AccessLogBucketPolicy).toStrictEqual(
          canonicalStatements([
            {
              Effect: 'Deny',
              Principal: '*',
              Action: 's3:*',
              Resource: ['${AccessLogBucket.Arn}', '${AccessLogBucket.Arn}/*'],
              Condition: { Bool: { 'aws:SecureTransport': 'false' } },
            },
            {
              Effect: 'Allow',
              Principal: { Service: 'logging.s3.amazonaws.com' },
              Action: 's3:PutObject',
              Resource: '${AccessLogBucket.Arn}/s3/*',
              Condition: {
                ArnLike: { 'aws:SourceArn': Object.keys(logged).map((b) => `\${${b}.Arn}`) },
                StringEquals: { 'aws:SourceAccount': '${AWS::AccountId}' },
              },
            },
          ]),
        );
        if (config) {
          expect(config.Logging).toEqual({ Bucket: '${AccessLogBucket.DomainName}', Prefix: 'cloudfront/', IncludeCookies: false });
        }
        expect(model.outputs.AccessLogBucketName).toBe('${AccessLogBucket}');
      });

      it(`${tool}: Tracing=Active traces the functions (and the state machine) and only then may send to X-Ray`, () => {
        const xray = (worker: string) =>
          (model.resources[`${worker}RoleStatements`] ?? []).filter((st: Json) =>
            st.Action.some((a: string) => a.startsWith('xray:')),
          );
        for (const w of present) {
          const fn = model.resources[`${w.prefix}Function`];
          expect(fn.TracingConfig, w.binary).toEqual(tracing ? { Mode: 'Active' } : undefined);
          expect(xray(w.prefix), w.binary).toStrictEqual(
            tracing
              ? [{ Effect: 'Allow', Action: ['xray:PutTelemetryRecords', 'xray:PutTraceSegments'], Resource: ['*'] }]
              : [],
          );
        }
        if (backfill) {
          expect(model.resources.BackfillStateMachine.TracingConfiguration).toEqual(tracing ? { Enabled: true } : undefined);
          expect(xray('Backfill')).toStrictEqual(
            tracing
              ? canonicalStatements([
                  {
                    Effect: 'Allow',
                    Action: [
                      'xray:PutTraceSegments',
                      'xray:PutTelemetryRecords',
                      'xray:GetSamplingRules',
                      'xray:GetSamplingTargets',
                    ],
                    Resource: '*',
                  },
                ])
              : [],
          );
        }
        // "*" only for X-Ray and the backfill's log delivery: actions that take no resource ARN.
        for (const [n, statements] of Object.entries<Json>(model.resources)) {
          if (!n.endsWith('RoleStatements')) continue;
          for (const st of statements) {
            if (!st.Resource?.includes('*')) continue;
            for (const a of st.Action) expect(a, n).toMatch(/^(xray|logs):[A-Za-z]+$/);
          }
        }
      });

      it(`${tool}: JSON logs at LogLevel, and Lambda's own lines from INFO (REPORT: duration, max memory used)`, () => {
        for (const w of present) {
          expect(model.resources[`${w.prefix}Function`].LoggingConfig, w.binary).toEqual({
            LogFormat: 'JSON',
            ApplicationLogLevel: valueOf(parameters, 'LogLevel'),
            SystemLogLevel: 'INFO',
            LogGroup: `\${${w.prefix}LogGroup}`,
          });
        }
      });

      it(`${tool}: one dashboard: each function's EMF metrics, Lambda and its queues, CloudFront with delivery`, () => {
        // What metrics.rs writes: namespace mediaflow, one dimension Function.
        expect(EMF_NAMESPACE).toBe('mediaflow');
        expect(EMF_DIMENSIONS).toEqual(['[["Function"]]']);
        expect([...EMF_METRICS].sort()).toEqual(
          [
            'FetchMs',
            'DecodeMs',
            'ResizeMs',
            'EncodeMs',
            'WriteMs',
            'TotalMs',
            'BytesIn',
            'BytesOut',
            'Variants',
            'Processed',
            'Skipped',
            'Failed',
            'ColdStartMs',
          ].sort(),
        );
        const dashboard = model.resources.Dashboard;
        expect(dashboard.DashboardName).toBe('${AWS::StackName}-${AWS::Region}');
        const metrics = dashboardMetrics(dashboard);
        const expected: string[] = [];
        for (const w of present) {
          const fn = `\${${w.prefix}Function}`;
          // Exactly the functions' EMF metrics, by the dimension they write.
          for (const m of EMF_METRICS) expected.push(`${EMF_NAMESPACE} ${m} Function=${fn} @\${AWS::Region}`);
          for (const m of ['Errors', 'Throttles', 'Duration', 'ConcurrentExecutions']) {
            expected.push(`AWS/Lambda ${m} FunctionName=${fn} @\${AWS::Region}`);
          }
          for (const q of ['Queue', 'DeadLetterQueue']) {
            expected.push(`AWS/SQS ApproximateNumberOfMessagesVisible QueueName=\${${w.prefix}${q}.QueueName} @\${AWS::Region}`);
          }
          expected.push(`AWS/SQS ApproximateAgeOfOldestMessage QueueName=\${${w.prefix}Queue.QueueName} @\${AWS::Region}`);
        }
        if (delivery) {
          // CloudFront's metrics: us-east-1, Region=Global.
          for (const m of ['Requests', '4xxErrorRate', '5xxErrorRate', 'TotalErrorRate', 'BytesDownloaded']) {
            expected.push(`AWS/CloudFront ${m} DistributionId=\${DeliveryDistribution} Region=Global @us-east-1`);
          }
        }
        expect([...new Set(metrics)].sort()).toEqual([...new Set(expected)].sort());
        // Laid out on the 24-column grid without overlaps.
        const cells = new Set<string>();
        for (const w of dashboard.DashboardBody.widgets) {
          expect(w.x + w.width).toBeLessThanOrEqual(24);
          for (let x = w.x; x < w.x + w.width; x++) {
            for (let y = w.y; y < w.y + w.height; y++) {
              expect(cells.has(`${x},${y}`), `${w.properties.title} overlaps`).toBe(false);
              cells.add(`${x},${y}`);
            }
          }
        }
        expect(model.outputs.DashboardUrl).toBe(
          'https://${AWS::Region}.console.aws.amazon.com/cloudwatch/home?region=${AWS::Region}#dashboards/dashboard/${Dashboard}',
        );
      });
    }

    it('SAM and CDK suppress the same checkov checks on the same resources, each with a reason', () => {
      const samSkips = checkovSkips(evaluateSam(sam, parameters));
      // But one: checkov cannot evaluate the SAM template's Fn::If around the
      // distribution's Logging, while the CDK app's template has Logging
      // exactly when AccessLogs=true (a failure then is the deployer's choice).
      const samOnly = (n: string, id: string) => n === 'DeliveryDistribution' && id === 'CKV_AWS_86';
      if (delivery) expect(samSkips.DeliveryDistribution.map((skip) => skip.id)).toContain('CKV_AWS_86');
      const shared = Object.fromEntries(
        Object.entries(samSkips).map(([n, skips]) => [n, skips.filter((skip) => !samOnly(n, skip.id))]),
      );
      expect(checkovSkips(cdkTemplate)).toEqual(shared);
      // And the same cfn-lint serverless rules ignored, but on what only the
      // CDK app has as resources (SAM writes the event source mappings and the
      // email subscription inline).
      const cdkIgnores = lintIgnores(cdkTemplate);
      const cdkOnly = Object.keys(cdkIgnores).filter((n) => /EventSourceMapping$|Subscription$/.test(n));
      const samTypes = Object.values<Json>(evaluateSam(sam, parameters).Resources).map((r) => r.Type);
      expect(samTypes).not.toContain('AWS::Lambda::EventSourceMapping');
      expect(samTypes).not.toContain('AWS::SNS::Subscription');
      expect(Object.fromEntries(Object.entries(cdkIgnores).filter(([n]) => !cdkOnly.includes(n)))).toEqual(
        lintIgnores(evaluateSam(sam, parameters)),
      );
      for (const [n, skips] of Object.entries(samSkips)) {
        for (const skip of skips) {
          expect(skip.id, n).toMatch(/^CKV2?_AWS_\d+$/);
          expect(skip.comment.length, `${n} ${skip.id}`).toBeGreaterThan(40);
        }
      }
    });

    it('SAM and CDK make the same resources with the same properties', () => {
      expect(Object.keys(cdkModel.resources).sort()).toEqual(Object.keys(samModel.resources).sort());
      for (const name of Object.keys(samModel.resources)) {
        expect(cdkModel.resources[name], name).toEqual(samModel.resources[name]);
      }
    });

    it('SAM and CDK have the same outputs', () => {
      expect(cdkModel.outputs).toEqual(samModel.outputs);
    });

    it('the transcode function runs with the layer given, or the one the stack publishes', () => {
      const layers = video ? samModel.resources.TranscodeFunction.Layers : undefined;
      const publishes = valueOf(parameters, 'FfmpegLayerZipBucket') !== '';
      if (!video) {
        expect(samModel.resources.TranscodeFfmpegLayer).toBeUndefined();
        return;
      }
      expect(layers).toEqual([publishes ? '${TranscodeFfmpegLayer}' : valueOf(parameters, 'FfmpegLayerArn')]);
      if (!publishes) {
        expect(samModel.resources.TranscodeFfmpegLayer).toBeUndefined();
        return;
      }
      expect(samModel.resources.TranscodeFfmpegLayer).toEqual({
        LayerName: '${AWS::StackName}-ffmpeg',
        Description: "mediaflow transcode - ffmpeg and ffprobe from Debian's packages (infra/layers/ffmpeg)",
        Content: {
          S3Bucket: valueOf(parameters, 'FfmpegLayerZipBucket'),
          S3Key: valueOf(parameters, 'FfmpegLayerZipKey'),
        },
        CompatibleArchitectures: [valueOf(parameters, 'Architecture')],
        CompatibleRuntimes: ['provided.al2023'],
        LicenseInfo: 'GPL-3.0-or-later',
        DeletionPolicy: 'Delete',
        UpdateReplacePolicy: 'Delete',
      });
    });
  });

  it('CDK with a local layer zip (FfmpegLayerZip) makes the stack SAM makes with that zip in S3', () => {
    const zip = writeTestZip('ffmpeg-arm64.zip', ['bin/ffmpeg', 'bin/ffprobe', 'ffmpeg/lib/ld-linux-aarch64.so.1']);
    const samModel = canonicalModel(evaluateSam(sam, LAYER_ZIP));
    const cdkTemplate = synthCdk({ FfmpegLayerZip: zip }).toJSON();
    const cdkModel = canonicalModel(cdkTemplate);
    // The same but for where the zip is: a CDK asset instead of the bucket and key given.
    const { Content: samContent, ...samLayer } = samModel.resources.TranscodeFfmpegLayer;
    const { Content: cdkContent, ...cdkLayer } = cdkModel.resources.TranscodeFfmpegLayer;
    expect(cdkLayer).toEqual(samLayer);
    expect(samContent).toEqual({ S3Bucket: LAYER_ZIP.FfmpegLayerZipBucket, S3Key: LAYER_ZIP.FfmpegLayerZipKey });
    expect(cdkContent.S3Bucket).toMatch(/cdk-.*-assets-/);
    expect(cdkContent.S3Key).toMatch(/^[0-9a-f]{64}\.zip$/);
    const { TranscodeFfmpegLayer: _s, ...samRest } = samModel.resources;
    const { TranscodeFfmpegLayer: _c, ...cdkRest } = cdkModel.resources;
    expect(cdkRest).toEqual(samRest);
    expect(cdkModel.outputs).toEqual(samModel.outputs);
  });
});

describe('parameters', () => {
  it('SAM and CDK have the same parameters', () => {
    expect(Object.keys(sam.Parameters).sort()).toEqual(Object.keys(PARAMETER_SPECS).sort());
    expect(Object.keys(DEFAULTS).sort()).toEqual(Object.keys(PARAMETER_SPECS).sort());
  });

  it.each(Object.keys(PARAMETER_SPECS))('%s has the same default and constraints', (name) => {
    const p = sam.Parameters[name];
    const spec = PARAMETER_SPECS[name];
    expect(p.Default, 'Default').toEqual(DEFAULTS[name]);
    switch (spec.kind) {
      case 'enum':
        expect(p.AllowedValues).toEqual(spec.values);
        expect(p.Type).toBe(spec.number ? 'Number' : 'String');
        break;
      case 'number':
        expect(p.Type).toBe('Number');
        expect(p.MinValue).toBe(spec.min);
        expect(p.MaxValue).toBe(spec.max);
        break;
      case 'string':
        expect(p.Type).toBe('String');
        expect(p.AllowedValues).toBeUndefined();
        expect(p.AllowedPattern).toBe(spec.pattern);
        expect(p.MaxLength).toBe(spec.maxLength);
        break;
    }
  });

  it('defaults: arm64, 2048 MB, 60 s, batches of 4, at most 10 at once, 5 receives', () => {
    expect(DEFAULTS).toMatchObject({
      Architecture: 'arm64',
      MemorySize: 2048,
      Timeout: 60,
      BatchSize: 4,
      MaximumConcurrency: 10,
      MaxReceiveCount: 5,
    });
  });

  it('SourceSuffix is gone: every key under SourcePrefix goes to on-upload, which routes by content', () => {
    expect(sam.Parameters.SourceSuffix).toBeUndefined();
    expect(PARAMETER_SPECS.SourceSuffix).toBeUndefined();
    expect(() => synthCdk({ SourceSuffix: '.jpg' })).toThrow(/SourceSuffix was removed/);
  });

  it('video defaults: no layer, GIFs as stills, 3008 MB, 900 s, 4 GB /tmp, 1 per batch, 5 at once', () => {
    expect(DEFAULTS).toMatchObject({
      FfmpegLayerArn: '',
      AnimatedGifToVideo: 'false',
      TranscodeMemorySize: 3008,
      TranscodeTimeout: 900,
      TranscodeEphemeralStorage: 4096,
      TranscodeBatchSize: 1,
      TranscodeMaximumConcurrency: 5,
    });
    // Lambda's limits: timeout at most 900 s, /tmp 512-10240 MB, memory 128-10240 MB;
    // an SQS event source mapping's MaximumConcurrency is at least 2.
    expect(Math.max(...sam.Parameters.TranscodeTimeout.AllowedValues)).toBe(900);
    expect(PARAMETER_SPECS.TranscodeEphemeralStorage).toEqual({ kind: 'number', min: 512, max: 10240 });
    expect(PARAMETER_SPECS.TranscodeMemorySize).toEqual({ kind: 'number', min: 128, max: 10240 });
    expect(PARAMETER_SPECS.TranscodeMaximumConcurrency).toMatchObject({ min: 2 });
  });

  it('FfmpegLayerArn is empty or a Lambda layer version ARN', () => {
    const pattern = new RegExp(sam.Parameters.FfmpegLayerArn.AllowedPattern);
    for (const ok of ['', LAYER, 'arn:aws-cn:lambda:cn-north-1:123456789012:layer:ffmpeg_7-arm64:120']) {
      expect(pattern.test(ok), ok).toBe(true);
    }
    for (const bad of [
      'arn:aws:lambda:us-east-1:123456789012:layer:ffmpeg', // no version
      'arn:aws:lambda:us-east-1:123456789012:function:ffmpeg:3',
      'arn:aws:lambda:us-east-1:1234:layer:ffmpeg:3',
      'ffmpeg',
      ` ${LAYER}`,
    ]) {
      expect(pattern.test(bad), bad).toBe(false);
    }
  });

  it('SAM maps every allowed timeout to a visibility timeout of exactly 6x', () => {
    const timeouts: number[] = sam.Parameters.Timeout.AllowedValues;
    expect(Object.keys(sam.Mappings.VisibilityTimeout).map(Number).sort((a, b) => a - b)).toEqual(
      [...timeouts].sort((a, b) => a - b),
    );
    for (const timeout of timeouts) {
      const model = canonicalModel(evaluateSam(sam, { Timeout: timeout }));
      expect(model.resources.Function.Timeout).toBe(timeout);
      expect(model.resources.Queue.VisibilityTimeout).toBe(VISIBILITY_TIMEOUT_FACTOR * timeout);
      // SQS's maximum visibility timeout is 12 hours.
      expect(model.resources.Queue.VisibilityTimeout).toBeLessThanOrEqual(43200);
    }
  });

  it('SAM maps every allowed transcode timeout to a transcode visibility timeout of exactly 6x', () => {
    const timeouts: number[] = sam.Parameters.TranscodeTimeout.AllowedValues;
    for (const timeout of timeouts) {
      expect(sam.Mappings.VisibilityTimeout[String(timeout)], String(timeout)).toBeDefined();
      const model = canonicalModel(evaluateSam(sam, { FfmpegLayerArn: LAYER, TranscodeTimeout: timeout }));
      expect(model.resources.TranscodeFunction.Timeout).toBe(timeout);
      expect(model.resources.TranscodeQueue.VisibilityTimeout).toBe(VISIBILITY_TIMEOUT_FACTOR * timeout);
    }
  });

  it('SAM takes one ffmpeg layer: an ARN or a zip in S3 (bucket and key), not both (Rules), as the CDK app', () => {
    const zip = writeTestZip('ffmpeg-arm64.zip', ['bin/ffmpeg', 'bin/ffprobe']);
    const cases: [Record<string, string>, RegExp | undefined][] = [
      [{}, undefined],
      [{ FfmpegLayerArn: LAYER }, undefined],
      [LAYER_ZIP, undefined],
      [{ FfmpegLayerArn: LAYER, ...LAYER_ZIP }, /not both|not FfmpegLayerArn and FfmpegLayerZipBucket/],
      [{ FfmpegLayerZipBucket: LAYER_ZIP.FfmpegLayerZipBucket }, /go together/],
      [{ FfmpegLayerZipKey: LAYER_ZIP.FfmpegLayerZipKey }, /go together/],
      [{ FfmpegLayerArn: LAYER, FfmpegLayerZipKey: 'k.zip' }, /go together/],
    ];
    for (const [parameters, refused] of cases) {
      const samFailures = failedRules(sam, parameters).join('\n');
      const cdk = () => synthCdk(parameters);
      if (refused === undefined) {
        expect(samFailures, JSON.stringify(parameters)).toBe('');
        expect(cdk).not.toThrow();
      } else {
        expect(samFailures, JSON.stringify(parameters)).toMatch(/^FfmpegLayerFromOneSource: /);
        expect(cdk, JSON.stringify(parameters)).toThrow(refused);
      }
    }
    // The local zip is CDK only, and goes with neither of the others either.
    expect(() => synthCdk({ FfmpegLayerZip: zip, FfmpegLayerArn: LAYER })).toThrow(
      /one ffmpeg layer.*not FfmpegLayerArn and FfmpegLayerZip/,
    );
    expect(() => synthCdk({ FfmpegLayerZip: zip, ...LAYER_ZIP })).toThrow(
      /not FfmpegLayerZip and FfmpegLayerZipBucket\/FfmpegLayerZipKey/,
    );
    expect(sam.Parameters.FfmpegLayerZip).toBeUndefined();
  });

  it('SAM rejects a single bucket without separate prefixes (Rules), as the CDK app does', () => {
    const rule = sam.Rules.SingleBucketNeedsSeparatePrefixes;
    expect(rule.RuleCondition).toEqual({ 'Fn::Equals': [{ Ref: 'BucketMode' }, 'single'] });
    expect(rule.Assertions.map((a: Json) => a.Assert)).toEqual([
      { 'Fn::Not': [{ 'Fn::Equals': [{ Ref: 'SourcePrefix' }, ''] }] },
      { 'Fn::Not': [{ 'Fn::Equals': [{ Ref: 'OutputPrefix' }, ''] }] },
      { 'Fn::Not': [{ 'Fn::Equals': [{ Ref: 'SourcePrefix' }, { Ref: 'OutputPrefix' }] }] },
    ]);
    expect(() => synthCdk({ BucketMode: 'single', OutputPrefix: 'media/' })).toThrow(/SourcePrefix/);
    expect(() => synthCdk({ BucketMode: 'single', SourcePrefix: 'uploads/' })).toThrow(/OutputPrefix/);
    expect(() => synthCdk({ BucketMode: 'single', SourcePrefix: 'a/', OutputPrefix: 'a/' })).toThrow(/overlap/);
  });

  describe('SAM refuses overlapping prefixes in single-bucket mode (condition SingleBucketPrefixesOverlap), as the CDK app does', () => {
    const single = (SourcePrefix: string, OutputPrefix: string) => ({ BucketMode: 'single', SourcePrefix, OutputPrefix });
    /** SAM: the condition, and so the resource that fails the deployment. */
    const samRefuses = (s: string, o: string) => conditionValue(sam, 'SingleBucketPrefixesOverlap', single(s, o));
    /** The CDK app's check (validateParameters), without a synth. */
    const cdkRefuses = (s: string, o: string) => {
      try {
        resolveParameters((name) => (single(s, o) as Record<string, string>)[name]);
        return false;
      } catch (e) {
        if (!/overlap/.test(String(e))) throw e;
        return true;
      }
    };
    /** What the SAM condition decides: either prefix starts with the other at a "/" (ten levels). */
    const atSlash = (s: string, o: string) => s.startsWith(o) || (o.startsWith(s) && s.endsWith('/'));

    it('the resource exists only when the prefixes overlap, and can only fail', () => {
      const resource = sam.Resources.SingleBucketPrefixesOverlap;
      expect(resource.Type).toBe('AWS::SSM::Parameter');
      expect(resource.Condition).toBe('SingleBucketPrefixesOverlap');
      // SSM refuses an empty value, and "^$" admits nothing else.
      expect(resource.Properties.AllowedPattern).toBe('^$');
      expect(Object.keys(evaluateSam(sam, single('media/in/', 'media/')).Resources)).toContain(
        'SingleBucketPrefixesOverlap',
      );
      expect(Object.keys(evaluateSam(sam, single('uploads/', 'media/')).Resources)).not.toContain(
        'SingleBucketPrefixesOverlap',
      );
      expect(Object.keys(evaluateSam(sam).Resources)).not.toContain('SingleBucketPrefixesOverlap');
    });

    it.each([
      // The CDK tests' cases (stack.test.ts, and the Rules test above).
      ['a/', 'a/', true],
      ['media/in/', 'media/', true],
      ['up/', 'up/', true],
      ['uploads/', 'media/', false],
      // The other way round, deeper, and near misses.
      ['media/', 'media/out/', true],
      ['media/in', 'media/', true],
      ['a/b/c/d/e/f/g/h/i/', 'a/b/c/d/e/f/g/h/i/j/', true],
      ['a/b/c/d/e/f/g/h/i/j/', 'a/b/c/d/e/f/g/h/i/', true],
      ['a/b/c/d/e/f/g/h/x/', 'a/b/c/d/e/f/g/h/y/', false],
      ['a/b/c/d/e/f/g/h/i/x', 'a/b/c/d/e/f/g/h/i/y/', false],
      ['in/', 'input/', false],
      ['input/', 'in/', false],
      ['uploads/', 'uploads-out/', false],
      ['in/a/', 'in/b/', false],
      ['a/b/', 'a/', true],
      ['Media/', 'media/', false],
    ])('SourcePrefix %j, OutputPrefix %j: refused %s, by both', (s, o, refused) => {
      expect(samRefuses(s, o)).toBe(refused);
      expect(cdkRefuses(s, o)).toBe(refused);
    });

    it('the one case only the CDK app refuses: a SourcePrefix that ends inside a level of OutputPrefix', () => {
      expect(samRefuses('med', 'media/')).toBe(false);
      expect(cdkRefuses('med', 'media/')).toBe(true);
      expect(samRefuses('media', 'media/')).toBe(false);
      expect(cdkRefuses('media', 'media/')).toBe(true);
      expect(samRefuses('uploads', 'uploads-out/')).toBe(false);
      expect(cdkRefuses('uploads', 'uploads-out/')).toBe(true);
    });

    it('never in separate-bucket mode', () => {
      for (const [s, o] of [
        ['', ''],
        ['a/', 'a/'],
        ['media/in/', 'media/'],
      ]) {
        expect(conditionValue(sam, 'SingleBucketPrefixesOverlap', { SourcePrefix: s, OutputPrefix: o })).toBe(false);
      }
    });

    it('agrees with the CDK app on every pair of short prefixes but that one case', () => {
      // Every SourcePrefix and OutputPrefix their AllowedPatterns accept, of
      // up to four characters of "a", "b" and "/".
      const words = (n: number): string[] =>
        n === 0 ? [''] : words(n - 1).flatMap((w) => ['a', 'b', '/'].map((c) => w + c));
      const all = [1, 2, 3, 4].flatMap(words);
      const sources = all.filter((w) => new RegExp(sam.Parameters.SourcePrefix.AllowedPattern).test(w));
      const outputs = all.filter((w) => w !== '' && new RegExp(sam.Parameters.OutputPrefix.AllowedPattern).test(w));
      expect(sources.length).toBeGreaterThan(50);
      expect(outputs.length).toBeGreaterThan(20);
      let refused = 0;
      for (const s of sources) {
        for (const o of outputs) {
          const sam = samRefuses(s, o);
          const cdk = cdkRefuses(s, o);
          expect(sam, `${s} ${o}`).toBe(atSlash(s, o));
          // SAM never refuses what the CDK app accepts ...
          if (sam) expect(cdk, `${s} ${o}`).toBe(true);
          // ... and accepts what it refuses only when SourcePrefix ends inside a level.
          if (cdk && !sam) expect(o.startsWith(s) && !s.endsWith('/'), `${s} ${o}`).toBe(true);
          if (sam) refused++;
        }
      }
      expect(refused).toBeGreaterThan(20);
    });
  });
});
