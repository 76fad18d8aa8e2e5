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
import * as path from 'node:path';
import { getManifest } from 'cargo-lambda-cdk/lib/cargo';
import { describe, expect, it } from 'vitest';
import { DEFAULTS, PARAMETER_SPECS } from '../lib/parameters';
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
      expect(fn.Metadata).toEqual({
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
      expect([...worker.environment].sort()).toEqual(worker.contract.variables.map((v: Json) => v.name).sort());
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
        expect(model.resources.BackfillRoleStatements).toStrictEqual(
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
          expect(Object.keys(vars).sort()).toEqual(worker.contract.variables.map((v: Json) => v.name).sort());
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
          };
          // Set away from the contract's default when the feature is on.
          const on: Record<string, boolean> = { MEDIAFLOW_ANIMATED_GIF: gifToVideo, MEDIAFLOW_VIDEO_QUEUE_URL: video };
          const optional = worker.contract.variables.filter((v: Json) => !v.required);
          expect(optional.map((v: Json) => v.name).sort()).toEqual(
            [...Object.keys(parameterOf), ...Object.keys(fixed)].sort(),
          );
          for (const v of optional) {
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
});
